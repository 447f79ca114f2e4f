"""Evaluate stage: the metrics themselves (against hand-computed values), then the stage end to end on
a model trained in a real project, logged into the training run."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import textops
from test_train import client, small  # noqa: F401  (the fixture)

from textops.evaluate import classification_metrics, expected_calibration_error


def test_ece_of_a_calibrated_and_an_overconfident_model():
    labels = np.array([0, 0, 1, 1])
    # 75% confident and right 3 times in 4: calibrated
    calibrated = np.array([[0.75, 0.25], [0.75, 0.25], [0.25, 0.75], [0.75, 0.25]])
    assert expected_calibration_error(calibrated, labels, bins=10) == pytest.approx(0.0)
    # 100% confident and right half the time: ECE 0.5
    overconfident = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
    assert expected_calibration_error(overconfident, labels, bins=10) == pytest.approx(0.5)


def test_classification_metrics_by_hand():
    labels = np.array([0, 0, 0, 1, 1])
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.4, 0.6], [0.3, 0.7], [0.6, 0.4]])  # preds 0 0 1 1 0
    m = classification_metrics(probs, labels, ["neg", "pos"], bins=5)
    assert m["accuracy"] == pytest.approx(3 / 5)
    assert m["confusion_matrix"] == [[2, 1], [1, 1]]
    assert m["per_class"]["neg"] == {"precision": pytest.approx(2 / 3), "recall": pytest.approx(2 / 3),
                                     "f1": pytest.approx(2 / 3), "support": 3}
    assert m["per_class"]["pos"]["recall"] == pytest.approx(1 / 2)
    assert m["macro_f1"] == pytest.approx((2 / 3 + 1 / 2) / 2)
    # ROC-AUC: positive scores .6 .7 .2 .1 .4 -> pairs (pos, neg) ranked right: 5 of 6
    assert m["roc_auc"] == pytest.approx(5 / 6)
    expected_ll = -np.mean(np.log([0.9, 0.8, 0.4, 0.7, 0.4]))
    assert m["log_loss"] == pytest.approx(expected_ll)


def test_multiclass_metrics_and_missing_class():
    labels = np.array([0, 1, 2, 2])
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8], [0.5, 0.3, 0.2]])
    m = classification_metrics(probs, labels, ["a", "b", "c"], bins=10)
    assert m["accuracy"] == pytest.approx(0.75) and m["roc_auc"] == pytest.approx(1.0)
    m = classification_metrics(probs[:1], labels[:1], ["a", "b", "c"], bins=10)
    assert m["roc_auc"] is None


def test_evaluate_before_train_is_a_user_error(small):  # noqa: F811
    proc = textops(small, "evaluate", check=False)
    assert proc.returncode != 0 and "textops train" in proc.stderr and "Traceback" not in proc.stderr


def test_train_then_evaluate_logs_into_the_same_run(small):  # noqa: F811
    textops(small, "train")
    out = textops(small, "evaluate")
    assert "test accuracy" in out.stdout
    metrics = json.loads((small / "metrics/eval.json").read_text())
    for key in ("accuracy", "macro_f1", "roc_auc", "log_loss", "ece", "per_class", "confusion_matrix",
                "texts_per_second"):
        assert metrics[key] is not None, key
    assert metrics["accuracy"] > 0.7

    preds = pd.read_parquet(small / "artifacts/eval/predictions.parquet")
    test = pd.read_parquet(small / "artifacts/clean/test.parquet")
    assert list(preds.columns) == ["text", "label", "pred", "prob_negative", "prob_positive"]
    assert len(preds) == len(test) == metrics["rows"]
    assert (preds["label"] == preds["pred"]).mean() == pytest.approx(metrics["accuracy"])
    wrong = pd.read_csv(small / "artifacts/eval/misclassified.csv")
    assert len(wrong) == (preds["label"] != preds["pred"]).sum()
    for png in ("confusion_matrix.png", "pr_curve.png"):
        assert (small / "artifacts/eval" / png).read_bytes()[:4] == b"\x89PNG"
    confusion = pd.read_csv(small / "metrics/confusion.csv")
    assert pd.crosstab(confusion["actual"], confusion["predicted"]).to_numpy().sum() == len(test)

    run_id = json.loads((small / "artifacts/model/run.json").read_text())["run_id"]
    run = client(small).get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.metrics["test_accuracy"] == pytest.approx(metrics["accuracy"])
    assert run.data.metrics["test_macro_f1"] == pytest.approx(metrics["macro_f1"])
    assert "val_macro_f1" in run.data.metrics  # training's metrics are in the same run
    names = {a.path for a in client(small).list_artifacts(run_id, "eval")}
    assert {"eval/confusion_matrix.png", "eval/pr_curve.png", "eval/misclassified.csv"} <= names
