"""The request log of `textops serve` read back (`textops.live.request_log` writes it): its files listed (`log_files`,
and `feedback_files` for the feedback beside them), their rows read as written (`read_rows`: feedback export,
`forget`, the label queue, distillation's texts) or, for the monitor, a time window's summary read a chunk at a
time (`read_window`). This module owns the files' names; a damaged file or a line a kill cut short never stops a
reader (`read_window` says which files it could not read).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from textops.live.retention import jsonl_chunks

if TYPE_CHECKING:
    import pandas as pd

LOG_NAME = re.compile(r"requests-\d{8}T\d{6}-\d+(-\d+)?\.(jsonl|parquet)")
FEEDBACK_NAME = re.compile(r"feedback-\d{8}T\d{6}-\d+(-\d+)?\.jsonl")  # written by textops.live.feedback
READ_CHUNK_ROWS = 50_000


def read_rows(directory: Path):
    """Every row of the request log in DIRECTORY as written (JSONL or Parquet), a file at a time; a damaged file is
    skipped (`read_window` names it)."""
    import pyarrow.parquet as pq

    for path in log_files(directory):
        try:
            if path.suffix == ".parquet":
                for batch in pq.ParquetFile(path).iter_batches(batch_size=50_000):
                    for row in batch.to_pylist():
                        for key in ("probabilities", "shadow_probabilities"):
                            row[key] = dict(row.get(key) or [])
                        yield row
            else:
                for chunk in jsonl_chunks(path):
                    yield from chunk
        except (OSError, ValueError):
            continue


def log_files(directory: Path) -> list[Path]:
    """The request log's files in DIRECTORY, oldest first (by the time in the name, then modification time); a
    JSONL file whose Parquet copy is finished (`to_parquet`) only once."""
    if not Path(directory).is_dir():
        return []
    found = []
    for path in Path(directory).iterdir():
        if path.suffix == ".jsonl" and path.with_suffix(".parquet").exists():
            continue
        if LOG_NAME.fullmatch(path.name):
            try:
                found.append((path.name.split("-")[1], path.stat().st_mtime, path))
            except FileNotFoundError:  # pruned meanwhile
                continue
    return [path for *_, path in sorted(found)]


def feedback_files(directory: Path) -> list[Path]:
    """The feedback files (textops.live.feedback) in DIRECTORY, oldest first."""
    directory = Path(directory)
    return sorted(p for p in directory.iterdir() if FEEDBACK_NAME.fullmatch(p.name)) if directory.is_dir() else []


def _summary(frame, texts: bool):
    """The monitor's columns of log rows: chars, predicted, confidence (and text)."""
    import numpy as np
    import pandas as pd

    confidence = frame["probabilities"].map(
        lambda p: (
            max(v for _, v in p)
            if isinstance(p, list) and p
            else max(p.values())
            if isinstance(p, dict) and p
            else np.nan
        )
    )
    out = pd.DataFrame(
        {
            "time": frame["time"].astype(str),
            "chars": frame["chars"],
            "predicted": frame["label"].astype(str),
            "confidence": confidence,
        }
    )
    if texts and "text" in frame.columns:
        out["text"] = frame["text"].astype(str)
    return out


def read_window(directory: Path, since: str | None = None, until: str | None = None) -> tuple[pd.DataFrame, dict]:
    """The log rows with SINCE < time <= UNTIL (ISO UTC strings as the log writes them; None: no bound), read a
    chunk at a time so a large log is never in memory whole: (rows: time, chars, predicted, confidence, text
    where kept; what was read: files, the files that could not be read, rows in the window)."""
    import pandas as pd
    import pyarrow.parquet as pq

    parts, unreadable, files = [], [], log_files(directory)

    def keep(chunk) -> None:
        if chunk.empty:
            return
        times = chunk["time"].astype(str)
        mask = pd.Series(True, index=chunk.index)
        if since is not None:
            mask &= times > since
        if until is not None:
            mask &= times <= until
        if mask.any():
            parts.append(_summary(chunk[mask], "text" in chunk.columns))

    for path in files:
        try:
            if path.suffix == ".parquet":
                for batch in pq.ParquetFile(path).iter_batches(batch_size=READ_CHUNK_ROWS):
                    keep(batch.to_pandas())
            else:
                for chunk in jsonl_chunks(path):
                    keep(pd.DataFrame(chunk))
        except (ValueError, OSError):  # a damaged file, a line a kill cut short: said, the rest still read
            unreadable.append(path.name)
    rows = (
        pd.concat(parts, ignore_index=True)
        if parts
        else pd.DataFrame({"time": [], "chars": [], "predicted": [], "confidence": []})
    )
    return rows, {"files": len(files), "unreadable": unreadable, "rows": len(rows)}
