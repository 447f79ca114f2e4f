"""The index of the answers `textops serve` logged (`answers.sqlite` beside the request log), by the server's
request id and position: what `POST /feedback` matches a label to (textops.live.feedback)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

ANSWERS = "answers.sqlite"


class Answers:
    """The index of logged answers, for feedback (textops.live.feedback): `answers.sqlite` in DIRECTORY, every answer by
    (request id, position): when, the model version, the predicted label, the classes that model has, and the text
    where serve.log_texts keeps texts. SQLite, because the workers of one server, and the next server after a
    restart, all answer feedback on any of them. Answers older than serve.feedback_max_age_days are pruned as the
    request log rotates."""

    def __init__(self, directory: Path):
        self.path = Path(directory) / ANSWERS

    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, timeout=30)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA secure_delete=ON")  # a pruned answer's text is overwritten, not left in a free page
        con.execute(
            "CREATE TABLE IF NOT EXISTS answers (request_id TEXT, position INTEGER, time TEXT, version TEXT, "
            "predicted TEXT, classes TEXT, text TEXT, PRIMARY KEY (request_id, position))"
        )
        return con

    def add(self, rows: list[dict]) -> None:
        """Index request-log ROWS (textops.live.request_log's rows: request_id, index, time, model_version, label,
        probabilities, text where kept)."""
        records = [
            (
                r["request_id"],
                r["index"],
                r["time"],
                r["model_version"],
                None if r["label"] is None else str(r["label"]),
                json.dumps(sorted(r["probabilities"])),
                r.get("text"),
            )
            for r in rows
        ]
        with self._connect() as con:
            con.executemany("INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?, ?, ?, ?)", records)
        con.close()

    def prune(self, before: str) -> None:
        """Forget the answers logged before BEFORE (an ISO UTC time as the log writes it)."""
        with self._connect() as con:
            gone = con.execute("DELETE FROM answers WHERE time < ?", (before,)).rowcount
        if gone:  # nor in the write-ahead log
            con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        con.close()

    def find(self, request_id: str) -> list[dict]:
        """The answers of one request, by position."""
        if not self.path.exists():
            return []
        with self._connect() as con:
            found = con.execute(
                "SELECT position, time, version, predicted, classes, text FROM answers WHERE "
                "request_id = ? ORDER BY position",
                (request_id,),
            ).fetchall()
        con.close()
        return [
            {"index": p, "time": t, "model_version": v, "predicted": pr, "classes": json.loads(c), "text": tx}
            for p, t, v, pr, c, tx in found
        ]
