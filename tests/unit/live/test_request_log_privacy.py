"""What the request log keeps of a served text: with serve.log_texts, the text with its personal data replaced
(serve.redact, on by default) in the log's files, its answers index and the feedback on it, and the hash of that
redacted text; in clear only where serve.redact is turned off; and hash-only mode (no texts) as it always was."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from textops.live.feedback import FeedbackLog, read_feedback, resolve
from textops.live.request_log import RequestLog, text_hash
from textops.live.request_log_reader import read_rows

EMAIL, PHONE = "jane.doe@example.com", "+44 20 7946 0958"
TEXT = f"Müller 😀 says: write to {EMAIL} or call {PHONE}, thanks"
REDACTED = "Müller 😀 says: write to <EMAIL> or call <PHONE>, thanks"
PREDICTION = {"label": "positive", "prob_negative": 0.2, "prob_positive": 0.8}


def every_byte(directory: Path) -> bytes:
    """Every file under DIRECTORY, raw, and Parquet files decoded too (their pages may be compressed)."""
    out = b""
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        out += path.read_bytes()
        if path.suffix == ".parquet":
            out += pd.read_parquet(path).to_json().encode()
    return out


def logged(tmp_path: Path, fmt: str = "jsonl", **options) -> list[dict]:
    log = RequestLog(tmp_path / "logs", fmt, **options)
    log.start()
    log.add("r1", "1", [TEXT, "plain text"], [PREDICTION, PREDICTION])
    log.close()
    return list(read_rows(tmp_path / "logs"))


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_texts_are_redacted_before_any_file_is_written(tmp_path: Path, fmt: str):
    rows = logged(tmp_path, fmt, texts=True)
    assert [r["text"] for r in rows] == [REDACTED, "plain text"]
    # The hash is the redacted text's: it says no more than the text beside it (docs/privacy.md).
    assert [r["text_sha256"] for r in rows] == [text_hash(REDACTED), text_hash("plain text")]
    assert rows[0]["chars"] == len(TEXT)  # the served text's length: the monitor's length test is unchanged
    with sqlite3.connect(tmp_path / "logs" / "answers.sqlite") as con:
        assert con.execute("SELECT text FROM answers ORDER BY position").fetchall() == [(REDACTED,), ("plain text",)]
    raw = every_byte(tmp_path)
    assert EMAIL.encode() not in raw and PHONE.encode() not in raw and b"write to <EMAIL>" in raw


def test_feedback_on_an_answer_not_yet_written_gets_the_redacted_text(tmp_path: Path):
    log = RequestLog(tmp_path / "logs", texts=True)
    log.expect("r1", "1", [TEXT], [PREDICTION])  # answered, its shadow scoring still running: not logged yet
    rows = resolve([{"request_id": "r1", "index": None, "label": "negative"}], log.find)
    assert rows[0]["text"] == REDACTED
    FeedbackLog(tmp_path / "logs", 1_000_000).append(rows)
    assert [r["text"] for r in read_feedback(tmp_path / "logs")] == [REDACTED]
    assert EMAIL.encode() not in every_byte(tmp_path)


def test_redaction_can_be_turned_off_and_then_the_text_is_kept_as_served(tmp_path: Path):
    rows = logged(tmp_path, texts=True, redact=False)
    assert rows[0]["text"] == TEXT and rows[0]["text_sha256"] == text_hash(TEXT)


@pytest.mark.parametrize("redact", [True, False])
def test_hash_only_mode_is_unchanged(tmp_path: Path, redact: bool):
    """serve.log_texts false: no text anywhere, and the hash is the served text's, as before."""
    rows = logged(tmp_path, texts=False, redact=redact)
    assert "text" not in rows[0] and rows[0]["text_sha256"] == text_hash(TEXT)
    assert set(rows[0]) >= {"time", "request_id", "index", "model_version", "label", "chars", "probabilities"}
    with sqlite3.connect(tmp_path / "logs" / "answers.sqlite") as con:
        assert con.execute("SELECT text FROM answers").fetchall() == [(None,), (None,)]
    raw = every_byte(tmp_path)
    assert EMAIL.encode() not in raw and b"<EMAIL>" not in raw


def test_the_params_turn_redaction_on_by_default():
    from textops.core.config import Params

    serve = Params().serve
    assert serve.redact is True and serve.request_log_days == 30
    assert json.loads(Params.model_validate({"serve": {"redact": False}}).serve.model_dump_json())["redact"] is False
