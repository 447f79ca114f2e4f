"""The train stage: fine-tune a transformers classifier with `Trainer`, tracked in MLflow.

`train(root, params)` is the one implementation; DVC (`textops train`), the Prefect flow and the tests
call it. It resumes from the last complete checkpoint in params.train.checkpoint_dir when one exists
for the same data and params, so a killed run (SIGKILL, preempted GPU worker) continues where it
stopped and ends with the metrics an uninterrupted run would have.

Multi-GPU: launch the same command under `torchrun --nproc_per_node=N -m textops.cli train` or
`accelerate launch -m textops.cli train`; Trainer picks up the process group, and only rank 0 talks
to MLflow and writes files.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

from textops.config import Params, flatten, redact
from textops.data import dvc_md5, load_labels, load_split, replace_dir

RUN_FILE = "run.json"
HF_DIR = "hf"
TRAIN_METRICS = "metrics/train.json"
TRAIN_LOSS_PLOT = "metrics/train_loss.csv"
VAL_CURVE_PLOT = "metrics/val_curve.csv"
FINGERPRINT = "fingerprint.json"
MLFLOW_RUN = "mlflow_run.json"


# --------------------------------------------------------------------------------------------------
# lineage: what a run was made from


def file_md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def params_md5(params: Params) -> str:
    return hashlib.md5(json.dumps(params.model_dump(by_alias=True), sort_keys=True).encode()).hexdigest()


def _git(root: Path, *args: str) -> str | None:
    proc = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else None


def lineage(root: Path, params: Params) -> dict[str, str]:
    """MLflow tags naming the data version, code and params of a run (see the shared contract)."""
    clean = Path(root) / params.data.clean_dir
    split_md5 = {name: file_md5(clean / f"{name}.parquet") for name in ("train", "val", "test")}
    split_md5["labels"] = file_md5(clean / "labels.json")
    combined = hashlib.md5("".join(f"{k}:{v}\n" for k, v in sorted(split_md5.items())).encode()).hexdigest()
    raw_pointer = Path(root) / f"{Path(params.data.raw_dir).parts[0]}.dvc"
    dirty = _git(root, "status", "--porcelain", "--untracked-files=no")
    tags = {
        "textops.data.raw_md5": dvc_md5(raw_pointer) or "untracked",
        "textops.data.clean_md5": combined,
        "textops.data.rev": _git(root, "rev-parse", "HEAD") or "none",
        "textops.git.dirty": "unknown" if dirty is None else str(bool(dirty)).lower(),
        "textops.params_md5": params_md5(params),
    }
    tags.update({f"textops.data.clean_md5.{k}": v for k, v in split_md5.items()})
    return tags


def environment() -> dict[str, str]:
    """Device and library versions, logged as tags so a run says what it ran on."""
    import mlflow
    import tokenizers
    import torch
    import transformers

    info = {
        "textops.device": "cuda" if torch.cuda.is_available() else "cpu",
        "textops.version.torch": torch.__version__,
        "textops.version.transformers": transformers.__version__,
        "textops.version.tokenizers": tokenizers.__version__,
        "textops.version.mlflow": mlflow.__version__,
        "textops.cpu_threads": str(torch.get_num_threads()),
    }
    if torch.cuda.is_available():
        info["textops.gpu"] = torch.cuda.get_device_name(0)
        info["textops.gpu_count"] = str(torch.cuda.device_count())
    return info


# --------------------------------------------------------------------------------------------------
# data and model


class Encoded:
    """Tokenized texts (unpadded: DataCollatorWithPadding pads each batch to its longest row)."""

    def __init__(self, tokenizer, texts: list[str], labels: list[int], max_length: int):
        enc = tokenizer(texts, truncation=True, max_length=max_length)
        self.rows = [
            {"input_ids": ids, "attention_mask": mask, "labels": int(label)}
            for ids, mask, label in zip(enc["input_ids"], enc["attention_mask"], labels, strict=True)
        ]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict:
        return self.rows[i]


def train_frame(root: Path, params: Params):
    """The train split, capped at params.train.max_train_samples by a seeded sample (CPU budgets)."""
    frame = load_split(root, params.data, "train")
    cap = params.train.max_train_samples
    if cap is not None and cap < len(frame):
        frame = frame.sample(n=cap, random_state=params.train.seed).reset_index(drop=True)
    return frame


def compute_metrics(eval_pred) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score

    logits, labels = eval_pred
    preds = logits.argmax(axis=-1)
    return {
        "accuracy": float(accuracy_score(labels, preds)),
        "macro_f1": float(f1_score(labels, preds, average="macro")),
    }


def precision() -> dict[str, bool]:
    """bf16 on GPUs that support it, else fp16 (with loss scaling); fp32 on the CPU."""
    import torch

    if not torch.cuda.is_available():
        return {"bf16": False, "fp16": False}
    bf16 = torch.cuda.is_bf16_supported()
    return {"bf16": bf16, "fp16": not bf16}


def training_arguments(params: Params, checkpoint_dir: Path):
    import torch
    from transformers import TrainingArguments

    t = params.train
    return TrainingArguments(
        output_dir=str(checkpoint_dir),
        num_train_epochs=t.epochs,
        per_device_train_batch_size=t.batch_size,
        per_device_eval_batch_size=t.eval_batch_size,
        learning_rate=t.learning_rate,
        weight_decay=t.weight_decay,
        warmup_steps=float(t.warmup_ratio),  # a float in [0, 1) is a ratio of the total steps (transformers 5)
        lr_scheduler_type=t.lr_scheduler,
        # Evaluate where we checkpoint: early stopping and "best model" need both on the same steps.
        eval_strategy="steps",
        eval_steps=t.save_steps,
        save_strategy="steps",
        save_steps=t.save_steps,
        save_total_limit=2,  # the best and the last are kept whatever this says
        load_best_model_at_end=True,
        metric_for_best_model="macro_f1",
        greater_is_better=True,
        logging_strategy="steps",
        logging_steps=t.logging_steps,
        seed=t.seed,
        data_seed=t.seed,
        # Deterministic kernels cost speed on a GPU; on the CPU they are what makes reruns identical.
        full_determinism=not torch.cuda.is_available(),
        dataloader_num_workers=0,
        dataloader_pin_memory=torch.cuda.is_available(),
        report_to="none",  # MLflow logging is ours (MlflowLogger): one run across resumes and stages
        disable_tqdm=False,
        **precision(),
    )


def mlflow_metrics(logs: dict, epoch: float) -> dict[str, float]:
    """One Trainer log entry as MLflow metrics: eval_* as val_*, the rest as train_*."""
    metrics = {}
    for key, value in logs.items():
        if not isinstance(value, (int, float)) or key in ("epoch", "step"):
            continue
        name = key.replace("eval_", "val_") if key.startswith("eval_") else f"train_{key}"
        metrics[name] = float(value)
    metrics["epoch"] = float(logs.get("epoch", epoch))
    return metrics


def mlflow_logger():
    from transformers import TrainerCallback

    class MlflowLogger(TrainerCallback):
        """Per-step loss/learning rate and per-evaluation validation metrics into the active run."""

        def on_log(self, args, state, control, logs=None, **kwargs):
            import mlflow

            if not state.is_world_process_zero or not logs:
                return
            mlflow.log_metrics(mlflow_metrics(logs, state.epoch or 0), step=state.global_step)

    return MlflowLogger()


def replay_history(checkpoint: Path) -> int:
    """Log what the interrupted run had logged up to CHECKPOINT into the active run, so the resumed run's
    curves start at step 0. Returns the number of log entries replayed."""
    import mlflow

    history = json.loads((checkpoint / "trainer_state.json").read_text()).get("log_history", [])
    for entry in history:
        mlflow.log_metrics(mlflow_metrics(entry, entry.get("epoch", 0)), step=int(entry.get("step", 0)))
    return len(history)


# --------------------------------------------------------------------------------------------------
# checkpoints and resume


def complete_checkpoint(checkpoint_dir: Path, prune: bool = True) -> Path | None:
    """The newest checkpoint that was fully written; partial ones (a kill mid-save) are removed if PRUNE."""
    checkpoints = sorted(
        (p for p in checkpoint_dir.glob("checkpoint-*") if p.name.split("-")[-1].isdigit()),
        key=lambda p: int(p.name.split("-")[-1]),
        reverse=True,
    )
    for ckpt in checkpoints:
        # trainer_state.json is written last; without it the optimizer or RNG state may be missing.
        if (ckpt / "trainer_state.json").exists() and any(ckpt.glob("model.safetensors")):
            return ckpt
        if prune:
            shutil.rmtree(ckpt, ignore_errors=True)
    return None


def prepare_checkpoints(checkpoint_dir: Path, fingerprint: dict) -> Path | None:
    """The checkpoint to resume from, or None; checkpoints of other data or params are discarded."""
    marker = checkpoint_dir / FINGERPRINT
    if checkpoint_dir.exists():
        old = json.loads(marker.read_text()) if marker.exists() else None
        if old != fingerprint:
            shutil.rmtree(checkpoint_dir)
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps(fingerprint, indent=2) + "\n")
    return complete_checkpoint(checkpoint_dir)


def interrupted_run_id(checkpoint_dir: Path, resume_from: Path | None) -> str | None:
    """The MLflow run of the training whose checkpoints we resume (it ended KILLED or FAILED)."""
    if resume_from is None or not (checkpoint_dir / MLFLOW_RUN).exists():
        return None
    return json.loads((checkpoint_dir / MLFLOW_RUN).read_text()).get("run_id")


# --------------------------------------------------------------------------------------------------
# outputs


def write_curves(root: Path, log_history: list[dict], png: Path) -> None:
    """Training loss per logging step and validation metrics per evaluation: CSV (DVC plots) and PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    train = pd.DataFrame(
        [{"step": h["step"], "epoch": h["epoch"], "loss": h["loss"], "learning_rate": h.get("learning_rate")}
         for h in log_history if "loss" in h]
    )
    val = pd.DataFrame(
        [{"step": h["step"], "epoch": h["epoch"], "val_loss": h["eval_loss"], "val_accuracy": h["eval_accuracy"],
          "val_macro_f1": h["eval_macro_f1"]} for h in log_history if "eval_macro_f1" in h]
    )
    (root / TRAIN_LOSS_PLOT).parent.mkdir(parents=True, exist_ok=True)
    train.to_csv(root / TRAIN_LOSS_PLOT, index=False)
    val.to_csv(root / VAL_CURVE_PLOT, index=False)

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    if len(train):
        ax1.plot(train["epoch"], train["loss"], label="train loss")
    if len(val):
        ax1.plot(val["epoch"], val["val_loss"], "o-", label="val loss")
        ax2.plot(val["epoch"], val["val_accuracy"], "o-", label="val accuracy")
        ax2.plot(val["epoch"], val["val_macro_f1"], "s-", label="val macro-F1")
    ax1.set_xlabel("epoch")
    ax1.set_title("loss")
    ax1.legend()
    ax2.set_xlabel("epoch")
    ax2.set_title("validation")
    ax2.legend()
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)


def pip_requirements() -> list[str]:
    """Explicit requirements: MLflow's inference would add torchvision, which breaks loading here."""
    import mlflow
    import pandas
    import tokenizers
    import torch
    import transformers

    return [
        f"mlflow=={mlflow.__version__}",
        f"torch=={torch.__version__.split('+')[0]}",
        f"transformers=={transformers.__version__}",
        f"tokenizers=={tokenizers.__version__}",
        f"pandas=={pandas.__version__}",
    ]


def log_model(hf_dir: Path, labels: list[str], example_texts: list[str]):
    """Log the saved model as the pyfunc at artifact path `model`, with a signature and input example."""
    import mlflow
    import pandas as pd
    from mlflow.models import infer_signature

    from textops import pyfunc

    example = pd.DataFrame({"text": example_texts})
    output = pd.DataFrame({"label": labels[:1], **{f"prob_{name}": [0.5] for name in labels}})
    return mlflow.pyfunc.log_model(
        name="model",
        # Models from code: the model is pyfunc.py itself, so loading it unpickles nothing.
        python_model=pyfunc.__file__,
        artifacts={pyfunc.HF_ARTIFACT: str(hf_dir)},
        signature=infer_signature(example, output),
        input_example=example,
        pip_requirements=pip_requirements(),
    )


# --------------------------------------------------------------------------------------------------
# the stage


def train(root: Path, params: Params) -> dict:
    """Fine-tune params.model.base on the cleaned train split; log the run and model to MLflow.

    Writes artifacts/model/{hf/, run.json, training_curve.png}, metrics/train.json and the curve CSVs.
    Returns the train metrics (also in metrics/train.json).
    """
    import mlflow
    from transformers import DataCollatorWithPadding, EarlyStoppingCallback, Trainer, set_seed

    from textops.model import load_base
    from textops.tracking import owner_tags, setup

    root = Path(root)
    labels = load_labels(root, params.data)
    frame = train_frame(root, params)
    val = load_split(root, params.data, "val")
    rank0 = int(os.environ.get("RANK", "0")) == 0
    tags = lineage(root, params)

    checkpoint_dir = root / params.train.checkpoint_dir
    fingerprint = {"params_md5": tags["textops.params_md5"], "clean_md5": tags["textops.data.clean_md5"]}
    args = training_arguments(params, checkpoint_dir)  # under torchrun this joins the process group
    # Rank 0 prunes or discards stale checkpoints first; the other DDP ranks then read what is left.
    with args.main_process_first(local=False, desc="checkpoints"):
        if rank0:
            resume_from = prepare_checkpoints(checkpoint_dir, fingerprint)
        else:
            resume_from = complete_checkpoint(checkpoint_dir, prune=False)

    set_seed(params.train.seed)  # before the model is built: the random init is part of the result
    tokenizer, model = load_base(params.model, labels, frame["text"].tolist())
    if resume_from is not None and params.model.base == "tiny":
        # The checkpoint holds the tokenizer the weights were trained with; reuse it rather than
        # relying on retraining giving the same vocabulary.
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(resume_from, local_files_only=True)

    max_length = params.model.max_length
    train_set = Encoded(tokenizer, frame["text"].tolist(), frame["label"].tolist(), max_length)
    val_set = Encoded(tokenizer, val["text"].tolist(), val["label"].tolist(), max_length)
    callbacks = [mlflow_logger()]
    if params.train.early_stopping_patience > 0:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=params.train.early_stopping_patience))
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train_set,
        eval_dataset=val_set,
        processing_class=tokenizer,
        data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=compute_metrics,
        callbacks=callbacks,
    )

    if not rank0:  # other DDP ranks train in lockstep; rank 0 owns MLflow and the outputs
        trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
        return {}

    experiment_id = setup(root, params)  # also marks KILLED the run of a training that was SIGKILLed here
    interrupted = interrupted_run_id(checkpoint_dir, resume_from)
    # A new run every time: a killed run stays KILLED (a crashed one FAILED) and the resumed one links to it.
    # `with` ends the run FAILED when anything below raises (KILLED on Ctrl-C), never left RUNNING.
    with mlflow.start_run(experiment_id=experiment_id) as run:
        (checkpoint_dir / MLFLOW_RUN).write_text(json.dumps({"run_id": run.info.run_id}) + "\n")
        mlflow.log_params(flatten(params))
        mlflow.set_tags({**tags, **environment(), **owner_tags(), "textops.stage": "train"})
        mlflow.log_params({"train_rows": len(frame), "val_rows": len(val), "labels": ",".join(labels)})
        if resume_from is not None:
            mlflow.set_tags({"textops.resumed_from": resume_from.name, "textops.resumed_from_run": interrupted or ""})
            replay_history(resume_from)

        result = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
        best = trainer.evaluate()  # the best checkpoint's weights are loaded at the end

        # Written aside and swapped in at the end: a full disk or a kill leaves the previous model in place.
        out_dir = root / params.train.output_dir
        staged = out_dir.with_name(out_dir.name + ".tmp")
        shutil.rmtree(staged, ignore_errors=True)
        hf_dir = staged / HF_DIR
        trainer.save_model(str(hf_dir))
        tokenizer.save_pretrained(str(hf_dir))
        write_curves(root, trainer.state.log_history, staged / "training_curve.png")

        metrics = {
            "val_accuracy": best["eval_accuracy"],
            "val_macro_f1": best["eval_macro_f1"],
            "val_loss": best["eval_loss"],
            "train_loss": result.training_loss,
            "global_step": trainer.state.global_step,
            "best_step": int(Path(trainer.state.best_model_checkpoint).name.split("-")[-1])
            if trainer.state.best_model_checkpoint
            else trainer.state.global_step,
            "epochs": trainer.state.epoch,
            "train_rows": len(frame),
            "train_samples_per_second": result.metrics.get("train_samples_per_second"),
            "train_runtime_s": result.metrics.get("train_runtime"),
            "device": environment()["textops.device"],
            "resumed_from_step": int(resume_from.name.split("-")[-1]) if resume_from else 0,
        }
        mlflow.log_metrics(
            {f"best_{k}": float(v) for k, v in metrics.items() if k.startswith("val_")}
            | {"train_samples_per_second": float(metrics["train_samples_per_second"] or 0)}
        )
        mlflow.log_artifact(str(staged / "training_curve.png"), "plots")
        logged = log_model(hf_dir, labels, val["text"].head(3).tolist() or ["an example"])

        run_info = {
            "run_id": run.info.run_id,
            "experiment_id": run.info.experiment_id,
            "tracking_uri": redact(mlflow.get_tracking_uri()),
            # MLflow 3 keeps a logged model apart from the run's artifacts: `models:/<model id>` names it.
            "model_uri": logged.model_uri,
        }
        (staged / RUN_FILE).write_text(json.dumps(run_info, indent=2) + "\n")
        (root / TRAIN_METRICS).parent.mkdir(parents=True, exist_ok=True)
        metrics_tmp = (root / TRAIN_METRICS).with_suffix(".json.tmp")
        metrics_tmp.write_text(json.dumps(metrics, indent=2) + "\n")
        replace_dir(staged, out_dir)
        os.replace(metrics_tmp, root / TRAIN_METRICS)
    return {**metrics, **run_info}
