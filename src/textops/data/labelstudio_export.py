"""Label Studio's exports of a project textops' queue made, read back as labelled rows, one per task, its latest
annotation's (`textops ingest export.json`; the JSON_MIN, CSV and TSV exports too). The queue itself is
textops.live.labelstudio; the labelling config's names they share are textops.core.artifacts'."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

from textops.core.artifacts import LABEL_STUDIO_FROM as FROM_NAME
from textops.core.errors import DataError, too_deep


def when(value: object) -> float:
    """An ISO time of Label Studio's (`2026-12-01T10:00:00Z`, with or without fractions or an offset) as seconds:
    compared as strings, `...10:00:00Z` sorts after `...10:00:00.5Z` and the older annotation would win."""
    from datetime import datetime, timezone

    if not isinstance(value, str) or not value:
        return -math.inf
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return -math.inf
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)).timestamp()


def _stamp(annotation: dict, id_key: str = "id") -> tuple:
    """When an annotation was last changed (parsed, `when`), then its id: the order of 'latest'."""
    stamp = max(when(annotation.get("updated_at")), when(annotation.get("created_at")))
    number = annotation.get(id_key)
    return (stamp, number if isinstance(number, int | float) and not isinstance(number, bool) else 0)


def is_min_entry(item: object, text_key: str) -> bool:
    """Whether ITEM is an entry of a JSON_MIN export: flat, the task's data beside the choice."""
    return isinstance(item, dict) and "data" not in item and "annotations" not in item and text_key in item


def min_row(path: Path, line: int, item: dict, text_key: str, label_key: str) -> dict | None:
    """An entry of Label Studio's JSON_MIN export (flat: the task's data, the choice under the control's name), or
    None when nobody labelled it."""
    label = item.get(FROM_NAME, item.get(label_key))
    if isinstance(label, dict):  # several choices allowed in that project
        label = label.get("choices")
    if isinstance(label, list):
        if len(label) != 1:
            raise DataError(
                f"{path}: task {line} (id {item.get('id')}) has {len(label)} choices; textops reads "
                "single-choice classification projects."
            )
        label = label[0]
    if label is None or label == "":
        return None
    text = item.get(text_key)
    if not isinstance(text, str):
        raise DataError(f"{path}: task {line} has no text under {text_key!r}; pass --text-column.")
    task = {"task": item.get("id"), "annotator": item.get("annotator"), "request_id": item.get("request_id")}
    return {text_key: text, label_key: str(label), "_line": line, "_task": task}


def latest_min_entries(entries: list[tuple[int, dict]]) -> list[tuple[int, dict]]:
    """The JSON_MIN ENTRIES (line, entry) one per task (`id`), its latest annotation's (by parsed time, then
    `annotation_id`), in file order. Label Studio 1.23 writes an entry per annotation, not per task: a task
    annotated twice is there twice with both labels (seen on a real server), which preprocess would then drop as
    a conflict. Entries without an id stay as they are."""
    latest: dict[object, tuple[int, dict]] = {}
    for line, item in entries:
        task = item.get("id")
        key = task if isinstance(task, int | str) and not isinstance(task, bool) else ("line", line)
        if key not in latest or _stamp(item, "annotation_id") >= _stamp(latest[key][1], "annotation_id"):
            latest[key] = (line, item)
    return sorted(latest.values(), key=lambda entry: entry[0])


def task_row(path: Path, line: int, item: object, text_key: str, label_key: str) -> dict | None:
    """A task of Label Studio's JSON export: its text and the choice of its most recent annotation (by parsed time)
    that was not cancelled (skipped), or None when it has none."""
    if not isinstance(item, dict) or not isinstance(item.get("data"), dict):
        raise DataError(f'{path}: task {line} has no "data": not a Label Studio JSON export.')
    done = [a for a in item.get("annotations") or [] if isinstance(a, dict) and not a.get("was_cancelled")]
    if not done:
        return None
    latest = max(done, key=_stamp)
    choices = [
        c
        for r in latest.get("result") or []
        if isinstance(r, dict) and r.get("type") == "choices"
        for c in (r.get("value") or {}).get("choices") or []
    ]
    if len(choices) != 1:
        raise DataError(
            f"{path}: task {line} (id {item.get('id')}) has {len(choices)} choices in its latest "
            "annotation; textops reads single-choice classification projects."
        )
    text = item["data"].get(text_key)
    if not isinstance(text, str):
        raise DataError(
            f"{path}: task {line} has no text under data.{text_key} (its data has "
            f"{', '.join(map(str, item['data']))[:200]}); pass --text-column."
        )
    task = {
        "task": item.get("id"),
        "annotator": latest.get("completed_by"),
        "request_id": item["data"].get("request_id"),
    }
    return {text_key: text, label_key: choices[0], "_line": line, "_task": task}


def export_rows(path: Path, value, text_key: str, label_key: str) -> list[dict]:
    """The labelled rows of a Label Studio JSON or JSON_MIN export VALUE (a list of tasks, or of annotations for
    JSON_MIN), one per task: its text and its latest annotation's choice. Tasks without one are not data.
    DataError for an export of another kind of project (several choices, spans, no text)."""
    if not isinstance(value, list):
        raise DataError(f"{path}: a JSON file to ingest is a Label Studio export: a list of tasks.")
    rows, entries = [], []
    for line, item in enumerate(value, start=1):
        if is_min_entry(item, text_key):
            entries.append((line, item))
        elif (row := task_row(path, line, item, text_key, label_key)) is not None:
            rows.append(row)
    for line, item in latest_min_entries(entries):
        if (row := min_row(path, line, item, text_key, label_key)) is not None:
            rows.append(row)
    if not rows:
        raise DataError(f"{path}: no task of {len(value)} has an annotation that was not skipped: nothing to ingest.")
    return sorted(rows, key=lambda row: row["_line"])


def read_export(path: Path, text: str, text_key: str, label_key: str):
    """A Label Studio JSON export (the TEXT of PATH) as a frame with TEXT_KEY and LABEL_KEY columns."""
    import pandas as pd

    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}).") from exc
    except RecursionError as exc:
        raise too_deep(str(path), text, "a Label Studio export") from exc
    rows = export_rows(path, value, text_key, label_key)
    frame = pd.DataFrame(rows).drop(columns=["_line", "_task"])
    frame.attrs["lines"] = [r["_line"] for r in rows]
    frame.attrs["tasks"] = [r["_task"] for r in rows]  # the provenance ingest keeps beside the batch
    frame.attrs["read_at"] = time.time()
    return frame


# --------------------------------------------------------------------------------------------------
# Label Studio's CSV and TSV exports: one row per annotation

TABLE_COLUMNS = {"id", "annotation_id"}  # with `annotator`, `created_at` or `updated_at`: a Label Studio table


def is_export_table(columns) -> bool:
    """Whether a CSV/TSV file with these COLUMNS is a Label Studio CSV/TSV export."""
    names = set(map(str, columns))
    return TABLE_COLUMNS <= names and bool(names & {"annotator", "created_at", "updated_at"})


def is_tsv_export(text: str) -> bool:
    """Whether TEXT, read as a CSV file, is a Label Studio TSV export: Label Studio 1.23 names its TSV export
    `project-<id>-at-<time>.csv` (seen on a real server), so a person who keeps that name hands ingest tab-separated
    rows as CSV. Only a header that is an export table split at tabs, and not split at commas, is taken for one."""
    import csv

    first = text.split("\n", 1)[0].rstrip("\r")
    if "\t" not in first:
        return False
    return is_export_table(next(csv.reader([first], delimiter="\t"))) and not is_export_table(next(csv.reader([first])))


def latest_per_task(frame):
    """One row per task (column `id`) of a Label Studio CSV/TSV export FRAME, which has one row per annotation:
    its latest annotation's, by parsed time (`when`), then by annotation id. A task annotated twice would otherwise
    enter with both labels, and preprocess would drop it as conflicting."""
    import pandas as pd

    stamps = [
        max(when(u), when(c))
        for u, c in zip(
            frame.get("updated_at", pd.Series([None] * len(frame))),
            frame.get("created_at", pd.Series([None] * len(frame))),
            strict=True,
        )
    ]
    ids = pd.to_numeric(frame["annotation_id"], errors="coerce").fillna(-1)
    order = frame.assign(_stamp=stamps, _annotation=ids.to_numpy(), _position=range(len(frame)))
    order = order.sort_values(["_stamp", "_annotation"], kind="stable")
    kept = order.drop_duplicates("id", keep="last").sort_values("_position")
    out = kept.drop(columns=["_stamp", "_annotation", "_position"]).reset_index(drop=True)
    out.attrs = {**frame.attrs, "positions": kept["_position"].tolist()}  # where each row was in FRAME
    ids = [c for c in ("id", "annotator", "request_id") if c in kept.columns]
    out.attrs["tasks"] = [
        {"task" if c == "id" else c: number(v) if c != "request_id" else v for c, v in zip(ids, values, strict=True)}
        for values in kept[ids].itertuples(index=False, name=None)
    ]
    return out


def number(value: object) -> object:
    """A task's or annotator's id as the JSON exports give it (a number): a table's cells are read as written,
    `"12"`, and the same task would be recorded two ways in the provenance of batches from two formats."""
    return int(value) if isinstance(value, str) and value.isascii() and value.isdigit() else value
