"""Files of texts to score: `textops predict` on either engine, and `textops monitor`. The local engine reads a
file with `read_texts`; Ray reads it in blocks with Arrow set up to see the same rows (`scale.batch_ray`), and its
actors apply the same `blank_texts`. One rule for what is a text, on both engines:

- a cell is a text as written: `NA`, `null`, `N/A`, `None` are texts, never read as missing;
- a row whose text is empty or whitespace only (an empty cell, `""`, spaces, a blank line of a CSV, TSV or .txt
  file, a JSON null) is not scored: it is left out of the output and counted (`attrs["blank_rows"]`, the console
  line), the same rows on both engines. A blank line between JSON Lines is not a row (JSON's whitespace);
- a `.txt` file is one text per line (no header, no quoting; lines split as `str.splitlines` splits them), its
  column `text`;
- a text with a lone surrogate (a JSON `\\ud800` escape without its pair) is refused, naming its line
  (`readers.parse_rows`): it can be neither tokenized nor written out.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from textops.core.errors import DataError
from textops.data.columns import columns_by_position, looks_like_data, no_header_message
from textops.data.readers import FORMATS, blank_cells, check_file, decode_text, format_of, parse_rows, read_file_bytes

READ_TEXT_FORMATS = {**FORMATS, ".json": "jsonl", ".txt": "lines"}  # .json as JSON Lines; .txt a text per line
LINES_COLUMN = "text"  # a .txt file's one column (Ray's read_text names it so too)


def blank_texts(values: pd.Series) -> np.ndarray:
    """True where VALUES (a text column as read) holds no text: missing, or whitespace only."""
    return blank_cells(values).to_numpy(dtype=bool)


def without_blank_texts(frame: pd.DataFrame, column: str) -> tuple[pd.DataFrame, int]:
    """FRAME without its rows of no text (`blank_texts`), and how many there were."""
    blank = blank_texts(frame[column])
    if not blank.any():
        return frame, 0
    return frame[~blank].reset_index(drop=True), int(blank.sum())


def lines_column(path: Path, text_column: str) -> str:
    """A .txt file's column; DataError when another is asked for (its lines have no columns)."""
    if str(text_column) not in (LINES_COLUMN, "0"):
        raise DataError(
            f"{path}: a .txt file is one text per line, with no columns: --text-column {text_column!r} does not "
            f"apply (leave it out), or save the file as CSV with a {text_column!r} column."
        )
    return LINES_COLUMN


def read_texts(path: Path, text_column: str = "text", *, header: bool = True) -> pd.DataFrame:
    """A CSV/TSV/JSONL/Parquet file (optionally gzipped; `.json` is read as JSON Lines) with a text column, or a
    .txt file of one text per line: every column as written (a CSV's cells as strings, `NA` or `null` too), parsed,
    decoded and checked as `read_labelled_file` does, but with no size limit and no checks on the values; the rows
    of no text left out and counted in `attrs["blank_rows"]` (see the module's rule).

    HEADER=False: a CSV/TSV without a header row (columns "0", "1", ...): TEXT_COLUMN is a 0-based position, or,
    when it is not a number, the column with the longest values. The column taken is `attrs["columns"]["text"]`.
    """
    path = Path(path)
    fmt, compressed = format_of(path, READ_TEXT_FORMATS, "textops")
    check_file(path, "file not found.")
    raw = read_file_bytes(path, None, compressed)
    if fmt == "lines":
        column = lines_column(path, text_column)
        frame = pd.DataFrame({column: decode_text(path, raw, quoted=False).splitlines()}, dtype=object)
    else:
        frame = parse_rows(path, fmt, raw, header, blank_lines=True)
        column = text_column_of(path, frame, text_column)
    frame, blank = without_blank_texts(frame, column)
    frame.attrs = {"columns": {"text": column}, "blank_rows": blank}  # not the file's text: it would be copied
    return frame


def text_column_of(path: Path, frame: pd.DataFrame, text_column: str) -> str:
    """The column of FRAME (as parsed) that holds the texts; DataError with what to do when there is none."""
    if not frame.attrs.get("header", True):
        column = columns_by_position(path, frame, {"text": text_column})["text"]
        first = frame[column].iloc[0] if len(frame) else None
        if isinstance(first, str) and first.strip().lower() in {"text", str(text_column).strip().lower()}:
            raise DataError(
                f"{path}: its first row is {first!r}, a header, which --no-header would score as a text: leave "
                "--no-header out (the file names its columns), or remove that row."
            )
        return column
    if text_column not in frame.columns:
        if frame.attrs.get("header", False) and looks_like_data(frame):
            raise DataError(no_header_message(path, frame, [text_column]))
        hint = ""
        if frame.shape[1] == 1:
            hint = (
                f" With one column, the first line ({str(frame.columns[0])[:60]!r}) was read as its name: for one "
                "text per line with no header, pass --no-header or name the file .txt; else name the column with "
                "--text-column."
            )
        raise DataError(f"{path}: no {text_column!r} column (columns: {', '.join(map(str, frame.columns))}).{hint}")
    return text_column
