"""Train throughput: the train stage's `Trainer` against a bare PyTorch loop, same model, batch, data.

Both train the same freshly initialised model (same seed) for the same samples with AdamW, a linear
schedule, dynamic padding (DataCollatorWithPadding) and no evaluation or checkpointing in the timed
part, alternating A/B/A/B so drifting load on a shared machine hits both alike. Samples per second
are wall-clock over the whole loop (data loading included).

    python benchmarks/train_throughput.py --model minilm --samples 512 --batch-size 32 --repeats 2
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import textops  # noqa: F401  (offline env)


def build(model_name: str, texts: list[str], max_length: int):
    from transformers import set_seed

    from textops.core.config import ModelParams
    from textops.modeling.model import load_base

    set_seed(0)
    return load_base(ModelParams(base=model_name, max_length=max_length), ["negative", "positive"], texts)


def with_trainer(model, dataset, collator, args) -> float:
    from transformers import Trainer, TrainingArguments

    targs = TrainingArguments(
        output_dir=tempfile.mkdtemp(),
        per_device_train_batch_size=args.batch_size,
        num_train_epochs=1,
        learning_rate=5e-5,
        lr_scheduler_type="linear",
        save_strategy="no",
        eval_strategy="no",
        logging_strategy="no",
        report_to="none",
        seed=0,
        dataloader_num_workers=0,
        disable_tqdm=True,
        dataloader_pin_memory=False,
    )
    trainer = Trainer(model=model, args=targs, train_dataset=dataset, data_collator=collator)
    start = time.perf_counter()
    trainer.train()
    return len(dataset) / (time.perf_counter() - start)


def bare_loop(model, dataset, collator, args) -> float:
    import torch
    from torch.utils.data import DataLoader
    from transformers import get_linear_schedule_with_warmup

    loader = DataLoader(
        dataset,
        batch_size=args.batch_size,
        shuffle=True,
        collate_fn=collator,
        generator=torch.Generator().manual_seed(0),
    )
    opt = torch.optim.AdamW(model.parameters(), lr=5e-5, weight_decay=0.0)
    sched = get_linear_schedule_with_warmup(opt, 0, len(loader))
    model.train()
    start = time.perf_counter()
    for batch in loader:
        loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)  # Trainer clips at 1.0 by default
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
    return len(dataset) / (time.perf_counter() - start)


def main() -> None:
    import pandas as pd
    import torch
    from transformers import DataCollatorWithPadding

    from textops.modeling.train import Encoded

    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="minilm")
    ap.add_argument("--samples", type=int, default=512)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-length", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()

    from train_sst2 import read

    frame = read("train.tsv").sample(args.samples, random_state=0)
    texts, labels = frame["text"].tolist(), frame["label"].tolist()
    tokenizer, _ = build(args.model, texts, args.max_length)
    dataset = Encoded(tokenizer, texts, labels, args.max_length)
    collator = DataCollatorWithPadding(tokenizer)
    rates = {"trainer": [], "bare": []}
    for _ in range(args.repeats):
        for name, fn in (("trainer", with_trainer), ("bare", bare_loop)):
            _, model = build(args.model, texts, args.max_length)
            rates[name].append(fn(model, dataset, collator, args))
    best = {k: max(v) for k, v in rates.items()}
    print(
        json.dumps(
            {
                "model": args.model,
                "samples": args.samples,
                "batch_size": args.batch_size,
                "max_length": args.max_length,
                "trainer_samples_per_s": best["trainer"],
                "bare_samples_per_s": best["bare"],
                "ratio": best["trainer"] / best["bare"],
                "all": rates,
                "threads": torch.get_num_threads(),
                "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                "pandas": pd.__version__,
            }
        )
    )


if __name__ == "__main__":
    main()
