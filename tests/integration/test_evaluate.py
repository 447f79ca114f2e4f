"""Evaluate stage end to end on a model trained in a real project, logged into the training run."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from helpers import WEAK, mlflow_client, set_params, textops


def test_evaluate_before_train_is_a_user_error(small):
    proc = textops(small, "evaluate", check=False)
    assert proc.returncode != 0 and "textops train" in proc.stderr and "Traceback" not in proc.stderr


def test_train_then_evaluate_logs_into_the_same_run(small):
    # A capped train split: the baseline must fit on the rows the model trained on, not the whole split.
    set_params(small, {"train": {"max_train_samples": 300}}, commit=False)
    textops(small, "train")
    out = textops(small, "evaluate")
    assert "test accuracy" in out.stdout
    metrics = json.loads((small / "metrics/eval.json").read_text())
    for key in (
        "accuracy",
        "macro_f1",
        "roc_auc",
        "log_loss",
        "ece",
        "per_class",
        "confusion_matrix",
        "texts_per_second",
    ):
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
    run = mlflow_client(small)[0].get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.metrics["test_accuracy"] == pytest.approx(metrics["accuracy"])
    assert run.data.metrics["test_macro_f1"] == pytest.approx(metrics["macro_f1"])
    assert "val_macro_f1" in run.data.metrics  # training's metrics are in the same run
    names = {a.path for a in mlflow_client(small)[0].list_artifacts(run_id, "eval")}
    assert {"eval/confusion_matrix.png", "eval/pr_curve.png", "eval/misclassified.csv"} <= names

    # The TF-IDF baseline on the same splits: in eval.json, on the run, in the command's line.
    baseline = metrics["baseline"]
    assert len(pd.read_parquet(small / "artifacts/clean/train.parquet")) > 300
    trained = json.loads((small / "metrics/train.json").read_text())
    assert baseline["analyzer"] == "word" and baseline["train_rows"] == trained["train_rows"] == 300
    assert 0.5 < baseline["accuracy"] <= 1.0 and baseline["fit_seconds"] < 60
    assert run.data.metrics["baseline_test_macro_f1"] == pytest.approx(baseline["macro_f1"])
    assert run.data.tags["textops.baseline"].startswith("TF-IDF + logistic regression (word")
    assert f"baseline: accuracy {baseline['accuracy']:.4f}" in out.stdout

    # Slices: length quartiles, languages, and the ingested file's group column, in eval.json and as slice.* metrics.
    slices = metrics["slices"]
    assert set(slices) == {"length", "language", "group"}
    assert set(slices["length"]) == {"q1", "q2", "q3", "q4"}
    assert sum(f["rows"] for f in slices["length"].values()) == len(test)
    assert set(slices["group"]) == {"web", "mail", "(none)"} and set(test["group"].dropna()) == {"web", "mail"}
    assert sum(f["rows"] for f in slices["language"].values()) == len(test)
    for kind, by_value in slices.items():
        for value, figures in by_value.items():
            assert 0.0 <= figures["accuracy"] <= 1.0 and 0.0 <= figures["macro_f1"] <= 1.0, (kind, value)
    web = slices["group"]["web"]
    assert run.data.metrics["slice.group.web.accuracy"] == pytest.approx(web["accuracy"])
    assert run.data.metrics["slice.group.web.rows"] == web["rows"]
    assert {f"slice.length.q{i}.macro_f1" for i in range(1, 5)} <= set(run.data.metrics)
    assert "group" not in preds.columns  # never a model input or output


@pytest.mark.extended
def test_a_model_that_loses_to_the_baseline_is_not_promoted(small):
    set_params(small, WEAK, {"promotion": {"floor": 0.0}}, commit=False)  # learns nothing; any floor passes
    for stage in ("validate", "train", "evaluate"):
        textops(small, stage)
    out = textops(small, "register").stdout
    assert "not promoted" in out and "TF-IDF + logistic regression baseline" in out, out
    assert "model.base=minilm" in out
    shown = json.loads(textops(small, "model", "show", "1").stdout)
    assert shown["aliases"] == ["challenger"]
    assert shown["baseline"]["macro_f1"] > shown["metrics"]["test_macro_f1"]
    assert float(shown["decision"]["baseline.macro_f1"]) == pytest.approx(shown["baseline"]["macro_f1"], abs=1e-6)
    assert f"{shown['baseline']['macro_f1']:.4f}" in out and f"{shown['metrics']['test_macro_f1']:.4f}" in out

    # With the rule off the same model is promoted (the floor is 0): the baseline was what stood in the way.
    set_params(small, {"promotion": {"beat_baseline": False}}, commit=False)
    decided = json.loads(textops(small, "register", "--json").stdout)
    assert decided["promote"] is True, decided
