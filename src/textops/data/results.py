"""The preprocess stage's result as a person reads it (`core.results`): the CLI's `textops preprocess` and the
training pipeline's stage line print the same `describe()`."""

from __future__ import annotations

from dataclasses import dataclass, field

from textops.core.results import StageResult

SHOWN_LABELS = 10  # a data set with hundreds of classes names its first few on the console line


@dataclass(frozen=True)
class PreprocessResult(StageResult):
    rows_out: int
    splits: dict[str, int] = field(default_factory=dict)
    rows_in: int | None = None
    labels: list[str] = field(default_factory=list)

    def describe(self) -> str:
        split = ", ".join(f"{name} {rows:,}" for name, rows in self.splits.items())
        read = (
            f"{self.rows_in:,} rows in, {self.rows_out:,} out"
            if self.rows_in is not None
            else f"{self.rows_out:,} rows"
        )
        line = f"{read} ({split})"
        if self.labels:
            more = len(self.labels) - SHOWN_LABELS
            line += f"; labels: {', '.join(self.labels[:SHOWN_LABELS])}{f' and {more} more' if more > 0 else ''}"
        return line
