"""Which columns of a file people hand to textops hold the text and the label: a file without a header row
(columns by position, or chosen from the values), and the message that says a file seems to have none; the label
and group columns' values as strings."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from textops.core.errors import DataError

NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def looks_like_data(frame: pd.DataFrame) -> bool:
    """True when FRAME's column names (a CSV/TSV's first row) look like a row of data, not a header: a name that
    is a number, that occurs as a value in its own column, that is longer than 40 characters or that has 4 or
    more words."""
    for position, name in enumerate(frame.columns):
        name = str(name).strip()
        if NUMBER.fullmatch(name) or len(name) > 40 or len(name.split()) >= 4:
            return True
        values = frame.iloc[:, position].dropna()
        if (values.astype(str).str.strip() == name).any():
            return True
    return False


def first_row(frame: pd.DataFrame) -> str:
    """FRAME's column names, as the first row of the file they were read from (long cells shortened)."""
    cells = [str(c) if len(str(c)) <= 40 else f"{str(c)[:37]}..." for c in frame.columns[:10]]
    return ", ".join(cells) + (", ..." if len(frame.columns) > 10 else "")


def no_header_message(path: Path, frame: pd.DataFrame, columns: list[str]) -> str:
    """The message for a headerless CSV/TSV read as if its first row were the header; COLUMNS: the names asked
    for (text, then label for a labelled file)."""
    if len(columns) > 1:
        by_position = (
            "columns by position: --text-column/--label-column take 0-based positions, default: the text is the "
            "column with the longest values, the label the other column with the fewest distinct values"
        )
    else:
        by_position = (
            "the text column by position: --text-column takes a 0-based position, default: the column with the "
            "longest values"
        )
    sep = frame.attrs.get("sep", ",")
    joined = ",".join(columns) if sep == "," else "\\t".join(columns)  # a TSV's tab written as \t
    line = f"`{joined}`" + ("" if sep == "," else " (a tab between the names)")
    if len(columns) == 1 and len(frame.columns) > 1:
        line = f"naming the columns, with `{columns[0]}` for the texts"
    return (
        f"{path}: the first row ({first_row(frame)}) looks like data, not a header: the file seems to have no "
        f"header row. Pass --no-header ({by_position}), or add a header line {line}."
    )


def _blank_column(values: pd.Series) -> bool:
    return bool((values.isna() | values.map(lambda v: isinstance(v, str) and not v.strip())).all())


def columns_by_position(path: Path, frame: pd.DataFrame, wanted: dict[str, str]) -> dict[str, str]:
    """For a CSV/TSV read without a header (columns "0", "1", ...): the column of each role in WANTED (`text`,
    and `label` for a labelled file). A digit string is a 0-based position; anything else (a name, which a
    headerless file cannot have) chooses automatically: the text is the column with the longest mean length,
    the label the remaining column with the fewest distinct values (ties: the lower position; columns with
    nothing in them are not chosen)."""
    count = frame.shape[1]
    chosen: dict[str, str] = {}
    for role, column in wanted.items():
        column = str(column).strip()
        if column.isdigit():
            if int(column) >= count:
                raise DataError(
                    f"{path}: --{role}-column {column}: there is no column at that position; the file has {count} "
                    f"column(s) (positions 0 to {count - 1})."
                )
            chosen[role] = str(int(column))

    def free() -> list[str]:
        left = [c for c in frame.columns if c not in chosen.values()]
        return [c for c in left if not _blank_column(frame[c])] or left

    if "text" not in chosen:
        candidates = free()
        if not candidates:
            raise DataError(f"{path}: has {count} column(s), all taken; there is no column left for the text.")
        lengths = {c: frame[c].dropna().astype(str).str.len().mean() for c in candidates}
        chosen["text"] = max(candidates, key=lambda c: (0.0 if pd.isna(lengths[c]) else lengths[c], -int(c)))
    if "label" in wanted and "label" not in chosen:
        candidates = free()
        if not candidates:
            raise DataError(
                f"{path}: has only {count} column{'s' if count != 1 else ''}; a labelled file needs a text and a "
                "label column."
            )
        chosen["label"] = min(candidates, key=lambda c: (frame[c].nunique(dropna=True), int(c)))
    return {role: chosen[role] for role in wanted}


def labels_as_strings(path: Path, labels: pd.Series) -> pd.Series:
    """Labels as strings (Unicode NFC, trimmed: `café` typed two ways is one class), refusing mixed kinds (ints
    with names), non-integer numbers and integers beyond 64 bits."""
    kinds = {type(v).__name__ for v in labels}
    values = labels.astype(str).str.strip().str.normalize("NFC")
    if kinds & {"float", "float64", "float32"}:
        numbers = pd.to_numeric(labels, errors="coerce")
        bad = (numbers != np.floor(numbers)) | ~np.isfinite(numbers) | (numbers.abs() >= 2.0**63)
        if bad.any():
            raise DataError(f"{path}: label values must be names or whole numbers, got {labels[bad].head(3).tolist()}.")
        values = numbers.astype("int64").astype(str)
    if kinds & {"bool", "bool_"}:
        raise DataError(f"{path}: boolean labels are ambiguous; write them as names (e.g. negative/positive).")
    if kinds - {"str", "int", "int64", "int32", "float", "float64", "float32"}:
        raise DataError(f"{path}: label column holds {sorted(kinds)} values; labels must be names or integers.")
    numeric = values.str.fullmatch(r"[+-]?\d+(\.0+)?")
    if numeric.any() and not numeric.all():
        examples = sorted(set(values[numeric].head(2)) | set(values[~numeric].head(2)))
        raise DataError(f"{path}: the label column mixes numbers and names ({examples}); use one kind of label.")
    if values.str.fullmatch(r"[+-]?\d+\.\d*").any():
        bad = values[values.str.fullmatch(r"[+-]?\d+\.\d*")].head(3).tolist()
        if any(not v.rstrip("0").endswith(".") for v in bad):
            raise DataError(f"{path}: label values must be names or whole numbers, got {bad}.")
    if numeric.all():
        whole = values.str.replace(r"\.0+$", "", regex=True)
        too_big = whole.map(lambda v: not -(2**63) <= int(v) < 2**63)
        if too_big.any():
            raise DataError(
                f"{path}: label values must be names or whole numbers that fit in 64 bits, got "
                f"{whole[too_big].head(3).tolist()}; write such labels as names."
            )
        values = whole.astype("int64").astype(str)
    return values


def group_values(values: pd.Series) -> pd.Series:
    """A group column's values as trimmed strings (a whole number written as one: 3.0 is "3"), None where empty."""

    def one(v) -> str | None:
        if v is None or (isinstance(v, float) and not np.isfinite(v)):
            return None
        if isinstance(v, float) and v == int(v):
            v = int(v)
        text = str(v).strip()
        return text or None

    return pd.Series([one(v) for v in values], index=values.index, dtype=object)
