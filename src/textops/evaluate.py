"""The evaluate stage: score the test split with the trained model and log the results to the same
MLflow run as training (its id comes from artifacts/model/run.json, a DVC out of `train`).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from textops.config import Params
from textops.data import load_labels, load_split
from textops.errors import StateError

EVAL_METRICS = "metrics/eval.json"
CONFUSION_PLOT = "metrics/confusion.csv"


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int) -> float:
    """Mean |accuracy - confidence| over equal-width confidence bins, weighted by bin size."""
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        in_bin = (confidence > lo) & (confidence <= hi) if lo > 0 else (confidence >= lo) & (confidence <= hi)
        if in_bin.any():
            ece += in_bin.mean() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return float(ece)


def classification_metrics(probs: np.ndarray, labels: np.ndarray, names: list[str], bins: int) -> dict:
    """Accuracy, macro-F1, per-class P/R/F1, ROC-AUC, log-loss, ECE and the confusion matrix."""
    from sklearn.metrics import (
        accuracy_score,
        confusion_matrix,
        f1_score,
        log_loss,
        precision_recall_fscore_support,
        roc_auc_score,
    )

    preds = probs.argmax(axis=1)
    ids = list(range(len(names)))
    precision, recall, f1, support = precision_recall_fscore_support(labels, preds, labels=ids, zero_division=0)
    out = {
        "accuracy": float(accuracy_score(labels, preds)),
        "macro_f1": float(f1_score(labels, preds, labels=ids, average="macro", zero_division=0)),
        "log_loss": float(log_loss(labels, np.clip(probs, 1e-7, 1.0), labels=ids)),
        "ece": expected_calibration_error(probs, labels, bins),
        "per_class": {
            name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for name, p, r, f, s in zip(names, precision, recall, f1, support, strict=True)
        },
        "confusion_matrix": confusion_matrix(labels, preds, labels=ids).tolist(),
    }
    present = np.unique(labels)
    if len(present) < 2:
        out["roc_auc"] = None  # undefined with one class in the test split
    elif len(names) == 2:
        out["roc_auc"] = float(roc_auc_score(labels, probs[:, 1]))
    elif len(present) == len(names):
        out["roc_auc"] = float(roc_auc_score(labels, probs, multi_class="ovr", labels=ids))
    else:
        out["roc_auc"] = None
    return out


def save_plots(out_dir: Path, probs: np.ndarray, labels: np.ndarray, names: list[str]) -> list[Path]:
    """Confusion matrix and precision-recall curve(s) as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay, PrecisionRecallDisplay

    preds = probs.argmax(axis=1)
    cm_path, pr_path = out_dir / "confusion_matrix.png", out_dir / "pr_curve.png"
    fig, ax = plt.subplots(figsize=(5, 5))
    ConfusionMatrixDisplay.from_predictions(
        labels, preds, labels=list(range(len(names))), display_labels=names, ax=ax, colorbar=False
    )
    fig.tight_layout()
    fig.savefig(cm_path, dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 5))
    # Binary: the positive class (id 1); more classes: one curve per class, one-vs-rest.
    for i in ([1] if len(names) == 2 else range(len(names))):
        if (labels == i).any():
            PrecisionRecallDisplay.from_predictions(labels == i, probs[:, i], name=names[i], ax=ax)
    ax.set_title("precision-recall (test)")
    fig.tight_layout()
    fig.savefig(pr_path, dpi=100)
    plt.close(fig)
    return [cm_path, pr_path]


def load_trained(root: Path, params: Params):
    """(tokenizer, model, run.json) of the train stage's output; StateError if train has not run."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from textops.train import HF_DIR, RUN_FILE

    model_dir = Path(root) / params.train.output_dir
    if not (model_dir / RUN_FILE).exists() or not (model_dir / HF_DIR).is_dir():
        raise StateError(f"{model_dir} holds no trained model: run `textops train` (or `dvc repro train`) first.")
    run_info = json.loads((model_dir / RUN_FILE).read_text())
    tokenizer = AutoTokenizer.from_pretrained(model_dir / HF_DIR, local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir / HF_DIR, local_files_only=True)
    model.to("cuda" if torch.cuda.is_available() else "cpu")
    return tokenizer, model, run_info


def evaluate(root: Path, params: Params) -> dict:
    """Score the test split; write metrics/eval.json, artifacts/eval/ and log them to the train run."""
    import mlflow
    import pandas as pd

    from textops.pyfunc import predict_texts, to_frame
    from textops.tracking import owner_tags, setup

    root = Path(root)
    names = load_labels(root, params.data)
    test = load_split(root, params.data, "test")
    tokenizer, model, run_info = load_trained(root, params)
    setup(root, params)  # the store must be usable before any output is written (and dead runs are reaped)
    model_names = [model.config.id2label[i] for i in range(model.config.num_labels)]
    if model_names != names:
        raise StateError(
            f"the trained model predicts {model_names} but the cleaned data has labels {names}: "
            "retrain (`textops train`) after preprocessing."
        )

    texts, labels = test["text"].tolist(), test["label"].to_numpy()
    start = time.perf_counter()
    probs = predict_texts(model, tokenizer, texts, params.evaluate.batch_size, params.model.max_length)
    seconds = time.perf_counter() - start

    metrics = classification_metrics(probs, labels, names, params.evaluate.calibration_bins)
    metrics.update(rows=len(test), texts_per_second=len(test) / seconds if seconds > 0 else None)

    out_dir = root / params.evaluate.output_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    frame = to_frame(probs, names)
    predictions = pd.DataFrame({"text": texts, "label": [names[i] for i in labels], "pred": frame["label"]})
    predictions = pd.concat([predictions, frame.drop(columns="label")], axis=1)
    predictions.to_parquet(out_dir / "predictions.parquet", index=False)
    predictions[predictions["label"] != predictions["pred"]].to_csv(out_dir / "misclassified.csv", index=False)
    plots = save_plots(out_dir, probs, labels, names)
    (root / CONFUSION_PLOT).parent.mkdir(parents=True, exist_ok=True)
    predictions[["label", "pred"]].rename(columns={"label": "actual", "pred": "predicted"}).to_csv(
        root / CONFUSION_PLOT, index=False
    )
    (root / EVAL_METRICS).write_text(json.dumps(metrics, indent=2) + "\n")

    flat = {f"test_{k}": v for k, v in metrics.items() if isinstance(v, (int, float)) and v is not None}
    for name, scores in metrics["per_class"].items():
        flat.update({f"test_{name}_{k}": v for k, v in scores.items() if k != "support"})
    # Reopening the train run keeps one run per model: registry and lineage read it in one place.
    with mlflow.start_run(run_id=run_info["run_id"]):
        mlflow.set_tags(owner_tags())  # a SIGKILL here leaves the run RUNNING: the next stage marks it KILLED
        mlflow.log_metrics({k: float(v) for k, v in flat.items()})
        for path in [*plots, out_dir / "misclassified.csv", root / EVAL_METRICS]:
            mlflow.log_artifact(str(path), "eval")
        mlflow.set_tag("textops.evaluated", "true")
    return {**metrics, "run_id": run_info["run_id"]}
