"""The evaluate stage: score the test split with the trained model and log the results to the same
MLflow run as training (its id comes from artifacts/model/run.json, a DVC out of `train`).
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np

from textops.adapters.dvc import record_stage
from textops.adapters.tracking import Session
from textops.core.artifacts import (
    CONFUSION_PLOT,
    EVAL_METRICS,
    EXPLAINED_FILE,
    HF_DIR,
    PREDICTIONS_FILE,
    TFIDF_DIR,
    atomic_write_json,
    load_split,
    load_train_rows,
    model_dir,
    read_labels,
    read_run_info,
    staged_dir,
)
from textops.core.config import Params
from textops.core.errors import StateError
from textops.modeling.plots import save_plots


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
        # What the champion check of new rows scales confidences by (`policy.expected_accuracy`).
        "mean_confidence": float(probs.max(axis=1).mean()),
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


def class_metric_prefix(index: int, name: str) -> str:
    """`test_class/<index>_<name>/` for a class's metrics in MLflow: the index keeps it unique and apart from the
    aggregates (a class named `macro` cannot overwrite `test_macro_f1`); characters MLflow refuses in a metric
    name become `_`, and a long name is cut (eval.json keeps the names as they are)."""
    safe = re.sub(r"[^\w.\- ]", "_", name).strip(" .")[:60] or "_"
    return f"test_class/{index}_{safe}/"


def load_trained(root: Path, params: Params):
    """(a function from texts to class probabilities, the label names it predicts, run.json, the (model, tokenizer)
    its errors are explained with: a tfidf model's is its scorer and no tokenizer) of the train stage's output: the
    transformer in hf/ or the tfidf model in tfidf/; StateError if train has not run."""
    run_info = read_run_info(root, params)
    trained = model_dir(root, params)
    if (trained / TFIDF_DIR).is_dir():
        from textops.modeling.pyfunc import TfidfScorer

        scorer = TfidfScorer.load(str(trained / TFIDF_DIR))
        return scorer.probabilities, scorer.labels, run_info, (scorer, None)
    hf_dir = trained / HF_DIR
    if not hf_dir.is_dir():
        raise StateError(f"{hf_dir} holds no trained model: run `textops train` (or `dvc repro train`) first.")
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from textops.modeling.pyfunc import predict_texts

    tokenizer = AutoTokenizer.from_pretrained(hf_dir, local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(hf_dir, local_files_only=True)
    model.to("cuda" if torch.cuda.is_available() else "cpu")
    names = [model.config.id2label[i] for i in range(model.config.num_labels)]

    def probabilities(texts: list[str], batch_size: int):
        return predict_texts(model, tokenizer, texts, batch_size)

    return probabilities, names, run_info, (model, tokenizer)


def write_outputs(
    root: Path, params: Params, texts: list[str], labels, probs, names: list[str], explained: list[dict]
) -> list[Path]:
    """artifacts/eval (predictions, misclassified rows, the EXPLAINED ones, plots), written aside and swapped in,
    and the confusion CSV for `dvc plots`. Returns the files to log to MLflow."""
    import json

    import pandas as pd

    from textops.core.artifacts import atomic_write_text
    from textops.modeling.pyfunc import label_values, to_frame

    frame = to_frame(probs, names)
    values = label_values(names)  # the labels as the data had them (ints stay ints), like the predictions
    predictions = pd.DataFrame({"text": texts, "label": [values[i] for i in labels], "pred": frame["label"]})
    predictions = pd.concat([predictions, frame.drop(columns="label")], axis=1)
    out_dir = root / params.evaluate.output_dir
    with staged_dir(out_dir) as staged:
        predictions.to_parquet(staged / PREDICTIONS_FILE, index=False)
        predictions[predictions["label"] != predictions["pred"]].to_csv(staged / "misclassified.csv", index=False)
        (staged / EXPLAINED_FILE).write_text(json.dumps(explained, ensure_ascii=False, indent=1), encoding="utf-8")
        plots = save_plots(staged, probs, labels, names)
    confusion = predictions[["label", "pred"]].rename(columns={"label": "actual", "pred": "predicted"})
    atomic_write_text(root / CONFUSION_PLOT, confusion.to_csv(index=False))
    return [out_dir / p.name for p in plots] + [out_dir / "misclassified.csv", out_dir / EXPLAINED_FILE]


BASELINE_METRICS = ("accuracy", "macro_f1", "roc_auc", "log_loss", "ece")


def baseline_metrics(root: Path, params: Params, names: list[str], texts: list[str], labels) -> dict | None:
    """The TF-IDF + logistic regression baseline (textops.baseline) fitted on the rows the model trained on (the
    train split, capped as train.max_train_samples caps it) and scored on these test rows: its metrics and what was
    fitted; None when evaluate.baseline is off."""
    if not params.evaluate.baseline:
        return None
    from textops.modeling.baseline import fit_predict

    train = load_train_rows(root, params)
    probs, info = fit_predict(
        train["text"].tolist(), train["label"].to_numpy(), texts, len(names), params.evaluate.baseline_max_features
    )
    scores = classification_metrics(probs, labels, names, params.evaluate.calibration_bins)
    return {**{k: scores[k] for k in BASELINE_METRICS}, **info}


def slice_figures(test, labels, probs) -> dict:
    """Accuracy and macro-F1 on each slice of the test rows (`textops.data.slices`: length quartile, language, and
    the `group` column when the data has one)."""
    from textops.data.slices import assign_slices, slice_metrics

    texts = test["text"].astype(str).tolist()
    slices = assign_slices(texts, test["group"] if "group" in test.columns else None)
    return slice_metrics(labels, probs.argmax(axis=1), slices, texts)


def flat_slice_metrics(slices: dict) -> dict[str, float]:
    """SLICES (`slice_figures`) as MLflow metrics: `slice.<kind>.<value>.{accuracy,macro_f1,rows}`."""
    from textops.core.lineage import slice_metric

    return {
        slice_metric(kind, value, name): float(figures[name])
        for kind, by_value in slices.items()
        for value, figures in by_value.items()
        for name in ("accuracy", "macro_f1", "rows")
    }


def explain_settings(params: Params) -> tuple[int, int]:
    """How many of the most confidently wrong test rows are explained, and with how many integration steps."""
    return params.evaluate.explain_rows, params.evaluate.explain_steps


def evaluate(root: Path, params: Params, session: Session | None = None) -> dict:
    """Score the test split; write metrics/eval.json, artifacts/eval/ and log them to the train run. SESSION: the
    command's store (`tracking.session_for`), else one opened here."""
    import mlflow

    from textops.adapters.tracking import owner_tags, session_for
    from textops.core import lineage
    from textops.modeling.explain import explain_errors

    root = Path(root)
    names = read_labels(root, params)
    test = load_split(root, params, "test")
    probabilities, model_names, run_info, (model, tokenizer) = load_trained(root, params)
    session = session_for(root, params, session)  # usable before any output is written (dead runs reaped)
    if model_names != names:
        raise StateError(
            f"the trained model predicts {model_names} but the cleaned data has labels {names}: "
            "retrain (`textops train`) after preprocessing."
        )

    texts, labels = test["text"].tolist(), test["label"].to_numpy()
    start = time.perf_counter()
    probs = probabilities(texts, params.evaluate.batch_size)
    seconds = time.perf_counter() - start

    metrics = classification_metrics(probs, labels, names, params.evaluate.calibration_bins)
    metrics.update(rows=len(test), texts_per_second=len(test) / seconds if seconds > 0 else None)
    metrics["slices"] = slice_figures(test, labels, probs)
    baseline = baseline_metrics(root, params, names, texts, labels)
    if baseline is not None:
        metrics["baseline"] = baseline
    explained = explain_errors(model, tokenizer, names, texts, labels, probs, *explain_settings(params))
    files = write_outputs(root, params, texts, labels, probs, names, explained)
    atomic_write_json(root / EVAL_METRICS, metrics)

    flat = {lineage.test_metric(k): v for k, v in metrics.items() if isinstance(v, (int, float)) and v is not None}
    for i, (name, scores) in enumerate(metrics["per_class"].items()):
        flat.update({f"{class_metric_prefix(i, name)}{k}": v for k, v in scores.items() if k != "support"})
    if baseline is not None:
        flat.update({lineage.baseline_metric(k): baseline[k] for k in BASELINE_METRICS if baseline[k] is not None})
        flat["baseline_fit_seconds"] = baseline["fit_seconds"]
    flat.update(flat_slice_metrics(metrics["slices"]))
    # Reopening the train run keeps one run per model: registry and lineage read it in one place.
    with session.active(), mlflow.start_run(run_id=run_info["run_id"]):
        mlflow.set_tags(owner_tags())  # a SIGKILL here leaves the run RUNNING: the next stage marks it KILLED
        mlflow.log_metrics({k: float(v) for k, v in flat.items()})
        for path in [*files, root / EVAL_METRICS]:
            mlflow.log_artifact(str(path), "eval")
        if baseline is not None:
            mlflow.set_tag(
                lineage.BASELINE,
                f"{baseline['model']} ({baseline['analyzer']}, {baseline['features']} "
                f"features, {baseline['train_rows']} train rows)",
            )
        mlflow.set_tag(lineage.EVALUATED, "true")
    record_stage(root, "evaluate")
    return {**metrics, "run_id": run_info["run_id"]}
