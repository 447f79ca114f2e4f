"""Rows of a file to ingest that one check refuses, set aside instead of refusing the whole file: a spreadsheet
formula among a hundred labelled texts (one client of the feedback API, one Label Studio task) would otherwise stall
every retrain of the landing directory. Up to `validate.max_invalid_fraction` of a file's rows (as for empty rows)
are written, with the reason, to `<file>.set-aside.csv` beside it and left out; more, and the raw suite refuses the
file as before, naming them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from textops.core.formulas import is_formula, neutralized

SUFFIX = ".set-aside.csv"
FORMULA_REASON = "a spreadsheet formula (validate.refuse_formulas): a spreadsheet would run it"


def without_rows(frame: pd.DataFrame, drop: np.ndarray) -> pd.DataFrame:
    """FRAME without the rows DROP marks, its attrs kept, and a Label Studio export's provenance (`attrs["tasks"]`,
    row for row) without those rows' entries."""
    kept = frame[~drop].reset_index(drop=True)
    kept.attrs = {**frame.attrs}
    if len(frame.attrs.get("tasks") or []) == len(frame):
        kept.attrs["tasks"] = [t for t, gone in zip(frame.attrs["tasks"], drop, strict=True) if not gone]
    return kept


def set_aside_path(source: Path, folder: Path | None = None) -> Path:
    """`<file>.set-aside.csv` beside SOURCE, or in FOLDER (a landing file's go to held/: beside it, the next
    retrain would take the set-aside file for a new landing file)."""
    return (Path(folder) if folder else Path(source).parent) / (Path(source).name + SUFFIX)


def set_aside_formulas(
    source: str, frame: pd.DataFrame, max_fraction: float, folder: Path | None = None
) -> tuple[pd.DataFrame, Path | None, int]:
    """FRAME without its formula rows when they are few (at most MAX_FRACTION of it), written with their reason
    beside SOURCE (neutralised, so the file itself is safe to open); (frame, the set-aside file or None, rows)."""
    formula = frame["text"].map(is_formula) | frame["label"].map(is_formula)
    count = int(formula.sum())
    if not count or count > max_fraction * len(frame):
        return frame, None, 0
    aside = frame[formula.to_numpy()].assign(reason=FORMULA_REASON)
    path = set_aside_path(Path(source), folder)
    written: Path | None = path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        aside.assign(text=aside["text"].map(neutralized), label=aside["label"].map(neutralized)).to_csv(
            path, index=False
        )
    except OSError:
        written = None  # a read-only folder: the rows are still left out, and the message says so
    return without_rows(frame, formula.to_numpy()), written, count
