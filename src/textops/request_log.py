"""The optional request log of `textops serve` (serve.log_requests), for monitoring: one row per scored text
with the time, request id, model version, predicted label and probabilities, the text's length and a hash of
it (the text itself only with serve.log_texts).

Rows are queued by the request and written by one background thread, so a slow disk never slows an answer (a
full queue drops rows and counts them). Files live in serve.request_log_dir, one series per worker process:
`requests-<UTC time>-<pid>.jsonl` (each line flushed: complete after a crash) or `.parquet` (finished when it
rotates or the server stops). A file rotates at serve.request_log_rotate_mb; the newest
serve.request_log_keep files per worker are kept.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import queue
import re
import threading
import time
from pathlib import Path

log = logging.getLogger("textops.serve")
QUEUE_ROWS = 100_000


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


class RequestLog:
    def __init__(self, directory: Path, fmt: str = "jsonl", texts: bool = False, rotate_mb: float = 64,
                 keep: int = 20):  # fmt: skip
        self.directory, self.fmt, self.texts = Path(directory), fmt, texts
        self.rotate_bytes, self.keep = int(rotate_mb * 1_000_000), keep
        self.dropped = 0
        self._queue: queue.Queue = queue.Queue(QUEUE_ROWS)
        self._thread = threading.Thread(target=self._run, name="textops-request-log", daemon=True)
        self._file = None  # the open JSONL file or Parquet writer
        self._path: Path | None = None
        self._written = 0

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._thread.start()

    def add(self, request_id: str, version: str, texts: list[str], predictions: list[dict]) -> None:
        """Queue one request's rows (cheap: the rows are built in the writer's thread)."""
        try:
            self._queue.put_nowait((time.time(), request_id, version, texts, predictions))
        except queue.Full:
            self.dropped += len(texts)

    def close(self, timeout: float = 10) -> None:
        self._queue.put(None)
        self._thread.join(timeout)

    # ----------------------------------------------------------------------------------------------

    def _rows(self, item) -> list[dict]:
        at, request_id, version, texts, predictions = item
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at)) + f".{int(at % 1 * 1000):03d}Z"
        rows = []
        for i, (text, pred) in enumerate(zip(texts, predictions, strict=True)):
            row = {"time": stamp, "request_id": request_id, "index": i, "model_version": version,
                   "label": pred.get("label"), "chars": len(text), "text_sha256": text_hash(text)}  # fmt: skip
            row["probabilities"] = {k.removeprefix("prob_"): v for k, v in pred.items() if k.startswith("prob_")}
            if self.texts:
                row["text"] = text
            rows.append(row)
        return rows

    def _run(self) -> None:
        while True:
            item = self._queue.get()
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
            except OSError as exc:  # a full or read-only disk: the server keeps answering
                self.dropped += len(rows)
                log.warning("request log: cannot write to %s (%s); %d rows dropped", self.directory, exc, len(rows))
            if batch[-1] is None:
                self._finish()
                return

    def _write(self, rows: list[dict]) -> None:
        if self._file is None or self._written >= self.rotate_bytes:
            self._rotate()
        if self.fmt == "jsonl":
            data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()
            self._file.write(data)
            self._file.flush()
            self._written += len(data)
        else:
            import pyarrow as pa

            table = pa.Table.from_pylist(rows, schema=self._schema())
            self._file.write_table(table)
            self._written += table.nbytes

    def _schema(self):
        import pyarrow as pa

        fields = [("time", pa.string()), ("request_id", pa.string()), ("index", pa.int64()),
                  ("model_version", pa.string()), ("label", pa.string()), ("chars", pa.int64()),
                  ("text_sha256", pa.string()), ("probabilities", pa.map_(pa.string(), pa.float64()))]  # fmt: skip
        return pa.schema(fields + ([("text", pa.string())] if self.texts else []))

    def _rotate(self) -> None:
        self._finish()
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        self._path = self.directory / f"requests-{stamp}-{os.getpid()}.{self.fmt}"
        n = 1
        while self._path.exists():
            n += 1
            self._path = self.directory / f"requests-{stamp}-{os.getpid()}-{n}.{self.fmt}"
        if self.fmt == "jsonl":
            self._file = open(self._path, "ab")  # noqa: SIM115 - closed on rotation and at exit
        else:
            import pyarrow.parquet as pq

            self._file = pq.ParquetWriter(self._path, self._schema())
        self._written = 0
        self._prune()

    def _finish(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _prune(self) -> None:
        own = re.compile(rf"requests-\d{{8}}T\d{{6}}-{os.getpid()}(-\d+)?\.{self.fmt}")
        mine = sorted((p for p in self.directory.iterdir() if own.fullmatch(p.name)), key=lambda p: p.stat().st_mtime)
        for old in mine[: max(len(mine) - self.keep, 0)]:
            old.unlink(missing_ok=True)
