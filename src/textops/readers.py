"""Reading the files people hand to textops: labelled files for ingest (CSV, TSV, JSONL, Parquet, optionally
gzipped) and files of texts to score (`predict`).

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

from textops.errors import DataError

FORMATS = {".csv": "csv", ".tsv": "tsv", ".txt": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}
TEXT_FORMATS = {".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".jsonl": "jsonl", ".json": "jsonl"}


def _format_of(path: Path) -> tuple[str, bool]:
    suffixes = [s.lower() for s in path.suffixes]
    compressed = bool(suffixes) and suffixes[-1] == ".gz"
    if compressed:
        suffixes = suffixes[:-1]
    fmt = FORMATS.get(suffixes[-1] if suffixes else "")
    if fmt is None:
        raise DataError(
            f"{path}: unsupported file type {''.join(path.suffixes) or '(no extension)'}; "
            f"ingest reads {', '.join(sorted(FORMATS))} (optionally .gz)."
        )
    return fmt, compressed


def _read_bytes(path: Path, max_bytes: int, compressed: bool) -> bytes:
    """The file's bytes, refusing files (or decompressed streams) larger than max_bytes."""
    size = path.stat().st_size
    limit_mb = max_bytes / 2**20
    if size > max_bytes:
        raise DataError(f"{path}: {size / 2**20:.1f} MB is over the limit of {limit_mb:g} MB (data.max_file_mb).")
    if size == 0:
        raise DataError(f"{path}: the file is empty.")
    if not compressed:
        return path.read_bytes()
    try:
        with gzip.open(path, "rb") as fh:
            data = fh.read(max_bytes + 1)  # never inflate more than the limit: a zip bomb stops here
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: not a readable gzip file ({exc}).") from exc
    if len(data) > max_bytes:
        raise DataError(
            f"{path}: decompresses to more than the limit of {limit_mb:g} MB (data.max_file_mb); refused."
        )
    return data


def _decode(path: Path, raw: bytes, quoted: bool = True) -> str:
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


def _parse(path: Path, fmt: str, raw: bytes) -> pd.DataFrame:
    if fmt == "parquet":
        if raw[:4] != b"PAR1":
            raise DataError(f"{path}: not a Parquet file (bad magic bytes).")
        try:
            return pd.read_parquet(io.BytesIO(raw))
        except Exception as exc:  # pyarrow raises many types for corrupt files
            raise DataError(f"{path}: cannot read Parquet: {exc}") from exc
    text = _decode(path, raw, quoted=fmt != "jsonl")
    if fmt == "jsonl":
        rows, numbers = [], []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}: line {number} is not valid JSON ({exc.msg}): {line[:80]!r}") from exc
            if not isinstance(row, dict):
                raise DataError(f"{path}: line {number} is not a JSON object: {line[:80]!r}")
            rows.append(row)
            numbers.append(number)
        frame = pd.DataFrame(rows)
        frame.attrs["lines"] = numbers
        return frame
    sep = "," if fmt == "csv" else "\t"
    try:
        # dtype=object keeps labels as written ("1", "1.0", "Sports"); NA only for truly empty cells.
        frame = pd.read_csv(
            io.StringIO(text), sep=sep, dtype=object, keep_default_na=False, na_values=[""], on_bad_lines="error"
        )
        frame.attrs["text"], frame.attrs["sep"] = text, sep  # for line numbers, only when a row must be named
        return frame
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"{path}: no header and no rows.") from exc
    except pd.errors.ParserError as exc:
        raise DataError(f"{path}: malformed {fmt.upper()} (ragged rows or bad quoting): {exc}".strip()) from exc


def _labels_as_strings(path: Path, labels: pd.Series) -> pd.Series:
    """Labels as strings (Unicode NFC, trimmed: `café` typed two ways is one class), refusing mixed kinds (ints
    with names), non-integer numbers and integers beyond 64 bits."""
    kinds = {type(v).__name__ for v in labels}
    values = labels.astype(str).str.strip().str.normalize("NFC")
    if kinds & {"float", "float64", "float32"}:
        numbers = pd.to_numeric(labels, errors="coerce")
        bad = (numbers != np.floor(numbers)) | ~np.isfinite(numbers) | (numbers.abs() >= 2.0**63)
        if bad.any():
            raise DataError(
                f"{path}: label values must be names or whole numbers, got {labels[bad].head(3).tolist()}."
            )
        values = numbers.astype("int64").astype(str)
    if kinds & {"bool", "bool_"}:
        raise DataError(f"{path}: boolean labels are ambiguous; write them as names (e.g. negative/positive).")
    if kinds - {"str", "int", "int64", "int32", "float", "float64", "float32"}:
        raise DataError(f"{path}: label column holds {sorted(kinds)} values; labels must be names or integers.")
    numeric = values.str.fullmatch(r"[+-]?\d+(\.0+)?")
    if numeric.any() and not numeric.all():
        examples = sorted(set(values[numeric].head(2)) | set(values[~numeric].head(2)))
        raise DataError(
            f"{path}: the label column mixes numbers and names ({examples}); use one kind of label."
        )
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
    data_starts = starts[1:]  # the first record is the header
    return [data_starts[i] if i < len(data_starts) else i + 2 for i in positions]


def _blank(values: pd.Series) -> pd.Series:
    return values.isna() | values.map(lambda v: isinstance(v, str) and not v.strip())


def drop_empty_rows(path: Path, frame: pd.DataFrame, max_invalid_fraction: float) -> pd.DataFrame:
    """FRAME without the rows whose text or label is empty, their line numbers in `attrs["dropped_lines"]`; a
    DataError naming the first of them when they are more than MAX_INVALID_FRACTION of the rows."""
    empty = _blank(frame["text"]) | _blank(frame["label"])
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
    kept = frame[~empty.to_numpy()].reset_index(drop=True)
    kept.attrs = {"dropped_lines": lines}
    return kept


def _select_columns(path: Path, frame: pd.DataFrame, text_column: str, label_column: str) -> pd.DataFrame:
    """FRAME's text and label columns as `text`, `label`; DataError when they are missing or misused."""
    if text_column == label_column:
        raise DataError(
            f"{path}: the text and the label column are both {text_column!r}; set --text-column and --label-column "
            "(or data.text_column / data.label_column) to two different columns."
        )
    missing = [c for c in (text_column, label_column) if c not in frame.columns]
    if missing:
        found = ", ".join(map(str, frame.columns[:10])) or "none"
        raise DataError(
            f"{path}: missing column(s) {', '.join(missing)} (found: {found}); pass --text-column/--label-column "
            "or set data.text_column/data.label_column in params.yaml."
        )
    if frame.empty:
        raise DataError(f"{path}: has a header but no rows.")
    attrs = frame.attrs
    frame = frame[[text_column, label_column]].rename(columns={text_column: "text", label_column: "label"})
    frame.attrs = attrs
    header_again = (frame["text"].astype(str) == text_column) & (frame["label"].astype(str) == label_column)
    if header_again.any():
        lines = record_lines(frame, np.flatnonzero(header_again.to_numpy()).tolist()[:5])
        raise DataError(
            f"{path}: the header row appears again inside the data (lines {lines}); files were concatenated."
        )
    if _blank(frame["label"]).all():
        raise DataError(f"{path}: every value in the label column '{label_column}' is empty.")
    if _blank(frame["text"]).all():
        raise DataError(f"{path}: every value in the text column '{text_column}' is empty.")
    non_string = frame["text"].dropna().map(lambda v: not isinstance(v, str))
    if non_string.any():
        examples = frame["text"][non_string.index[non_string]].head(3).tolist()
        raise DataError(f"{path}: text column '{text_column}' holds non-text values, e.g. {examples}.")
    return frame


def read_labelled_file(
    path: Path, text_column: str, label_column: str, max_file_mb: float, max_invalid_fraction: float = 0.0
) -> pd.DataFrame:
    """Read CSV/TSV/JSONL/Parquet (optionally gzipped) into a frame with string columns `text`, `label`.

    Rows with an empty text or label are dropped up to MAX_INVALID_FRACTION of the file; their line numbers are
    in the result's `attrs["dropped_lines"]`. Raises DataError with a one-paragraph message for anything a person
    would have to fix in the file.
    """
    path = Path(path)
    if path.is_symlink():
        # A link could make ingest read (and version, and push) any file the process can see.
        raise DataError(
            f"{path}: a symbolic link (to {os.readlink(path)}); ingest reads regular files only: copy the file "
            "or pass its real path."
        )
    if not path.exists():
        raise DataError(f"{path}: no such file.")
    if not path.is_file():
        raise DataError(f"{path}: not a regular file.")
    fmt, compressed = _format_of(path)
    raw = _read_bytes(path, int(max_file_mb * 2**20), compressed)
    frame = _select_columns(path, _parse(path, fmt, raw), text_column, label_column)
    frame = drop_empty_rows(path, frame, max_invalid_fraction)
    frame["label"] = _labels_as_strings(path, frame["label"])
    return frame


def read_texts(path: Path, text_column: str = "text") -> pd.DataFrame:
    """A CSV/TSV/Parquet/JSONL file with a text column."""
    path = Path(path)
    kind = TEXT_FORMATS.get(path.suffix.lower())
    if kind is None:
        raise DataError(f"{path}: unsupported file type {path.suffix!r}; use CSV, TSV, Parquet or JSONL.")
    if not path.exists():
        raise DataError(f"{path}: file not found.")
    try:
        if kind == "parquet":
            df = pd.read_parquet(path)
        elif kind == "jsonl":
            df = pd.read_json(path, lines=True)
        else:
            df = pd.read_csv(path, sep="\t" if kind == "tsv" else ",")
    except Exception as exc:
        raise DataError(f"{path}: could not read it as {kind}: {exc}") from exc
    if text_column not in df.columns:
        raise DataError(f"{path}: no {text_column!r} column (columns: {', '.join(map(str, df.columns))}).")
    return df


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
    else:
        df.to_csv(path, sep="\t" if kind == "tsv" else ",", index=False)
