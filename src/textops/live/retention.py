"""What becomes of the files in serve.request_log_dir after they are written (the request log, textops.live.request_log,
and the feedback files, textops.live.feedback): a finished JSONL file of the request log turned into Parquet, and the
retention of both series: the newest serve.request_log_keep files of each, and no row older than
serve.request_log_days. A file whose rows are all older goes whole; a file with older and newer rows is rewritten
aside without the older ones, then renamed over itself.

Files being written are left alone: a writer starts a new file at least every `rotate_seconds(days)` (a day, less
for a short retention), so a file that straddles the limit was closed long ago; only files untouched for twice
that are rewritten (never a file a worker may be appending to), and a file all of whose rows are older was idle
for longer still.
"""

from __future__ import annotations

import calendar
import json
import os
import time
from pathlib import Path

DAY = 86_400.0


def log_time(at: float) -> str:
    """AT (seconds since the epoch) as the log writes times: ISO UTC to the millisecond, so that strings compare as
    times do (the monitor's windows and retention compare them so)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at)) + f".{int(at % 1 * 1000):03d}Z"


def rotate_seconds(days: float | None) -> float:
    """How old a file being written may get before its writer starts another (a day; a quarter of a shorter
    retention), so that retention reaches every row soon after it expires."""
    return DAY if days is None else min(DAY, days * DAY / 4)


def pass_seconds(days: float | None) -> float:
    """How often an idle writer checks retention (an hour at most)."""
    return min(3600.0, rotate_seconds(days) / 4)


def jsonl_chunks(path: Path, size: int = 50_000):
    """The rows of the JSONL file PATH, SIZE at a time; a line a kill cut short (the last one) is left out, so a
    killed server's file is read up to its last whole row."""
    rows: list[dict] = []
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict):
                rows.append(row)
            if len(rows) >= size:
                yield rows
                rows = []
    if rows:
        yield rows


def to_parquet(journal: Path, schema) -> Path:
    """The finished JSONL file JOURNAL as Parquet beside it (written aside, then renamed), then JOURNAL removed; a
    line a kill cut short is left out. A crash between the two leaves both, and `log_files` reads the Parquet."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    target = journal.with_suffix(".parquet")
    aside = target.with_name(target.name + ".tmp")
    with pq.ParquetWriter(aside, schema) as writer:
        for rows in jsonl_chunks(journal):
            for row in rows:  # whole-number classes are served as numbers; the file keeps labels as text
                for key in ("label", "shadow_label"):
                    row[key] = None if row.get(key) is None else str(row[key])
            writer.write_table(pa.Table.from_pylist(rows, schema=schema))
    os.replace(aside, target)
    journal.unlink()
    return target


def keep_newest(files: list[Path], keep: int, open_path: Path | None = None) -> list[Path]:
    """Remove all but the newest KEEP of FILES (oldest first), never OPEN_PATH; the ones removed."""
    gone = [old for old in files[: max(len(files) - keep, 0)] if old != open_path]
    for old in gone:
        old.unlink(missing_ok=True)
    return gone


def remove_stale_asides(directory: Path, now: float | None = None) -> list[Path]:
    """The copies a killed rewrite or conversion left (`*.tmp`, a day old): they hold rows retention removed."""
    now = time.time() if now is None else now
    gone = []
    for path in Path(directory).glob("*.tmp") if Path(directory).is_dir() else []:
        try:
            if now - path.stat().st_mtime > DAY:
                path.unlink()
                gone.append(path)
        except FileNotFoundError:
            continue
    return gone


def started(path: Path) -> float | None:
    """When the file PATH was started, from the UTC time in its name (`<series>-YYYYMMDDTHHMMSS-<pid>...`)."""
    try:
        return calendar.timegm(time.strptime(path.name.split("-")[1], "%Y%m%dT%H%M%S"))
    except (IndexError, ValueError):
        return None


def expire(files: list[Path], before: float, idle: float, open_path: Path | None = None, now: float | None = None):
    """Remove the rows of FILES logged before BEFORE (seconds since the epoch): a file last written before it goes
    whole, one started before it and idle for IDLE seconds is rewritten without them. Never OPEN_PATH. The files
    removed and the files rewritten."""
    now = time.time() if now is None else now
    removed, rewritten = [], []
    for path in files:
        if path == open_path:
            continue
        try:
            modified = path.stat().st_mtime
        except FileNotFoundError:
            continue
        if modified < before:
            path.unlink(missing_ok=True)
            removed.append(path)
            continue
        start = started(path)
        if start is not None and start < before and now - modified > idle:
            if drop_rows_before(path, log_time(before)):
                removed.append(path)
            else:
                rewritten.append(path)
    return removed, rewritten


def drop_rows_before(path: Path, before: str) -> bool:
    """PATH (JSONL or Parquet) without its rows whose `time` is before BEFORE; removed when no row is left. Whether
    it was removed."""
    return drop_rows(path, lambda row: str(row.get("time", "")) < before)[1]


def drop_rows(path: Path, drop) -> tuple[int, bool]:
    """PATH (JSONL or Parquet) without the rows DROP(row) is true of, rewritten aside and renamed over it (untouched
    where none is), removed when no row is left: (rows dropped, whether it was removed). A line a kill cut short
    goes too."""
    aside = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # two workers' retention may rewrite one file at once
    if path.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        mask = [not drop(row) for row in table.to_pylist()]
        dropped, left = mask.count(False), mask.count(True)
        if dropped and left:
            pq.write_table(table.filter(pa.array(mask, pa.bool_())), aside)
    else:
        dropped = left = 0
        with open(path, encoding="utf-8") as lines, open(aside, "w", encoding="utf-8") as out:
            for line in lines:
                try:
                    row = json.loads(line)
                except ValueError:
                    dropped += 1
                    continue
                if isinstance(row, dict) and drop(row):
                    dropped += 1
                else:
                    out.write(line if line.endswith("\n") else line + "\n")
                    left += 1
        if not dropped:
            aside.unlink()
    if not left:
        aside.unlink(missing_ok=True)
        path.unlink(missing_ok=True)
        return dropped, True
    if dropped:
        os.replace(aside, path)
    return dropped, False
