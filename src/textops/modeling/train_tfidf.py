"""The train stage for `model.base: tfidf`: the TF-IDF + logistic regression model of `textops.baseline` as a
model family of its own, fitted in seconds on the CPU (no Trainer, no checkpoints), logged and registered like a
transformer: the same MLflow run contents, the same pyfunc (`pyfunc.TfidfScorer` inside `TextClassifier`), the same
outputs (artifacts/model/run.json, metrics/train.json), so evaluate, register, serve, predict and rollback take it
as they take any model.

`model.base: auto` trains it through here too when the transformer it trained loses to the baseline on the same
test rows (FALLBACK: the reason, tagged on the run and shown with the decision).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

from textops.adapters.dvc import publish_data, record_stage
from textops.core import lineage
from textops.core.artifacts import (
    RUN_FILE,
    TFIDF_DIR,
    TRAIN_METRICS,
    atomic_write_json,
    load_split,
    load_train_rows,
    model_dir,
    read_labels,
    staged_dir,
)
from textops.core.config import Params
from textops.core.params_file import flatten, redact

if TYPE_CHECKING:
    import pandas as pd

    from textops.adapters.tracking import Session
    from textops.modeling.pyfunc import TfidfScorer

log = logging.getLogger("textops")
FAMILY = "tfidf"


def val_metrics(scorer, val) -> dict[str, float]:
    """Accuracy, macro-F1 and log-loss of SCORER on the val split (VAL), the figures a transformer's run logs."""
    import numpy as np
    from sklearn.metrics import accuracy_score, f1_score, log_loss

    if val.empty:
        return {lineage.val_metric(k): 0.0 for k in ("accuracy", "macro_f1", "loss")}
    probs = scorer.probabilities(val["text"].tolist()).astype(np.float64)
    probs /= probs.sum(axis=1, keepdims=True)
    labels, preds, ids = val["label"].to_numpy(), probs.argmax(axis=1), list(range(probs.shape[1]))
    return {
        lineage.val_metric("accuracy"): float(accuracy_score(labels, preds)),
        lineage.val_metric("macro_f1"): float(f1_score(labels, preds, labels=ids, average="macro", zero_division=0)),
        lineage.val_metric("loss"): float(log_loss(labels, np.clip(probs, 1e-7, 1.0), labels=ids)),
    }


def write_curves(root: Path, metrics: dict) -> None:
    """The train stage's plot files (DVC outputs): no loss curve, one point of val metrics."""
    import pandas as pd

    from textops.core.artifacts import TRAIN_LOSS_PLOT, VAL_CURVE_PLOT

    (root / TRAIN_LOSS_PLOT).parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(columns=["step", "epoch", "loss", "learning_rate"]).to_csv(root / TRAIN_LOSS_PLOT, index=False)
    val = {lineage.val_metric(k): metrics[lineage.val_metric(k)] for k in ("loss", "accuracy", "macro_f1")}
    pd.DataFrame([{"step": 0, "epoch": 1, **val}]).to_csv(root / VAL_CURVE_PLOT, index=False)


def fit_model(root: Path, params: Params) -> tuple[TfidfScorer, dict, pd.DataFrame]:
    """(the fitted scorer, metrics/train.json, the train rows) for the project's train split."""
    from textops.modeling.baseline import fit

    labels = read_labels(root, params)
    frame = load_train_rows(root, params)
    start = time.perf_counter()
    scorer, info = fit(frame["text"].tolist(), frame["label"].to_numpy(), labels, params.evaluate.baseline_max_features)
    metrics = {
        **val_metrics(scorer, load_split(root, params, "val")),
        "train_rows": len(frame),
        "features": info["features"],
        "analyzer": info["analyzer"],
        "train_runtime_s": round(time.perf_counter() - start, 3),
        "device": "cpu",
        "global_step": 0,
        "resumed_from_step": 0,
    }
    return scorer, metrics, frame


def train_tfidf(
    root: Path, params: Params, tags: dict, fallback: str | None = None, session: Session | None = None
) -> dict:
    """Fit, log and save the tfidf model; TAGS are the run's lineage tags (params as written), FALLBACK why `auto`
    trains it (None when model.base says tfidf); SESSION: the command's store. Returns the train metrics with the
    run's ids."""
    import mlflow

    from textops.adapters.tracking import owner_tags, session_for
    from textops.modeling.logged_model import log_tfidf_model

    scorer, metrics, frame = fit_model(root, params)
    log.info(
        "train: tfidf model, %s features (%s), %s train rows", metrics["features"], metrics["analyzer"], len(frame)
    )
    session = session_for(root, params, session)
    tags = {**tags, lineage.DATA_PUSHED: str(publish_data(root, params)).lower(), lineage.STAGE: "train"}
    tags[lineage.MODEL_FAMILY] = FAMILY
    if fallback:
        tags[lineage.FALLBACK] = fallback[: lineage.MAX_TAG]
    if params.overrides:
        tags[lineage.OVERRIDES] = " ".join(params.overrides)
    with session.active(), mlflow.start_run(experiment_id=session.experiment_id) as run:
        mlflow.log_params(flatten(params))
        mlflow.set_tags({**tags, **owner_tags(), lineage.DEVICE: "cpu"})
        mlflow.log_params({"train_rows": len(frame), "num_labels": len(scorer.labels), "features": metrics["features"]})
        mlflow.log_metrics(lineage.best_val_metrics(metrics))
        with staged_dir(model_dir(root, params)) as staged:
            scorer.save(str(staged / TFIDF_DIR))
            texts = frame["text"].tolist()
            logged = log_tfidf_model(staged / TFIDF_DIR, scorer.labels, texts[:: max(1, len(texts) // 3)][:3])
            run_info = {
                "run_id": run.info.run_id,
                "experiment_id": run.info.experiment_id,
                "tracking_uri": redact(mlflow.get_tracking_uri()),
                "model_uri": logged.model_uri,
                "base_model": FAMILY,
            }
            atomic_write_json(staged / RUN_FILE, run_info)
            atomic_write_json(root / TRAIN_METRICS, metrics)
            write_curves(root, metrics)
    record_stage(root, "train")
    return {**metrics, **run_info}
