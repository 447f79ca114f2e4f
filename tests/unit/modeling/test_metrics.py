"""The evaluate stage's metrics, against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from textops.modeling.evaluate import classification_metrics, expected_calibration_error


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
    assert m["per_class"]["neg"] == {
        "precision": pytest.approx(2 / 3),
        "recall": pytest.approx(2 / 3),
        "f1": pytest.approx(2 / 3),
        "support": 3,
    }
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


def test_predictions_keep_the_type_of_the_labels():
    from textops.modeling.pyfunc import label_values, to_frame

    probs = np.array([[0.2, 0.8], [0.9, 0.1]])
    ints = to_frame(probs, ["0", "1"])
    assert ints["label"].tolist() == [1, 0] and str(ints["label"].dtype) == "int64"
    assert list(ints.columns) == ["label", "prob_0", "prob_1"]
    assert to_frame(probs, ["neg", "pos"])["label"].tolist() == ["pos", "neg"]
    assert label_values(["-1", "1"]) == [-1, 1] and label_values(["1", "one"]) == ["1", "one"]


def test_the_evaluation_reports_every_slice_kind_and_logs_them_as_slice_metrics():
    import pandas as pd

    from textops.modeling.evaluate import flat_slice_metrics, slice_figures

    texts = ["The acting was wonderful and the story kept me watching until the end."] * 4 + ["ok"] * 4
    test = pd.DataFrame({"text": texts, "label": [0, 1] * 4, "group": ["web/a.b", "mail"] * 4})
    probs = np.array([[0.9, 0.1], [0.2, 0.8]] * 4)  # right on every row
    slices = slice_figures(test, test["label"].to_numpy(), probs)
    assert set(slices) == {"length", "language", "group"}
    assert set(slices["language"]) == {"en", "und"} and slices["group"]["web/a.b"]["rows"] == 4
    flat = flat_slice_metrics(slices)
    assert flat["slice.language.en.accuracy"] == 1.0 and flat["slice.group.web_a_b.rows"] == 4.0
    assert flat["slice.length.q1.macro_f1"] == 1.0
    assert all(k.startswith("slice.") and k.count(".") == 3 for k in flat)
    assert "group" not in slice_figures(test.drop(columns="group"), test["label"].to_numpy(), probs)
