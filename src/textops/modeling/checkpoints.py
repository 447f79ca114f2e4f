"""Checkpoints and resume: a killed training (SIGKILL, a preempted GPU worker) continues from its last
complete checkpoint, in a new MLflow run that links the killed one, and ends with the metrics an
uninterrupted run would have. Checkpoints of other data or params are discarded.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from textops.core.lineage import val_metric

FINGERPRINT = "fingerprint.json"  # in train.checkpoint_dir: the data and params its checkpoints belong to
MLFLOW_RUN = "mlflow_run.json"  # in train.checkpoint_dir: the MLflow run that wrote its checkpoints
FINISHED = "finished.json"  # in train.checkpoint_dir: its training ran to the end (nothing to resume)


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
    """The checkpoint to resume from, or None. Only an unfinished training resumes: checkpoints of a finished one
    (early-stopped or not) and of other data or params are discarded."""
    marker = checkpoint_dir / FINGERPRINT
    if checkpoint_dir.exists():
        try:
            old = json.loads(marker.read_text()) if marker.exists() else None
        except ValueError:
            old = None
        if old != fingerprint or (checkpoint_dir / FINISHED).exists():
            shutil.rmtree(checkpoint_dir)
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps(fingerprint, indent=2) + "\n")
    return complete_checkpoint(checkpoint_dir)


def mark_finished(checkpoint_dir: Path, run_id: str) -> None:
    """Say that the training whose checkpoints these are ran to the end."""
    (checkpoint_dir / FINISHED).write_text(json.dumps({"run_id": run_id}) + "\n")


def interrupted_run_id(checkpoint_dir: Path, resume_from: Path | None) -> str | None:
    """The MLflow run of the training whose checkpoints we resume (it ended KILLED or FAILED)."""
    if resume_from is None or not (checkpoint_dir / MLFLOW_RUN).exists():
        return None
    return json.loads((checkpoint_dir / MLFLOW_RUN).read_text()).get("run_id")


def mlflow_metrics(logs: dict, epoch: float) -> dict[str, float]:
    """One Trainer log entry as MLflow metrics: eval_* as val_*, the rest as train_*."""
    metrics = {}
    for key, value in logs.items():
        if not isinstance(value, (int, float)) or key in ("epoch", "step"):
            continue
        name = val_metric(key.removeprefix("eval_")) if key.startswith("eval_") else f"train_{key}"
        metrics[name] = float(value)
    metrics["epoch"] = float(logs.get("epoch", epoch))
    return metrics


def replay_history(checkpoint: Path) -> int:
    """Log what the interrupted run had logged up to CHECKPOINT into the active run, so the resumed run's
    curves start at step 0. Returns the number of log entries replayed."""
    import mlflow

    history = json.loads((checkpoint / "trainer_state.json").read_text()).get("log_history", [])
    for entry in history:
        mlflow.log_metrics(mlflow_metrics(entry, entry.get("epoch", 0)), step=int(entry.get("step", 0)))
    return len(history)
