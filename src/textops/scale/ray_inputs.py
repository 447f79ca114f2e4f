"""What `textops predict --engine ray` reads: the files a spec names (never through a symbolic link), read in blocks
by Arrow set up to give the rows the local engine's reader gives (`textops.data.texts`: `NA` is a text, a blank
line is a row of no text, a .txt file is a text per line), and the rows of no text flagged for the driver to leave
out and count, as the local engine does."""

from __future__ import annotations

import glob
import os
from pathlib import Path

import pandas as pd

from textops.core.errors import DataError

READABLE = (".csv", ".tsv", ".parquet", ".jsonl", ".json", ".txt")
BLANK_COLUMN = "__textops_blank"  # a row of no text: scored by no one, counted by the driver, never written


def input_files(spec: str) -> list[Path]:
    """The files SPEC names: a file, a directory (its readable files), or a glob. A symbolic link among them is
    refused, not followed: it can point anywhere, outside the project too (a file named on its own is the user's
    choice and is read)."""
    path = Path(spec)
    if path.is_dir():
        found = [p for p in path.iterdir() if p.suffix.lower() in READABLE]
    elif path.exists():
        return [path]
    else:
        found = [Path(p) for p in glob.glob(spec) if Path(p).suffix.lower() in READABLE]
    links = sorted(p for p in found if p.is_symlink())
    if links:
        shown = ", ".join(f"{p.name} -> {os.readlink(p)}" for p in links[:5])
        raise DataError(
            f"{spec}: holds symbolic links ({shown}), which predict does not follow (a link can point anywhere, "
            "outside the project too); nothing was scored. Copy the files in instead, or name one file on its own."
        )
    files = sorted(p for p in found if p.is_file())
    if not files:
        raise DataError(f"{spec}: no CSV, TSV, Parquet, JSONL or .txt file there (a file, a directory or a glob).")
    return files


MIN_BLOCK_BYTES = 1 << 16


def block_bytes(files: list[Path], actors: int) -> int:
    """Bytes per block: about a quarter of the smallest file's share per actor, at least 64 KB and at most Ray's
    default 128 MB."""
    return min(max(min(p.stat().st_size for p in files) // (actors * 4), MIN_BLOCK_BYTES), 128 << 20)


def csv_options(path: Path, block: int) -> dict:
    """Arrow's options for a CSV/TSV file PATH read in blocks of BLOCK bytes: every column as text, `NA` and `null`
    as texts, a blank line as a row (of no text), as the local reader (`texts.read_texts`) has them."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    sep = "\t" if path.suffix.lower() == ".tsv" else ","
    header = pd.read_csv(path, sep=sep, nrows=0, dtype=str).columns
    return {
        "read_options": pacsv.ReadOptions(block_size=block),
        "parse_options": pacsv.ParseOptions(delimiter=sep, newlines_in_values=True, ignore_empty_lines=False),
        "convert_options": pacsv.ConvertOptions(
            column_types={c: pa.string() for c in header},
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    }


def read_dataset(files: list[Path], actors: int):
    """A Ray dataset of FILES, every column as text (one reader per kind, then their union). A text file is read in
    blocks of about a quarter of its share per actor (at least 64 KB): one file is one read task, and a block goes
    to one actor, so a file read whole would keep every other actor idle."""
    import pyarrow.json as pajson
    import ray.data

    parts = []
    for path in files:
        kind = path.suffix.lower()
        block = block_bytes([path], actors)
        if kind in (".csv", ".tsv"):
            parts.append(ray.data.read_csv(str(path), **csv_options(path, block)))
        elif kind == ".txt":  # a text per line, split as str.splitlines splits it (the local reader's rule)
            parts.append(ray.data.read_text(str(path), encoding="utf-8-sig", drop_empty_lines=False))
        elif kind == ".parquet":
            parts.append(ray.data.read_parquet(str(path)))
        else:
            parts.append(ray.data.read_json(str(path), read_options=pajson.ReadOptions(block_size=block)))
    return parts[0] if len(parts) == 1 else parts[0].union(*parts[1:])


def check_text_columns(files: list[Path], text_column: str) -> None:
    """Before Ray starts: every CSV/TSV input has TEXT_COLUMN, and a .txt input is asked for its one column."""
    from textops.data.texts import lines_column

    for path in files:
        kind = path.suffix.lower()
        if kind == ".txt":
            lines_column(path, text_column)
        elif kind in (".csv", ".tsv"):
            header = pd.read_csv(path, sep="\t" if kind == ".tsv" else ",", nrows=0).columns
            if text_column not in header:
                raise DataError(
                    f"{path}: no column {text_column!r} (it has {', '.join(map(str, header))}); pass --text-column."
                )


def scored_block(model, batch: pd.DataFrame, text_column: str, batch_size: int) -> pd.DataFrame:
    """BATCH's rows with the model's answers; its rows of no text (`texts.blank_texts`) unscored and flagged in
    BLANK_COLUMN, for the driver to leave out and count."""
    from textops.data.texts import blank_texts
    from textops.modeling.predict import predict_batches

    if text_column not in batch.columns and text_column == "0" and "text" in batch.columns:
        text_column = "text"  # a .txt file's one column
    blank = blank_texts(batch[text_column])
    kept = batch[~blank].reset_index(drop=True)
    preds = predict_batches(model, kept[text_column].astype(str).tolist(), batch_size)
    renamed = {c: f"{c}_input" for c in batch.columns if c in preds.columns}
    out = pd.concat([kept.rename(columns=renamed), preds], axis=1)
    out[BLANK_COLUMN] = False
    if blank.any():
        left = batch[blank].reset_index(drop=True).rename(columns=renamed)
        # The answers' text columns get "" in those rows, not NaN: a text column that mixes strings and NaN is a
        # Python-object column to Arrow, which pandas then cannot filter or write.
        fill = {c: "" for c in preds.columns if preds[c].dtype.kind not in "biufc"}
        out = pd.concat([out, left.assign(**fill, **{BLANK_COLUMN: True})], ignore_index=True)
    return out
