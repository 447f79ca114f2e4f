"""Early stopping waits while the val loss falls, and a tiny model gets enough updates on a small train split."""

from __future__ import annotations

import pandas as pd
import pytest
from transformers import TrainerControl, TrainerState, TrainingArguments

from textops.core.artifacts import split_path
from textops.core.config import Params
from textops.modeling.model import resolved, tiny_epochs
from textops.modeling.stopping import EarlyStoppingOnMetricAndLoss


def evaluations(tmp_path, history: list[tuple], patience: int = 2, warmup: float = 0.0) -> int:
    """How many of HISTORY's (macro-F1, loss[, classes predicted]) evaluations, one every 10 of 1,000 updates, run
    before the callback stops the training (WARMUP: the share of the updates the learning rate warms up)."""
    args = TrainingArguments(
        output_dir=str(tmp_path),
        metric_for_best_model="macro_f1",
        greater_is_better=True,
        eval_strategy="steps",
        load_best_model_at_end=True,
        report_to=[],
        warmup_steps=warmup,
    )
    state, callback = TrainerState(max_steps=1000), EarlyStoppingOnMetricAndLoss(early_stopping_patience=patience)
    for i, (f1, loss, *classes) in enumerate(history, 1):
        state.global_step = 10 * i
        control = TrainerControl()
        metrics = {"eval_macro_f1": f1, "eval_loss": loss, "eval_predicted_classes": (classes or [2])[0]}
        callback.on_evaluate(args, state, control, metrics)
        if state.best_metric is None or f1 > state.best_metric:  # what the Trainer records at a checkpoint
            state.best_metric = f1
        if control.should_training_stop:
            return i
    return len(history)


def test_a_flat_metric_with_a_falling_loss_keeps_training(tmp_path):
    # a model from scratch still predicting one class: macro-F1 flat, loss falling
    learning = [(0.11, 1.10 - 0.01 * i) for i in range(12)] + [(0.9, 0.5)]
    assert evaluations(tmp_path, learning) == len(learning)


def test_neither_metric_nor_loss_improving_stops_after_patience(tmp_path):
    stuck = [(0.80, 0.40), (0.79, 0.41), (0.80, 0.40), (0.78, 0.45), (0.80, 0.42)]
    assert evaluations(tmp_path, stuck) == 3  # the first sets the bests; two without progress stop it
    noisy = [(0.80, 0.40), (0.80, 0.39999), (0.80, 0.39998)]  # a fall within the tolerance is no progress
    assert evaluations(tmp_path, noisy) == 3


def test_evaluations_while_the_learning_rate_warms_up_do_not_count(tmp_path):
    rising_in_warmup = [(0.11, 1.10), (0.11, 1.11), (0.11, 1.12), (0.11, 1.13), (0.11, 1.14), (0.11, 1.15)]
    assert evaluations(tmp_path, rising_in_warmup, warmup=0.05) == 6  # updates 10-60 of 1,000: all in warm-up
    assert evaluations(tmp_path, rising_in_warmup, warmup=0.0) == 3


def test_a_model_answering_one_class_keeps_training_while_its_loss_sits_flat(tmp_path):
    # train.max_train_samples=300 on tiny: after the warm-up the model answers one class (val macro-F1 0.348) with
    # its loss flat at the labels' prior; it stopped there, at update 40 of 300.
    collapsed = [(0.348, 0.6931, 1)] * 8 + [(0.52, 0.68, 2), (0.71, 0.60, 2)]
    assert evaluations(tmp_path, collapsed) == len(collapsed)
    # The same flat figures with two classes answered are a plateau: patience stops it.
    assert evaluations(tmp_path, [(f1, loss, 2) for f1, loss, _ in collapsed]) == 3


def test_compute_metrics_counts_the_classes_answered():
    import numpy as np

    from textops.modeling.train import compute_metrics

    one_class = compute_metrics((np.array([[2.0, 1.0]] * 4), np.array([0, 1, 0, 1])))
    assert one_class["predicted_classes"] == 1 and one_class["macro_f1"] == pytest.approx(1 / 3)
    assert compute_metrics((np.array([[2.0, 1.0], [0.0, 1.0]]), np.array([0, 1])))["predicted_classes"] == 2


def test_a_rising_metric_alone_keeps_training(tmp_path):
    overfitting_but_better = [(0.70, 0.40), (0.72, 0.45), (0.74, 0.50), (0.76, 0.55), (0.75, 0.60), (0.74, 0.62)]
    assert evaluations(tmp_path, overfitting_but_better) == 6


def write_train_split(root, params: Params, rows: int) -> None:
    path = split_path(root, params, "train")
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"text": [f"t{i}" for i in range(rows)], "label": [i % 2 for i in range(rows)]}).to_parquet(path)


@pytest.mark.parametrize(("rows", "epochs"), [(3215, 3.0), (9600, 3.0), (483, 19.0), (64, 100.0), (20, 100.0)])
def test_tiny_epochs_give_a_small_split_enough_updates(tmp_path, rows, epochs):
    params = Params()
    write_train_split(tmp_path, params, rows)
    assert tiny_epochs(tmp_path, params, batch_size=32) == epochs


def test_the_tiny_preset_fills_epochs_only_where_params_leave_them_null(tmp_path):
    write_train_split(tmp_path, Params(), 483)
    from textops.modeling.model import BaseChoice

    tiny = BaseChoice("tiny", "test")
    assert resolved(tmp_path, Params(), tiny).train.epochs == 19.0
    set_by_user = Params.model_validate({"train": {"epochs": 2}})
    assert resolved(tmp_path, set_by_user, tiny).train.epochs == 2
    capped = Params.model_validate({"train": {"max_train_samples": 3200}})
    write_train_split(tmp_path, Params(), 20000)
    assert resolved(tmp_path, capped, tiny).train.epochs == 3.0
    assert resolved(tmp_path, Params(), BaseChoice("minilm", "test")).train.epochs == 2
