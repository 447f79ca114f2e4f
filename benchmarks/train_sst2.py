"""SST-2 quality: TF-IDF + logistic regression floor, then the train/evaluate stages with `tiny` or `minilm`.

The stages run unchanged on a throwaway project whose cleaned splits are written from SST-2 in the
preprocess output format: train = a seeded subset of train.tsv, val = 1,000 other train.tsv rows,
test = dev.tsv (872 rows; SST-2's test labels are not public).

    python benchmarks/train_sst2.py tfidf
    python benchmarks/train_sst2.py tiny   --train-samples 20000 --epochs 3
    python benchmarks/train_sst2.py minilm --train-samples 8000 --epochs 1 --max-length 64
    python benchmarks/train_sst2.py minilm --epochs 1 -S train.group_by_length=false -S train.threads=1
    python benchmarks/train_sst2.py minilm --epochs 2 --max-length 128 --lr 1e-4 --save-steps 500 --curve

`--curve` also scores dev.tsv at every evaluation (the model of that step; its time is left out of the wall
time) and prints the points as "curve": accuracy against training wall time, several budgets in one run. The
model the stages keep is still the best on the val split, never chosen on dev.

`-S section.key=value` sets any other params.yaml key (a YAML value), as `textops run -S` does.

Prints one JSON line with the figures for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import pandas as pd
import tests_path  # noqa: F401  (tests/ on sys.path: `support`, shared with the tests)
import yaml

SST2 = Path(os.environ.get("TEXTOPS_SST2") or Path(__file__).resolve().parents[2] / "shared" / "datasets" / "sst2")
LABELS = ["negative", "positive"]


def read(name: str) -> pd.DataFrame:
    frame = pd.read_csv(SST2 / name, sep="\t", quoting=3)
    return pd.DataFrame({"text": frame["sentence"].astype(str).str.strip(), "label": frame["label"].astype("int64")})


def splits(train_samples: int | None, seed: int = 0) -> dict[str, pd.DataFrame]:
    train = read("train.tsv").sample(frac=1.0, random_state=seed).reset_index(drop=True)
    val, train = train.iloc[:1000].reset_index(drop=True), train.iloc[1000:].reset_index(drop=True)
    if train_samples:
        train = train.iloc[:train_samples].reset_index(drop=True)
    return {"train": train, "val": val, "test": read("dev.tsv")}


def tfidf(data: dict[str, pd.DataFrame]) -> dict:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score

    start = time.perf_counter()
    vec = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    clf = LogisticRegression(C=4.0, max_iter=2000).fit(vec.fit_transform(data["train"]["text"]), data["train"]["label"])
    pred = clf.predict(vec.transform(data["test"]["text"]))
    y = data["test"]["label"]
    return {
        "accuracy": accuracy_score(y, pred),
        "macro_f1": f1_score(y, pred, average="macro"),
        "train_s": time.perf_counter() - start,
    }


def stages(model: str, data: dict[str, pd.DataFrame], args) -> dict:
    from support import make_project

    from textops.core.config import load_params
    from textops.core.env import set_offline_env
    from textops.modeling.evaluate import evaluate
    from textops.modeling.train import train

    set_offline_env()
    root = make_project(Path(tempfile.mkdtemp(prefix=f"sst2-{model}-")) / "project")  # git + DVC, as a user's
    clean = root / "artifacts" / "clean"
    clean.mkdir(parents=True)
    for name, frame in data.items():
        frame.to_parquet(clean / f"{name}.parquet", index=False)
    (clean / "labels.json").write_text(json.dumps({"labels": LABELS}))
    params = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text())
    params["model"].update(base=model, max_length=args.max_length)
    params["train"].update(
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        save_steps=args.save_steps,
        logging_steps=50,
        early_stopping_patience=3,
    )
    for item in args.set:
        key, _, value = item.partition("=")
        *sections, last = key.split(".")
        target = params
        for section in sections:
            target = target.setdefault(section, {})
        target[last] = yaml.safe_load(value)
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    p = load_params(root / "params.yaml")
    curve: list[dict] = []
    if args.curve:
        dev_curve(data["test"], curve)
    start = time.perf_counter()
    t = train(root, p)
    train_s = time.perf_counter() - start - sum(point["dev_eval_s"] for point in curve)
    e = evaluate(root, p)
    return {
        "accuracy": e["accuracy"],
        "macro_f1": e["macro_f1"],
        "roc_auc": e["roc_auc"],
        "ece": e["ece"],
        "val_accuracy": t["val_accuracy"],
        "train_s": train_s,
        "steps": t["global_step"],
        "best_step": t["best_step"],
        "train_samples_per_second": t["train_samples_per_second"],
        "eval_texts_per_second": e["texts_per_second"],
        "project": str(root),
        "max_length_used": t.get("max_length"),
        **({"curve": curve} if args.curve else {}),
    }


def dev_curve(dev: pd.DataFrame, points: list[dict]) -> None:
    """Patch textops.modeling.train.build_trainer so that every evaluation also scores DEV, appending to POINTS:
    step, training seconds so far (dev scoring left out), val and dev accuracy. Measurement only."""
    from transformers import TrainerCallback

    import textops.modeling.train as stage

    built = stage.build_trainer
    started: list[float] = []
    rows = dev.iloc[dev["text"].str.len().argsort(kind="stable")]  # in order of length, as evaluate scores

    class DevAccuracy(TrainerCallback):
        def __init__(self, trainer):
            self.trainer = trainer

        def on_train_begin(self, args, state, control, **kwargs):
            started.append(time.perf_counter())

        def on_evaluate(self, args, state, control, metrics=None, **kwargs):
            begin = time.perf_counter()
            tr = self.trainer
            encoded = stage.Encoded(
                tr.processing_class, rows["text"].tolist(), rows["label"].tolist(), tr.processing_class.model_max_length
            )
            pred = tr.predict(encoded).predictions.argmax(-1)
            spent = time.perf_counter() - begin
            points.append(
                {
                    "step": state.global_step,
                    "epoch": round(state.epoch or 0, 3),
                    "train_s": round(begin - started[0] - sum(p["dev_eval_s"] for p in points), 1),
                    "val_accuracy": (metrics or {}).get("eval_accuracy"),
                    "dev_accuracy": float((pred == rows["label"].to_numpy()).mean()),
                    "dev_eval_s": round(spent, 1),
                }
            )
            print(json.dumps({"curve_point": points[-1]}), flush=True)

    def patched(*a, **k):
        trainer = built(*a, **k)
        trainer.add_callback(DevAccuracy(trainer))
        return trainer

    stage.build_trainer = patched


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model", choices=["tfidf", "tiny", "minilm"])
    ap.add_argument("--train-samples", type=int, default=None)
    ap.add_argument("--epochs", type=float, default=3)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-length", type=int, default=64)
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--save-steps", type=int, default=200)
    ap.add_argument("--curve", action="store_true", help="also score dev.tsv at every evaluation")
    ap.add_argument("-S", "--set", action="append", default=[], help="another params key: section.key=value")
    args = ap.parse_args()
    args.lr = args.lr or (1e-3 if args.model == "tiny" else 5e-5)
    data = splits(args.train_samples)
    result = tfidf(data) if args.model == "tfidf" else stages(args.model, data, args)
    import torch

    result.update(
        model=args.model,
        train_rows=len(data["train"]),
        test_rows=len(data["test"]),
        args={k: v for k, v in vars(args).items() if k != "model"},
        machine=platform.machine(),
        threads=torch.get_num_threads(),
        date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
