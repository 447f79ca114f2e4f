"""Early stopping that waits while the model still learns.

transformers' EarlyStoppingCallback counts evaluations without a better kept metric (here val macro-F1). A model
trained from scratch on a small split predicts one class for its first epochs: its macro-F1 stays flat while its
val loss falls, and the metric alone stops it there (483 rows: stopped after 1.5 of 30 epochs at val accuracy
0.20, where training on reached 1.00). This one counts an evaluation as no progress only when neither the metric
improved nor the val loss fell, and not at all while the learning rate is still warming up (the first
train.warmup_ratio of the updates, where the loss can rise before it falls) or while the model answers one class
for every val text (`eval_predicted_classes` 1): such a model has not started to learn, and its loss sits flat at
the labels' prior for a while before it does (train.max_train_samples=300: stopped at update 40 of 300, right
after the warm-up, one class, val macro-F1 0.348). A model that never leaves one class trains to its epochs' end.
"""

from __future__ import annotations

import math

from transformers import EarlyStoppingCallback

# The val loss must fall by this share of its best value to count as progress: noise does not keep a run going.
LOSS_TOLERANCE = 1e-3


class EarlyStoppingOnMetricAndLoss(EarlyStoppingCallback):
    """Stop after EARLY_STOPPING_PATIENCE evaluations with no better metric_for_best_model and no lower eval_loss."""

    def __init__(self, early_stopping_patience: int = 1, early_stopping_threshold: float | None = 0.0):
        super().__init__(early_stopping_patience, early_stopping_threshold)
        self.best_loss = math.inf
        self.loss_fell = False
        self.one_class = False

    def on_evaluate(self, args, state, control, metrics, **kwargs):
        loss = metrics.get("eval_loss")
        self.loss_fell = loss is not None and math.isfinite(loss) and loss < self.best_loss * (1 - LOSS_TOLERANCE)
        if self.loss_fell:
            self.best_loss = loss
        self.one_class = metrics.get("eval_predicted_classes", 2) <= 1
        super().on_evaluate(args, state, control, metrics, **kwargs)

    def check_metric_value(self, args, state, control, metric_value):
        super().check_metric_value(args, state, control, metric_value)
        starting = state.global_step <= args.get_warmup_steps(state.max_steps) or self.one_class
        if self.loss_fell or starting:
            self.early_stopping_patience_counter = 0

    def state(self) -> dict:
        saved = super().state()
        saved["attributes"]["best_loss"] = self.best_loss
        return saved
