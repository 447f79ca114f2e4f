"""The train and evaluate stages' results as a person reads them (`core.results`): `textops train` / `textops
evaluate` print the same `describe()` the training pipeline logs as its stage line."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from textops.core.results import StageResult, figure


@dataclass(frozen=True)
class TrainResult(StageResult):
    # The kept checkpoint's val figures (`lineage.val_metric`), how the training went, its MLflow run.
    val_accuracy: float
    val_macro_f1: float
    run_id: str = ""
    base_model: str | None = None  # `auto` resolved
    global_step: int = 0
    train_samples_per_second: float | None = None  # none for the tfidf family (no Trainer)
    device: str = "cpu"
    resumed_from_step: int = 0

    def describe(self) -> str:
        how = [f"{self.base_model} model"] if self.base_model else []
        how += [f"{self.global_step} steps"] if self.global_step else []
        if self.train_samples_per_second:
            how.append(f"{self.train_samples_per_second:.1f} samples/s")
        went = f"{', '.join(how)} on {self.device}" if how else f"on {self.device}"
        if self.resumed_from_step:
            went += f", resumed from step {self.resumed_from_step}"
        return (
            f"val accuracy {figure(self.val_accuracy)}, macro-F1 {figure(self.val_macro_f1)} ({went}); "
            f"MLflow run {self.run_id}"
        )


@dataclass(frozen=True)
class EvalResult(StageResult):
    # The model's test figures on ROWS rows, the bag-of-words baseline's on the same rows (evaluate.baseline).
    accuracy: float
    macro_f1: float
    rows: int = 0
    texts_per_second: float | None = None
    run_id: str = ""
    baseline: dict[str, Any] | None = field(default=None)

    def describe(self) -> str:
        speed = f" ({self.texts_per_second:.0f} texts/s)" if self.texts_per_second else ""
        return (
            f"test accuracy {figure(self.accuracy)}, macro-F1 {figure(self.macro_f1)} on {self.rows} rows{speed}"
            f"{self.baseline_summary()}; MLflow run {self.run_id}"
        )

    def baseline_summary(self) -> str:
        """` (TF-IDF + logistic regression baseline: accuracy .., macro_f1 ..)`, or '' without a baseline."""
        if not self.baseline:
            return ""
        shown = ("accuracy", "macro_f1")
        figures = ", ".join(f"{k} {self.baseline[k]:.4f}" for k in shown if self.baseline.get(k) is not None)
        return f" ({self.baseline.get('model', 'baseline')} baseline: {figures})"
