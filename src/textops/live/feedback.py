"""Feedback on served answers: labels people give to what `textops serve` answered (`POST /feedback`), matched to
the answers by request id and position, kept in an append-only log, and what the loop makes of them: online
figures per served version (`textops monitor --requests`, `textops status`) and labelled rows for the next
retrain (`textops feedback export`).

This module owns the feedback files, in serve.request_log_dir beside the request log and its index of answers
(`answers.sqlite`, textops.live.answers.Answers):
- `feedback-<UTC time>-<pid>.jsonl` (`request_log_reader.feedback_files`): one line per accepted label, flushed
  and fsynced before the server answers 2xx. A second label for the same answer is a later line: the newest
  counts, both are kept. Pruned with the request log (serve.request_log_keep files, rows for serve.request_log_days:
  textops.live.retention). The text of a row is the request log's, redacted as it is (serve.redact).
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
import unicodedata
from pathlib import Path

from textops.live.request_log_reader import feedback_files
from textops.live.retention import jsonl_chunks, log_time, rotate_seconds

REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")  # what a client may send as X-Request-Id
EXPORTED = "feedback-exported.json"  # in .textops/: the newest feedback time already exported


class FeedbackError(Exception):
    """Feedback the server refuses: STATUS (404 unknown answer, 422 a label the model does not have) and why."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def normal_label(label) -> str:
    """A label as the data keeps it (textops.lifecycle.ingest): text, trimmed, Unicode NFC."""
    return unicodedata.normalize("NFC", str(label).strip())


def valid_unicode(text: str) -> bool:
    """Whether TEXT is valid Unicode: JSON's escapes can carry half of a surrogate pair, which no encoder (SQLite's
    among them) takes."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def parse(body: bytes, max_items: int) -> list[dict]:
    """The items of a feedback body: `{"request_id": ID, "label": L}` (with `"index": I` for one text of a batch),
    or a list of them. ValueError with the reason when the body is not that."""
    try:
        value = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"the body is not JSON ({str(exc)[:200]})") from exc
    items = value if isinstance(value, list) else [value]
    if not items:
        raise ValueError('no feedback in the body: send {"request_id": ID, "label": LABEL} or a list of them')
    if len(items) > max_items:
        raise OverflowError(f"{len(items):,} labels in one request; at most {max_items:,} (serve.max_texts)")
    out = []
    for n, item in enumerate(items):
        where = f"item {n}" if isinstance(value, list) else "the body"
        if not isinstance(item, dict) or not isinstance(item.get("request_id"), str) or "label" not in item:
            raise ValueError(f'{where}: expected an object with "request_id" (a string) and "label"')
        label, index = item["label"], item.get("index")
        if not all(valid_unicode(v) for v in (item["request_id"], label) if isinstance(v, str)):
            raise ValueError(
                f"{where}: a lone surrogate (a \\ud800-\\udfff escape without its pair) in the request id or the "
                "label: not valid Unicode; send them as valid UTF-8"
            )
        if not isinstance(label, str | int) or isinstance(label, bool) or not normal_label(label):
            raise ValueError(f'{where}: "label" must be a non-empty string or a whole number')
        if index is not None and (not isinstance(index, int) or isinstance(index, bool) or index < 0):
            raise ValueError(f'{where}: "index" must be a whole number from 0 (the text\'s position in the request)')
        out.append({"request_id": item["request_id"][:200], "index": index, "label": normal_label(label)})
    return out


def resolve(items: list[dict], lookup) -> list[dict]:
    """The feedback rows for ITEMS, each matched to its answer through LOOKUP (request id -> its answers, as
    `textops.live.answers.Answers.find`): FeedbackError 404 for an answer the log does not hold, 422 for a label
    its model does not have or a batch addressed without a position. All or nothing: one bad item refuses all."""
    now = time.time()
    rows = []
    for item in items:
        answers = {a["index"]: a for a in lookup(item["request_id"])}
        if not answers:
            raise FeedbackError(
                404,
                f"no answer with request id {item['request_id']!r} in the request log (it "
                "is the X-Request-Id of a served answer; old answers are forgotten after "
                "serve.feedback_max_age_days)",
            )
        index = item["index"]
        if index is None:
            if len(answers) > 1:
                raise FeedbackError(
                    422,
                    f"request {item['request_id']!r} scored {len(answers)} texts: say which "
                    'one with "index" (its position, from 0)',
                )
            index = next(iter(answers))
        answer = answers.get(index)
        if answer is None:
            raise FeedbackError(
                404, f"request {item['request_id']!r} has no text at index {index} (it scored {len(answers)})"
            )
        if item["label"] not in answer["classes"]:
            classes = ", ".join(answer["classes"][:20])
            raise FeedbackError(
                422,
                f"label {item['label'][:100]!r} is not a class of model version "
                f"{answer['model_version']}, which answered (its classes: {classes})",
            )
        row = {
            "time": log_time(now),
            "request_id": item["request_id"],
            "index": index,
            "label": item["label"],
            "model_version": answer["model_version"],
            "predicted": answer["predicted"],
            "answered": answer["time"],
        }
        if answer.get("text") is not None:
            row["text"] = answer["text"]
        rows.append(row)
    return rows


class FeedbackLog:
    """The append-only feedback files of this process in DIRECTORY (one at a time, rotated at ROTATE_BYTES and after
    a day, or a quarter of DAYS, so that retention reaches them: textops.live.retention prunes them with the request
    log)."""

    def __init__(self, directory: Path, rotate_bytes: int, days: float | None = None):
        self.directory, self.rotate_bytes = Path(directory), rotate_bytes
        self.rotate_seconds = rotate_seconds(days)
        self._lock = threading.Lock()
        self._path: Path | None = None
        self._opened = 0.0

    def append(self, rows: list[dict]) -> None:
        """Write ROWS and make them durable (fsync) before returning: the server answers 2xx only after this."""
        data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()
        with self._lock:
            if (
                self._path is None
                or not self._path.exists()  # pruned: a new file, under a new time
                or self._path.stat().st_size >= self.rotate_bytes
                or time.time() - self._opened > self.rotate_seconds
            ):
                self.directory.mkdir(parents=True, exist_ok=True)
                stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
                self._path = self.directory / f"feedback-{stamp}-{os.getpid()}.jsonl"
                n = 1
                while self._path.exists():
                    n += 1
                    self._path = self.directory / f"feedback-{stamp}-{os.getpid()}-{n}.jsonl"
                self._opened = time.time()
            with open(self._path, "ab") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())


def read_feedback(directory: Path, latest: bool = True) -> list[dict]:
    """The feedback rows in DIRECTORY, oldest first; with LATEST only the newest label of each answer."""
    rows = [
        r
        for path in feedback_files(directory)
        for chunk in jsonl_chunks(path)
        for r in chunk
        if "request_id" in r and "label" in r
    ]
    rows.sort(key=lambda r: str(r.get("time", "")))
    if not latest:
        return rows
    newest = {(r["request_id"], r.get("index")): r for r in rows}
    return sorted(newest.values(), key=lambda r: str(r.get("time", "")))


def online_figures(directory: Path) -> dict:
    """Per served version: how many answers got a label, and the accuracy and macro-F1 of what it answered
    against those labels (the newest label of each answer)."""
    from textops.live.drift import scores

    by_version: dict[str, list[dict]] = {}
    for row in read_feedback(directory):
        by_version.setdefault(str(row.get("model_version")), []).append(row)
    out = {}
    for version, rows in sorted(by_version.items()):
        figures = scores([r["label"] for r in rows], [str(r.get("predicted")) for r in rows])
        out[version] = {"n": len(rows), **{k: round(v, 4) for k, v in figures.items()}}
    return out


def shadow_figures(directory: Path) -> dict:
    """Per (served version, shadow version): on every shadowed text, how often the shadow challenger agreed with the
    answer; on those people labelled (the newest label), both models' accuracy and McNemar's exact p of the
    difference (the test the registry applies offline). Keyed `"<served>-><shadow>"`."""
    from textops.core.policy import mcnemar
    from textops.live.request_log_reader import read_rows

    labels = {(r["request_id"], r.get("index")): r["label"] for r in read_feedback(directory)}
    pairs: dict[str, dict] = {}
    for row in read_rows(directory):
        if row.get("shadow_version") is None:
            continue
        pair = pairs.setdefault(
            f"{row.get('model_version')}->{row['shadow_version']}",
            {
                "served_version": str(row.get("model_version")),
                "shadow_version": str(row["shadow_version"]),
                "texts": 0,
                "agree": 0,
                "y": [],
                "served": [],
                "shadow": [],
            },
        )
        served, shadow = str(row.get("label")), str(row.get("shadow_label"))
        pair["texts"] += 1
        pair["agree"] += served == shadow
        label = labels.get((row.get("request_id"), row.get("index")))
        if label is not None:
            pair["y"].append(label)
            pair["served"].append(served)
            pair["shadow"].append(shadow)
    out = {}
    for key, p in pairs.items():
        n = len(p["y"])
        figures = {
            "served_version": p["served_version"],
            "shadow_version": p["shadow_version"],
            "texts": p["texts"],
            "agreement": round(p["agree"] / p["texts"], 4),
            "labelled": n,
        }
        if n:
            test = mcnemar(p["y"], p["shadow"], p["served"])
            figures.update(
                served_accuracy=round(sum(a == b for a, b in zip(p["y"], p["served"], strict=True)) / n, 4),
                shadow_accuracy=round(sum(a == b for a, b in zip(p["y"], p["shadow"], strict=True)) / n, 4),
                shadow_right_served_wrong=test.b,
                served_right_shadow_wrong=test.c,
                mcnemar_p=round(test.p_value, 6),
            )
        out[key] = figures
    return out


def export(root: Path, params, output: Path | None = None) -> dict:
    """Write the labelled live texts not exported before as a labelled CSV (text, label) that `textops ingest`
    (or the retrain flow, from the landing folder) takes through the same checks as any file. Needs the texts,
    which the request log keeps only with serve.log_texts."""
    import pandas as pd

    from textops.adapters.locks import state_dir, state_path
    from textops.core.artifacts import atomic_write_json, atomic_write_text
    from textops.core.errors import StateError
    from textops.core.formulas import is_formula

    directory = Path(root) / params.serve.request_log_dir
    rows = read_feedback(directory)
    if not rows:
        raise StateError(
            f"no feedback in {directory}: `POST /feedback` to the server records it (with serve.log_requests: true)."
        )
    marker = state_path(root, EXPORTED)
    try:
        since = json.loads(marker.read_text(encoding="utf-8"))["until"]
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        since = ""
    new = [r for r in rows if str(r["time"]) > since]
    texts = [r for r in new if r.get("text") is not None]
    if new and not texts:
        raise StateError(
            "the feedback has no texts: the server keeps the texts it scored only with "
            "serve.log_texts: true; turn it on to turn feedback into training data."
        )
    if not texts:
        return {"rows": 0, "output": None, "skipped_without_text": 0, "set_aside": 0, "set_aside_file": None}
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    output = Path(output) if output else Path(root) / params.data.landing_dir / f"feedback-{stamp}.csv"
    output.parent.mkdir(parents=True, exist_ok=True)
    # One client's spreadsheet formula would make the ingest refuse the whole file (validate.refuse_formulas), and
    # the landing retrain with it: such rows are set aside beside it, as JSON Lines (never run by a spreadsheet).
    refused = [r for r in texts if is_formula(r["text"]) or is_formula(r["label"])]
    if not params.validation.refuse_formulas:
        refused = []
    kept = [r for r in texts if r not in refused]
    aside = output.with_name(f"{output.stem}.set-aside.jsonl")
    if refused:
        reason = "a spreadsheet formula (validate.refuse_formulas): the ingest would refuse the whole file"
        lines = (json.dumps({**r, "reason": reason}, ensure_ascii=False) for r in refused)
        atomic_write_text(aside, "".join(line + "\n" for line in lines))
    frame = pd.DataFrame({"text": [r["text"] for r in kept], "label": [r["label"] for r in kept]})
    if kept:
        atomic_write_text(output, frame.to_csv(index=False))
    state_dir(root)
    atomic_write_json(marker, {"until": max(str(r["time"]) for r in new)})
    return {
        "rows": len(kept),
        "output": str(output) if kept else None,
        "skipped_without_text": len(new) - len(texts),
        "set_aside": len(refused),
        "set_aside_file": str(aside) if refused else None,
    }
