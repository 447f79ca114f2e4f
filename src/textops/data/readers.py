"""Reading the files people hand to textops: labelled files for ingest (CSV, TSV, JSONL, Parquet, optionally
gzipped); files of texts to score (`predict`) are read by `textops.data.texts` with the parsing and checks here.

Every problem a person would have to fix in the file is a DataError with a one-paragraph message that names
the file and, where it can, the line.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from textops.core.errors import DataError, too_deep
from textops.core.formulas import neutralized_table
from textops.data.columns import (
    columns_by_position,
    group_values,
    labels_as_strings,
    looks_like_data,
    no_header_message,
)
from textops.data.set_aside import without_rows

FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".txt": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".json": "labelstudio",
}  # .json to ingest: Label Studio's JSON export (textops.data.labelstudio_export)
TEXT_FORMATS = {".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".jsonl": "jsonl", ".json": "jsonl"}  # written


def format_of(path: Path, formats: dict[str, str] = FORMATS, reader: str = "ingest") -> tuple[str, bool]:
    suffixes = [s.lower() for s in path.suffixes]
    compressed = bool(suffixes) and suffixes[-1] == ".gz"
    if compressed:
        suffixes = suffixes[:-1]
    fmt = formats.get(suffixes[-1] if suffixes else "")
    if fmt is None:
        raise DataError(
            f"{path}: unsupported file type {''.join(path.suffixes) or '(no extension)'}; "
            f"{reader} reads {', '.join(sorted(formats))} (optionally .gz)."
        )
    return fmt, compressed


def read_file_bytes(path: Path, max_bytes: int | None, compressed: bool) -> bytes:
    """The file's bytes, refusing files (or decompressed streams) larger than max_bytes (None: no limit)."""
    size = path.stat().st_size
    limit_mb = (max_bytes or 0) / 2**20
    if max_bytes is not None and size > max_bytes:
        raise DataError(f"{path}: {size / 2**20:.1f} MB is over the limit of {limit_mb:g} MB (data.max_file_mb).")
    if size == 0:
        raise DataError(f"{path}: the file is empty.")
    if not compressed:
        return path.read_bytes()
    try:
        with gzip.open(path, "rb") as fh:
            # never inflate more than the limit: a zip bomb stops here
            data = fh.read() if max_bytes is None else fh.read(max_bytes + 1)
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: not a readable gzip file ({exc}).") from exc
    if max_bytes is not None and len(data) > max_bytes:
        raise DataError(f"{path}: decompresses to more than the limit of {limit_mb:g} MB (data.max_file_mb); refused.")
    return data


def decode_text(path: Path, raw: bytes, quoted: bool = True) -> str:
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise DataError(f"{path}: encoded as UTF-16 (Excel's 'Unicode text'); save it as UTF-8 and ingest it again.")
    if b"\x00" in raw[:8192]:
        raise DataError(f"{path}: contains NUL bytes; this looks like a binary file, not {path.suffix} text.")
    try:
        text = raw.decode("utf-8-sig")  # strips a leading BOM
    except UnicodeDecodeError as exc:
        snippet = raw[max(0, exc.start - 20) : exc.start + 20]
        raise DataError(
            f"{path}: not valid UTF-8 at byte {exc.start} (near {snippet!r}); save the file as UTF-8 "
            "(a latin-1/cp1252 export is the usual cause) and ingest it again."
        ) from exc
    if "\x00" in text:
        raise DataError(f"{path}: contains NUL characters; refusing a file that is partly binary.")
    if "\ufeff" in text:
        raise DataError(f"{path}: a byte-order mark (U+FEFF) inside the data: files were concatenated; fix the file.")
    endings = line_endings(text, quoted)
    if len(endings) > 1:
        counts = ", ".join(f"{n} {kind}" for kind, n in endings.items())
        raise DataError(
            f"{path}: mixed line endings between rows ({counts}): the file was stitched together from different "
            "sources and rows may be split or joined wrongly; normalise the line endings (e.g. `dos2unix`) and "
            "ingest it again."
        )
    return text


def line_endings(text: str, quoted: bool = True) -> dict[str, int]:
    """Row terminators by kind (CRLF, LF, CR); with QUOTED, outside double-quoted fields (a CSV cell may
    hold a newline; a JSON string may not)."""
    if "\r" not in text:
        return {"LF": 1} if "\n" in text else {}
    crlf = text.count("\r\n")
    if crlf == text.count("\r") == text.count("\n"):
        return {"CRLF": crlf}
    outside = re.sub(r'"(?:[^"]|"")*"', '""', text) if quoted else text  # a quoted field's newlines are data
    crlf = outside.count("\r\n")
    counts = {"CRLF": crlf, "LF": outside.count("\n") - crlf, "CR": outside.count("\r") - crlf}
    return {kind: n for kind, n in counts.items() if n}


def parse_rows(path: Path, fmt: str, raw: bytes, header: bool = True, blank_lines: bool = False) -> pd.DataFrame:
    """The rows of RAW as read from a FMT file; HEADER=False: a CSV/TSV without a header row, its columns named
    "0", "1", ... (JSONL and Parquet name their columns: the flag does not apply). BLANK_LINES: a blank or
    spaces-only line of a CSV/TSV is a row (of empty cells), as Arrow's reader has it, so that it can be counted."""
    if fmt == "parquet":
        if raw[:4] != b"PAR1":
            raise DataError(f"{path}: not a Parquet file (bad magic bytes).")
        try:
            return pd.read_parquet(io.BytesIO(raw))
        except Exception as exc:  # pyarrow raises many types for corrupt files
            raise DataError(f"{path}: cannot read Parquet: {exc}") from exc
    text = decode_text(path, raw, quoted=fmt != "jsonl")
    if fmt == "jsonl":
        rows, numbers = [], []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}: line {number} is not valid JSON ({exc.msg}): {line[:80]!r}") from exc
            except RecursionError as exc:
                raise too_deep(f"{path}: line {number}", line, "a row of text and label") from exc
            if not isinstance(row, dict):
                raise DataError(f"{path}: line {number} is not a JSON object: {line[:80]!r}")
            rows.append(row)
            numbers.append(number)
        try:
            frame = pd.DataFrame(rows)
        except UnicodeEncodeError as exc:  # pandas' Arrow strings take valid Unicode only
            raise DataError(lone_surrogates(path, rows, numbers)) from exc
        frame.attrs["lines"] = numbers
        return frame
    return parse_table(path, fmt, text, header, blank_lines)


def parse_table(path: Path, fmt: str, text: str, header: bool, blank_lines: bool) -> pd.DataFrame:
    """The rows of the CSV or TSV (FMT) TEXT, as `parse_rows` reads them."""
    sep = "," if fmt == "csv" else "\t"
    if fmt == "csv" and header:
        from textops.data.labelstudio_export import is_tsv_export

        sep = "\t" if is_tsv_export(text) else sep  # Label Studio names its TSV export .csv
    try:
        # dtype=object keeps labels as written ("1", "1.0", "Sports"); NA only for truly empty cells.
        frame = pd.read_csv(
            io.StringIO(text),
            sep=sep,
            header=0 if header else None,
            dtype=object,
            keep_default_na=False,
            na_values=[""],
            skip_blank_lines=not blank_lines,
            on_bad_lines="error",
        )
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"{path}: {'no header and ' if header else ''}no rows.") from exc
    except pd.errors.ParserError as exc:
        raise DataError(f"{path}: malformed {fmt.upper()} (ragged rows or bad quoting): {exc}".strip()) from exc
    if not header:
        frame.columns = [str(i) for i in range(frame.shape[1])]
    # for line numbers, only when a row must be named
    frame.attrs.update(text=text, sep=sep, header=header)
    return frame


def lone_surrogates(path: Path, rows: list[dict], numbers: list[int]) -> str:
    """The message for JSON Lines whose strings hold half of a surrogate pair (`\\ud800`), naming the lines."""
    half = re.compile("[\ud800-\udfff]")
    bad = [n for n, row in zip(numbers, rows, strict=True) if any(half.search(str(v)) for v in row.values())]
    return (
        f"{path}: line(s) {bad[:10]} hold a lone surrogate (a \\ud800-\\udfff escape without its pair): not "
        "valid Unicode, so the text can be neither tokenized nor written out; fix those escapes."
    )


def record_lines(frame: pd.DataFrame, positions: list[int]) -> list[int]:
    """The line in the file where each data row at POSITIONS starts (1 is the first line): exact for JSONL and
    for CSV/TSV (quoted fields may span lines); for Parquet, the row number."""
    if "lines" in frame.attrs:
        return [frame.attrs["lines"][i] for i in positions]
    if "text" not in frame.attrs:
        return [i + 1 for i in positions]
    import csv

    starts, line = [], 1
    reader = csv.reader(io.StringIO(frame.attrs["text"]), delimiter=frame.attrs["sep"])
    for record in reader:  # pandas skips blank lines: so does this
        if record:
            starts.append(line)
        line = reader.line_num + 1
    skip = 1 if frame.attrs.get("header", True) else 0  # the first record is the header, if there is one
    data_starts = starts[skip:]
    return [data_starts[i] if i < len(data_starts) else i + 1 + skip for i in positions]


def blank_cells(values: pd.Series) -> pd.Series:
    return values.isna() | values.map(lambda v: isinstance(v, str) and not v.strip())


def drop_empty_rows(path: Path, frame: pd.DataFrame, max_invalid_fraction: float) -> pd.DataFrame:
    """FRAME without the rows whose text or label is empty, their line numbers in `attrs["dropped_lines"]`; a
    DataError naming the first of them when they are more than MAX_INVALID_FRACTION of the rows."""
    empty = blank_cells(frame["text"]) | blank_cells(frame["label"])
    if not empty.any():
        frame.attrs["dropped_lines"] = []
        return frame
    positions = np.flatnonzero(empty.to_numpy()).tolist()
    lines = record_lines(frame, positions)
    if len(positions) > max_invalid_fraction * len(frame):
        raise DataError(
            f"{path}: {len(positions)} of {len(frame)} rows have an empty text or label (lines "
            f"{', '.join(map(str, lines[:10]))}{', ...' if len(lines) > 10 else ''}); that is more than "
            f"validate.max_invalid_fraction ({max_invalid_fraction:.1%}) of the file, so it was refused. Fill in or "
            "delete those rows and ingest the file again."
        )
    kept = without_rows(frame, empty.to_numpy())
    kept.attrs = {"dropped_lines": lines, **({"tasks": kept.attrs["tasks"]} if "tasks" in kept.attrs else {})}
    return kept


def _select_columns(
    path: Path, frame: pd.DataFrame, text_column: str, label_column: str, group_column: str | None = None
) -> pd.DataFrame:
    """FRAME's text and label columns as `text`, `label` (and GROUP_COLUMN as `group` when FRAME has it); DataError
    when they are missing or misused."""
    if text_column == label_column:
        raise DataError(
            f"{path}: the text and the label column are both {text_column!r}; set --text-column and --label-column "
            "(or data.text_column / data.label_column) to two different columns."
        )
    missing = [c for c in (text_column, label_column) if c not in frame.columns]
    if missing:
        if frame.attrs.get("header", False) and looks_like_data(frame):  # a CSV/TSV read with a header row
            raise DataError(no_header_message(path, frame, [text_column, label_column]))
        found = ", ".join(map(str, frame.columns[:10])) or "none"
        raise DataError(
            f"{path}: missing column(s) {', '.join(missing)} (found: {found}); pass --text-column/--label-column "
            "or set data.text_column/data.label_column in params.yaml."
        )
    if frame.empty:
        raise DataError(f"{path}: has a header but no rows.")
    attrs = frame.attrs
    group = (
        frame[group_column]
        if group_column in frame.columns and group_column not in (text_column, label_column)
        else None
    )
    frame = frame[[text_column, label_column]].rename(columns={text_column: "text", label_column: "label"})
    if group is not None:
        frame["group"] = group.to_numpy()
    frame.attrs = attrs
    header_again = (frame["text"].astype(str) == text_column) & (frame["label"].astype(str) == label_column)
    if attrs.get("header", True) and header_again.any():  # without a header, the names are positions
        lines = record_lines(frame, np.flatnonzero(header_again.to_numpy()).tolist()[:5])
        raise DataError(
            f"{path}: the header row appears again inside the data (lines {lines}); files were concatenated."
        )
    if blank_cells(frame["label"]).all():
        raise DataError(f"{path}: every value in the label column '{label_column}' is empty.")
    if blank_cells(frame["text"]).all():
        raise DataError(f"{path}: every value in the text column '{text_column}' is empty.")
    non_string = frame["text"].dropna().map(lambda v: not isinstance(v, str))
    if non_string.any():
        examples = frame["text"][non_string.index[non_string]].head(3).tolist()
        raise DataError(f"{path}: text column '{text_column}' holds non-text values, e.g. {examples}.")
    return frame


def check_file(path: Path, missing: str) -> None:
    if not path.exists():
        raise DataError(f"{path}: {missing}")
    if not path.is_file():
        raise DataError(f"{path}: not a regular file.")


def read_labelled_file(
    path: Path,
    text_column: str,
    label_column: str,
    max_file_mb: float,
    max_invalid_fraction: float = 0.0,
    *,
    header: bool = True,
    group_column: str | None = None,
) -> pd.DataFrame:
    """Read CSV/TSV/JSONL/Parquet (optionally gzipped) into a frame with string columns `text`, `label`.

    Rows with an empty text or label are dropped up to MAX_INVALID_FRACTION of the file; their line numbers are
    in the result's `attrs["dropped_lines"]`. Raises DataError with a one-paragraph message for anything a person
    would have to fix in the file. Texts are kept as written: `NA`, `null` or `None` are texts, only an empty
    cell is missing.

    HEADER=False: a CSV/TSV without a header row, its columns taken by position (see `columns.columns_by_position`:
    TEXT_COLUMN/LABEL_COLUMN are 0-based positions, or chosen from the values); JSONL and Parquet name their
    columns and ignore it. The columns taken are in `attrs["columns"]` (`{"text": ..., "label": ...}`).

    GROUP_COLUMN, when the file has it (a file with a header): kept as `group`, strings (None where empty), for the
    evaluation's slices (`textops.data.slices`); never a model input.
    """
    path = Path(path)
    if path.is_symlink():
        # A link could make ingest read (and version, and push) any file the process can see.
        raise DataError(
            f"{path}: a symbolic link (to {os.readlink(path)}); ingest reads regular files only: copy the file "
            "or pass its real path."
        )
    check_file(path, "no such file.")
    fmt, compressed = format_of(path)
    raw = read_file_bytes(path, int(max_file_mb * 2**20), compressed)
    if fmt == "labelstudio":
        from textops.data.labelstudio_export import read_export

        frame = read_export(path, decode_text(path, raw, quoted=False), text_column, label_column)
    else:
        frame = parse_rows(path, fmt, raw, header)
        frame = _one_row_per_task(frame) if fmt in ("csv", "tsv") and header else frame
    columns = {"text": text_column, "label": label_column}
    if not frame.attrs.get("header", True):
        columns = columns_by_position(path, frame, columns)
    frame = _select_columns(path, frame, columns["text"], columns["label"], group_column if header else None)
    frame = drop_empty_rows(path, frame, max_invalid_fraction)
    frame["label"] = labels_as_strings(path, frame["label"])
    if "group" in frame.columns:
        frame["group"] = group_values(frame["group"])
        columns = {**columns, "group": str(group_column)}
    frame.attrs["columns"] = columns
    frame.attrs["format"] = "labelstudio" if "tasks" in frame.attrs else fmt
    return frame


def _one_row_per_task(frame: pd.DataFrame) -> pd.DataFrame:
    """A Label Studio CSV/TSV export (one row per annotation) as one row per task, its latest annotation's."""
    from textops.data.labelstudio_export import is_export_table, latest_per_task

    if not is_export_table(frame.columns):
        return frame
    latest = latest_per_task(frame)
    latest.attrs["lines"] = record_lines(frame, latest.attrs.pop("positions"))
    return latest


def write_table(df: pd.DataFrame, path: Path) -> None:
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path}: is a directory; give the output file's name, e.g. {path / 'predictions.csv'}.")
    kind = TEXT_FORMATS.get(path.suffix.lower())
    if kind is None:
        raise DataError(f"{path}: unsupported output type {path.suffix!r}; use CSV, TSV, Parquet or JSONL.")
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "parquet":
        df.to_parquet(path, index=False)
    elif kind == "jsonl":
        df.to_json(path, orient="records", lines=True, force_ascii=False)
    else:  # opened in a spreadsheet: a formula text is shown, not run (as the label queue and feedback export do)
        neutralized_table(df).to_csv(path, sep="\t" if kind == "tsv" else ",", index=False)
