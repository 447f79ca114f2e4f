"""`textops forget`: one person's rows out of the request log (JSONL and Parquet), the feedback on those answers and
the answers index, found by request id, client request id, the text they sent, or a piece of the kept text; and
never under a running server."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from textops.core.errors import StateError
from textops.live.feedback import FeedbackLog, read_feedback, resolve
from textops.live.forget import forget
from textops.live.request_log import RequestLog
from textops.live.request_log_reader import log_files, read_rows

PREDICTION = {"label": "positive", "prob_negative": 0.3, "prob_positive": 0.7}


def served(directory: Path, fmt: str) -> None:
    """Three requests, each text labelled; the middle one a client tagged with its own id."""
    log = RequestLog(directory, fmt, texts=True)
    log.start()
    log.client_ids["r2"] = "user-7"
    log.add("r1", "1", ["Anna Berg wrote this", "a second text"], [PREDICTION, PREDICTION])
    log.add("r2", "1", ["mail me: anna@example.com"], [PREDICTION])
    log.add("r3", "1", ["nothing personal here"], [PREDICTION])
    log.close()
    items = [
        {"request_id": r, "index": i, "label": "negative"} for r, i in (("r1", 0), ("r1", 1), ("r2", 0), ("r3", 0))
    ]
    FeedbackLog(directory, 1_000_000).append(resolve(items, log.find))


def kept(directory: Path) -> tuple[list, list, list]:
    with sqlite3.connect(directory / "answers.sqlite") as con:
        answers = sorted(con.execute("SELECT request_id, position FROM answers").fetchall())
    logged = sorted((r["request_id"], r["index"]) for r in read_rows(directory))
    labelled = sorted((r["request_id"], r["index"]) for r in read_feedback(directory, latest=False))
    return logged, labelled, answers


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_forget_by_client_id_text_and_name(tmp_path: Path, fmt: str):
    served(tmp_path, fmt)
    # the client's own id; the text as the person sent it (kept redacted, matched through the hash of that)
    r = forget(tmp_path, client_ids=["user-7"])
    assert r == {"requests": 1, "feedback": 1, "answers": 1, "files_removed": 0}
    assert kept(tmp_path) == ([("r1", 0), ("r1", 1), ("r3", 0)],) * 2 + ([("r1", 0), ("r1", 1), ("r3", 0)],)
    assert forget(tmp_path, texts=["nothing personal here"])["requests"] == 1
    # a name in the kept text: that row only, not the rest of its request
    assert forget(tmp_path, containing=["Anna Berg"])["answers"] == 1
    assert kept(tmp_path) == ([("r1", 1)], [("r1", 1)], [("r1", 1)])
    data = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    assert b"Anna Berg" not in data and b"user-7" not in data


def test_forget_by_request_id_removes_emptied_files(tmp_path: Path):
    served(tmp_path, "jsonl")
    r = forget(tmp_path, request_ids=["r1", "r2", "r3"])
    assert r["requests"] == 4 and r["feedback"] == 4 and r["answers"] == 4 and r["files_removed"] == 2
    assert kept(tmp_path) == ([], [], []) and log_files(tmp_path) == []


def test_forget_refuses_while_a_server_writes_the_log(tmp_path: Path):
    served(tmp_path, "jsonl")
    (tmp_path / f"requests-20261207T000000-{os.getppid()}.jsonl").write_text("")  # a live process's open file
    before = sorted((p.name, p.read_bytes()) for p in tmp_path.iterdir())
    with pytest.raises(StateError, match="stop `textops serve` first"):
        forget(tmp_path, request_ids=["r1"])
    assert sorted((p.name, p.read_bytes()) for p in tmp_path.iterdir()) == before  # nothing changed
