"""Label Studio, both ways: a labelling queue of the served texts the champion is least sure of, written as Label
Studio tasks with the champion's answer as a pre-annotation (`textops label queue`), and Label Studio's exports of
such a project read back as labelled rows, one per task, its latest annotation's (`textops ingest export.json`; the
JSON_MIN, CSV and TSV exports too).

The queue reads the request log (textops.request_log; texts are there only with serve.log_texts), skips answers
that already have feedback (textops.feedback), keeps one row per text, and spreads its picks over the predicted
classes and the hours they were served in, so one busy hour or one confusing class does not fill it.
"""

from __future__ import annotations

import heapq
import json
import math
import time
from pathlib import Path

from textops.core.errors import DataError, StateError, too_deep
from textops.live.request_log_reader import log_files, read_rows

FROM_NAME, TO_NAME = "label", "text"  # the names in the labelling config written beside the tasks
POOL_PER_PICK = 20  # candidates kept per text asked for (the least sure ones), before spreading


def margin(probabilities: dict) -> tuple[float, float]:
    """(top-1 minus top-2 probability, top-1): small margins are the answers the model is least sure of."""
    top = sorted((float(v) for v in probabilities.values()), reverse=True) + [0.0, 0.0]
    return top[0] - top[1], top[0]


def candidates(directory: Path, labelled: set, keep: int) -> list[dict]:
    """The KEEP least sure logged answers with a text and no feedback yet, one per text."""
    heap: list[tuple] = []  # (-margin, n, row): the KEEP smallest margins
    seen_text = False
    for n, row in enumerate(read_rows(directory)):
        if row.get("text") is None:
            continue
        seen_text = True
        if (row.get("request_id"), row.get("index")) in labelled or not row.get("probabilities"):
            continue
        gap, top = margin(row["probabilities"])
        item = (-gap, n, {**row, "margin": gap, "confidence": top})
        if len(heap) < keep:
            heapq.heappush(heap, item)
        elif item[0] > heap[0][0]:
            heapq.heapreplace(heap, item)
    if not seen_text:
        raise StateError(
            f"the request log in {directory} has no texts: the server keeps the texts it scores only with "
            "serve.log_texts: true (personal data: think first). Turn it on, let traffic come, and ask again."
        )
    by_text: dict[str, dict] = {}
    for _, _, row in sorted(heap, key=lambda item: (-item[0], item[1])):
        by_text.setdefault(row.get("text_sha256") or row["text"], row)
    return list(by_text.values())


def spread(rows: list[dict], n: int) -> list[dict]:
    """N of ROWS (least sure first), at most an even share from each predicted class and each hour served, then
    the least sure of the rest."""
    classes = {str(r.get("label")) for r in rows}
    hours = {str(r.get("time", ""))[:13] for r in rows}
    per_class, per_hour = math.ceil(n / max(len(classes), 1)), math.ceil(n / max(len(hours), 1))
    picked: list[dict] = []
    count_class: dict[str, int] = {}
    count_hour: dict[str, int] = {}
    for row in rows:
        c, h = str(row.get("label")), str(row.get("time", ""))[:13]
        if len(picked) < n and count_class.get(c, 0) < per_class and count_hour.get(h, 0) < per_hour:
            picked.append(row)
            count_class[c], count_hour[h] = count_class.get(c, 0) + 1, count_hour.get(h, 0) + 1
    chosen = {id(r) for r in picked}
    picked += [r for r in rows if id(r) not in chosen][: n - len(picked)]
    return sorted(picked, key=lambda r: r["margin"])


def task(row: dict) -> dict:
    """One Label Studio task: the text (with where it was served), and the served answer as a pre-annotation."""
    return {
        "data": {
            TO_NAME: row["text"],
            "request_id": row.get("request_id"),
            "index": row.get("index"),
            "served_at": row.get("time"),
            "model_version": row.get("model_version"),
        },
        "predictions": [
            {
                "model_version": f"v{row.get('model_version')}",
                "score": round(row["confidence"], 6),
                "result": [
                    {
                        "from_name": FROM_NAME,
                        "to_name": TO_NAME,
                        "type": "choices",
                        "value": {"choices": [str(row.get("label"))]},
                    }
                ],
            }
        ],
    }


def labelling_config(classes: list[str]) -> str:
    """Label Studio's labelling config for the tasks: the text and one choice among CLASSES."""
    from xml.sax.saxutils import quoteattr

    choices = "\n".join(f"    <Choice value={quoteattr(c)}/>" for c in classes)
    return (
        f'<View>\n  <Text name="{TO_NAME}" value="${TO_NAME}"/>\n  <Choices name="{FROM_NAME}" '
        f'toName="{TO_NAME}" choice="single">\n{choices}\n  </Choices>\n</View>\n'
    )


def label_queue(root: Path, params, n: int, output: Path) -> dict:
    """Write the N least sure served texts without feedback as Label Studio tasks (OUTPUT `.json`, with the labelling
    config beside it as `.xml`) or as CSV (`.csv`)."""
    import pandas as pd

    from textops.core.artifacts import atomic_write_text
    from textops.core.formulas import neutralized
    from textops.live.feedback import read_feedback

    if n < 1:
        raise DataError(f"-n {n}: ask for at least one text.")
    output = Path(output)
    if output.suffix.lower() not in (".json", ".csv"):
        raise DataError(f"{output}: write the queue as .json (Label Studio tasks) or .csv.")
    directory = Path(root) / params.serve.request_log_dir
    if not log_files(directory):
        raise StateError(
            f"no request log in {directory}: serve with serve.log_requests: true and "
            "serve.log_texts: true, then ask again."
        )
    labelled = {(r["request_id"], r.get("index")) for r in read_feedback(directory, latest=False)}
    picked = spread(candidates(directory, labelled, max(n * POOL_PER_PICK, 1000)), n)
    output.parent.mkdir(parents=True, exist_ok=True)
    if output.suffix.lower() == ".csv":
        frame = pd.DataFrame(
            [
                {
                    k: r.get(k)
                    for k in ("text", "label", "confidence", "margin", "request_id", "index", "time", "model_version")
                }
                for r in picked
            ]
        )
        frame["text"] = frame["text"].map(neutralized)  # opened in a spreadsheet, a formula text is shown, not run
        atomic_write_text(output, frame.rename(columns={"label": "predicted"}).to_csv(index=False))
    else:
        atomic_write_text(output, json.dumps([task(r) for r in picked], ensure_ascii=False, indent=1))
        classes = sorted({c for r in picked for c in r["probabilities"]})
        atomic_write_text(output.with_suffix(".xml"), labelling_config(classes))
    return {"rows": len(picked), "output": str(output), "labelled_skipped": len(labelled)}


# --------------------------------------------------------------------------------------------------
# Label Studio's JSON export, read back


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
