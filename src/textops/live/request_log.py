"""The optional request log of `textops serve` (serve.log_requests), for monitoring: one row per scored text
with the time, request id, model version, predicted label and probabilities, the text's length and a hash of
it (the text itself only with serve.log_texts, and then with personal data replaced by typed placeholders,
textops.core.redact, unless serve.redact is false; the hash is then the redacted text's: docs/privacy.md).

Rows are queued by the request and written by one background thread, so a slow disk never slows an answer (a
full queue drops rows and counts them). Files live in serve.request_log_dir, one series per worker process:
`requests-<UTC time>-<pid>.jsonl`, each line flushed (complete after a crash, readable while written). With
serve.request_log_format parquet the open file is still that JSONL, turned into `.parquet` when it rotates or the
server stops: a Parquet file has no footer until it is closed, so written directly it could not be read while the
server runs and would be lost whole to a kill. A file rotates at serve.request_log_rotate_mb; the newest
serve.request_log_keep files of the project are kept (whichever process wrote them: a restarted server's old
files count too), and no row older than serve.request_log_days (textops.live.retention). This module is the writer;
`textops.live.request_log_reader` lists the files and reads them back (monitor, feedback export, forget, label queue).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import queue
import sqlite3
import threading
import time
from pathlib import Path
from typing import BinaryIO

from textops.core.redact import redact
from textops.live import retention
from textops.live.answers import Answers
from textops.live.request_log_reader import feedback_files, log_files
from textops.live.retention import log_time, to_parquet

log = logging.getLogger("textops.serve")
QUEUE_ROWS = 100_000


def probabilities(answer: dict) -> dict:
    """The class -> probability of one served answer (its `prob_<class>` keys)."""
    return {k.removeprefix("prob_"): v for k, v in answer.items() if k.startswith("prob_")}


def text_hash(text: str) -> str:
    """The SHA-256 of TEXT, all 64 hex digits, as its column's name says (a text's identity without the text)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


class RequestLog:
    def __init__(
        self,
        directory: Path,
        fmt: str = "jsonl",
        texts: bool = False,
        rotate_mb: float = 64,
        keep: int = 20,
        answers_days: float = 30,
        redact: bool = True,
        days: float | None = None,
    ):
        self.directory, self.fmt, self.texts, self.redact = Path(directory), fmt, texts, redact
        self.days, self.rotate_seconds = days, retention.rotate_seconds(days)  # serve.request_log_days
        self.rotate_bytes, self.keep = int(rotate_mb * 1_000_000), keep
        self.dropped = 0
        # Every answer is indexed for feedback (textops.live.feedback); until the writer has, it is found here.
        self.answers, self.answers_days = Answers(self.directory), answers_days
        self._pending: dict[str, tuple] = {}
        # A client's own X-Request-Id by the server's id of its answer: logged beside it as `client_request_id`.
        self.client_ids: dict[str, str] = {}
        self._queue: queue.Queue = queue.Queue(QUEUE_ROWS)
        self._thread = threading.Thread(target=self._run, name="textops-request-log", daemon=True)
        self._file: BinaryIO | None = None  # the open JSONL file (fmt parquet: converted as it closes)
        self._path: Path | None = None
        self._written, self._opened = 0, 0.0

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._thread.start()

    def add(
        self,
        request_id: str,
        version: str,
        texts: list[str],
        predictions: list[dict],
        shadow: tuple[str, list[dict]] | None = None,
        at: float | None = None,
    ) -> None:
        """Queue one request's rows (cheap: the rows are built in the writer's thread); SHADOW: the shadow
        challenger's version and its answers to the same texts (serve.shadow), AT: when the answer was sent."""
        item = (at or time.time(), request_id, version, texts, predictions, shadow)
        try:
            self._queue.put_nowait(item)
            self._pending[request_id] = item
        except queue.Full:
            self.dropped += len(texts)

    def expect(self, request_id: str, version: str, texts: list[str], predictions: list[dict]) -> None:
        """An answer sent but logged later (after its shadow scoring, `add`): feedback finds it meanwhile."""
        self._pending[request_id] = (time.time(), request_id, version, texts, predictions, None)

    def find(self, request_id: str) -> list[dict]:
        """The logged answers of one request, by position, as `Answers.find` gives them."""
        item = self._pending.get(request_id)
        if item is None:
            return self.answers.find(request_id)
        return [
            {
                "index": r["index"],
                "time": r["time"],
                "model_version": r["model_version"],
                "predicted": r["label"],
                "classes": sorted(r["probabilities"]),
                "text": r.get("text"),
            }
            for r in self._rows(item)
        ]

    def close(self, timeout: float = 10) -> None:
        self._queue.put(None)
        self._thread.join(timeout)

    # ----------------------------------------------------------------------------------------------

    def _rows(self, item) -> list[dict]:
        at, request_id, version, texts, predictions, shadow = item
        stamp = log_time(at)
        rows = []
        for i, (text, pred) in enumerate(zip(texts, predictions, strict=True)):
            kept = redact(text) if self.texts and self.redact else text  # hashed as kept: docs/privacy.md
            row = {
                "time": stamp,
                "request_id": request_id,
                "index": i,
                "model_version": version,
                "label": pred.get("label"),
                "chars": len(text),
                "text_sha256": text_hash(kept),
            }
            row["probabilities"] = probabilities(pred)
            if shadow is not None:
                row.update(
                    shadow_version=shadow[0],
                    shadow_label=shadow[1][i].get("label"),
                    shadow_probabilities=probabilities(shadow[1][i]),
                )
            if request_id in self.client_ids:
                row["client_request_id"] = self.client_ids[request_id]
            if self.texts:
                row["text"] = kept
            rows.append(row)
        return rows

    def _run(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=retention.pass_seconds(self.days))
            except queue.Empty:  # no traffic: rows still expire
                self._expire()
                continue
            batch = [item]
            while item is not None and len(batch) < 1000:  # whatever else is waiting, in one write
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                batch.append(item)
            rows = [row for it in batch if it is not None for row in self._rows(it)]
            try:
                if rows:
                    self._write(rows)
                    self.answers.add(rows)
            except (OSError, sqlite3.Error) as exc:  # a full or read-only disk: the server keeps answering
                self.dropped += len(rows)
                log.warning("request log: cannot write to %s (%s); %d rows dropped", self.directory, exc, len(rows))
            for it in batch:
                if it is not None:
                    self._pending.pop(it[1], None)
                    self.client_ids.pop(it[1], None)
            if batch[-1] is None:
                self._finish()
                return

    def _write(self, rows: list[dict]) -> None:
        if (
            self._file is None
            or self._written >= self.rotate_bytes
            or time.time() - self._opened > self.rotate_seconds
            or not (self._path and self._path.exists())  # pruned by another worker's retention
        ):
            self._rotate()
        assert self._file is not None  # _rotate opened it
        data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()
        self._file.write(data)
        self._file.flush()
        self._written += len(data)

    def _schema(self):
        import pyarrow as pa

        probs = pa.map_(pa.string(), pa.float64())
        fields = [
            ("time", pa.string()),
            ("request_id", pa.string()),
            ("index", pa.int64()),
            ("model_version", pa.string()),
            ("label", pa.string()),
            ("chars", pa.int64()),
            ("text_sha256", pa.string()),
            ("probabilities", probs),
            ("shadow_version", pa.string()),
            ("shadow_label", pa.string()),
            ("shadow_probabilities", probs),
            ("client_request_id", pa.string()),
        ]
        return pa.schema(fields + ([("text", pa.string())] if self.texts else []))

    def _rotate(self) -> None:
        self._finish()
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        self._path = self.directory / f"requests-{stamp}-{os.getpid()}.jsonl"
        n = 1
        while self._path.exists() or self._path.with_suffix(".parquet").exists():
            n += 1
            self._path = self.directory / f"requests-{stamp}-{os.getpid()}-{n}.jsonl"
        self._file = open(self._path, "ab")  # noqa: SIM115 - closed on rotation and at exit
        self._written, self._opened = 0, time.time()
        self._expire()

    def _finish(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
            if self.fmt == "parquet":
                assert self._path is not None  # set with self._file, by _rotate
                to_parquet(self._path, self._schema())

    def _expire(self) -> None:
        """Retention: the newest `keep` files of the project's request log and feedback (never this process's open
        file), no row older than `days`, no answer indexed longer than either (textops.live.retention)."""
        try:
            if self._file is not None and time.time() - self._opened > self.rotate_seconds:
                self._finish()  # an idle file closed: its rows expire in time
            open_path = self._path if self._file is not None else None
            for files in (log_files(self.directory), feedback_files(self.directory)):
                retention.keep_newest(files, self.keep, open_path)
            days = self.answers_days if self.days is None else min(self.days, self.answers_days)
            if self.days is not None:
                before = time.time() - self.days * retention.DAY
                for files in (log_files(self.directory), feedback_files(self.directory)):
                    retention.expire(files, before, 2 * self.rotate_seconds, open_path)
            self.answers.prune(log_time(time.time() - days * retention.DAY))
            retention.remove_stale_asides(self.directory)
        except (OSError, ValueError, sqlite3.Error) as exc:  # the server keeps answering
            log.warning("request log: retention in %s failed (%s)", self.directory, exc)
