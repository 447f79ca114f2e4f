"""Retention of the files beside the served model (textops.live.retention): rows older than serve.request_log_days
leave the request log, the feedback files and the answers index, whole files or rewritten without them; the
feedback files, like the request log, keep the newest serve.request_log_keep; files being written are left alone."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pandas as pd
import pytest
from helpers import wait_for

from textops.live.answers import Answers
from textops.live.feedback import FeedbackLog, read_feedback
from textops.live.request_log import RequestLog
from textops.live.request_log_reader import feedback_files, log_files, read_rows
from textops.live.retention import DAY, drop_rows_before, expire, log_time, remove_stale_asides

NOW = time.time()


def stamp(age_days: float) -> str:
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime(NOW - age_days * DAY))


def write(directory: Path, name: str, ages: list[float], modified_age: float, **extra) -> Path:
    """A JSONL file of rows logged AGES days ago, last modified MODIFIED_AGE days ago."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    rows = [{"time": log_time(NOW - a * DAY), "request_id": f"r{a}", "index": 0, "label": "x", **extra} for a in ages]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    os.utime(path, (NOW - modified_age * DAY, NOW - modified_age * DAY))
    return path


def ages(path: Path) -> list[str]:
    return [json.loads(line)["request_id"] for line in path.read_text().splitlines()]


def test_rows_past_the_limit_go_whole_files_or_rewritten(tmp_path: Path):
    old = write(tmp_path, f"requests-{stamp(40)}-1.jsonl", [40, 39.5], 39.5)
    straddling = write(tmp_path, f"requests-{stamp(31)}-2.jsonl", [31, 30.5, 29.8], 29.8)
    recent = write(tmp_path, f"requests-{stamp(2)}-3.jsonl", [2, 1], 1)
    busy = write(tmp_path, f"requests-{stamp(31)}-4.jsonl", [31, 0.001], 0.001)  # written to a moment ago
    removed, rewritten = expire(log_files(tmp_path), NOW - 30 * DAY, idle=2 * DAY, now=NOW)
    assert removed == [old] and not old.exists()
    assert rewritten == [straddling] and ages(straddling) == ["r29.8"]
    assert ages(recent) == ["r2", "r1"] and ages(busy) == ["r31", "r0.001"]  # a worker may be appending to it


def test_a_file_with_no_row_left_is_removed_and_the_open_file_is_never_touched(tmp_path: Path):
    gone = write(tmp_path, f"feedback-{stamp(35)}-1.jsonl", [35], 10)  # touched later, rows all old
    mine = write(tmp_path, f"feedback-{stamp(35)}-2.jsonl", [35], 10)
    removed, _ = expire(feedback_files(tmp_path), NOW - 30 * DAY, idle=DAY, open_path=mine, now=NOW)
    assert removed == [gone] and not gone.exists() and mine.exists()


def test_a_parquet_file_is_rewritten_without_its_old_rows(tmp_path: Path):
    path = tmp_path / "requests-20261101T000000-1.parquet"
    times = [log_time(NOW - d * DAY) for d in (33, 31, 3)]
    pd.DataFrame({"time": times, "request_id": ["a", "b", "c"], "chars": [1, 2, 3]}).to_parquet(path)
    assert drop_rows_before(path, log_time(NOW - 30 * DAY)) is False
    kept = pd.read_parquet(path)
    assert kept["request_id"].tolist() == ["c"] and kept["chars"].tolist() == [3]
    assert drop_rows_before(path, log_time(NOW)) is True and not path.exists()


def test_the_server_applies_request_log_days_to_the_log_the_feedback_and_the_answers(tmp_path: Path):
    directory = tmp_path / "logs"
    write(directory, f"requests-{stamp(40)}-11.jsonl", [40], 40, text="forty days old")
    write(directory, f"requests-{stamp(31)}-12.jsonl", [31, 5], 5, text="thirty-one")
    write(directory, f"feedback-{stamp(45)}-11.jsonl", [45], 45, text="feedback, old")
    write(directory, f"feedback-{stamp(32)}-12.jsonl", [32, 3], 3, text="feedback, new")
    Answers(directory).add(
        [
            {"request_id": rid, "index": 0, "time": log_time(NOW - d * DAY), "model_version": "1", "label": "x"}
            | {"probabilities": {"x": 1.0}, "text": f"answer {d} days old"}
            for rid, d in [("old", 20), ("new", 1)] + [(f"old{i}", 20 + i) for i in range(40)]
        ]
    )
    log = RequestLog(directory, texts=True, days=10, answers_days=30)
    log.start()
    log.add("now", "1", ["served now"], [{"label": "x", "prob_x": 1.0}])
    log.close()
    assert sorted(r["request_id"] for r in read_rows(directory)) == ["now", "r5"]
    assert [r["request_id"] for r in read_feedback(directory, latest=False)] == ["r3"]
    assert Answers(directory).find("old") == [] and Answers(directory).find("new")  # the shorter of the two limits
    data = b"".join(p.read_bytes() for p in directory.iterdir())
    assert b"forty days old" not in data and b"feedback, old" not in data and b"answer 20 days old" not in data


def test_an_idle_server_still_expires_rows(tmp_path: Path):
    """No traffic: the writer wakes up on its own, closes its old file and removes the expired rows."""
    days = 2 / DAY  # two seconds
    log = RequestLog(tmp_path, texts=True, days=days)
    log.start()
    log.add("r", "1", ["soon gone"], [{"label": "x", "prob_x": 1.0}])
    wait_for(lambda: list(read_rows(tmp_path)), 60, "the row written")
    wait_for(lambda: not list(read_rows(tmp_path)) and not Answers(tmp_path).find("r"), 60, "the row expired")
    log.close()


def test_feedback_files_are_pruned_like_the_request_log(tmp_path: Path):
    directory = tmp_path / "logs"
    for i in range(6):
        write(directory, f"feedback-2026110{i}T000000-{100 + i}.jsonl", [1], 1)
    log = RequestLog(directory, keep=3)
    log.start()
    log.add("r", "1", ["text"], [{"label": "a", "prob_a": 1.0}])
    log.close()
    assert [p.name for p in feedback_files(directory)] == [
        f"feedback-2026110{i}T000000-{100 + i}.jsonl" for i in (3, 4, 5)
    ]


def test_the_feedback_writer_starts_a_new_file_when_its_own_was_pruned_or_is_old(tmp_path: Path):
    feedback = FeedbackLog(tmp_path, 1_000_000, days=30)
    row = {"time": log_time(time.time()), "request_id": "r", "index": 0, "label": "a"}
    feedback.append([row])
    (first,) = feedback_files(tmp_path)
    first.unlink()  # another worker's retention
    feedback.append([row])
    assert len(feedback_files(tmp_path)) == 1 and len(read_feedback(tmp_path, latest=False)) == 1
    feedback._opened -= 2 * DAY  # a file started two days ago: the next label goes to a new one
    feedback.append([row])
    assert len(feedback_files(tmp_path)) == 2


@pytest.mark.parametrize("bad", ["", "x"])
def test_a_file_with_no_time_in_its_name_is_never_rewritten(tmp_path: Path, bad: str):
    path = write(tmp_path, f"requests{bad}.jsonl", [40, 1], 1)
    assert expire([path], NOW - 30 * DAY, idle=0, now=NOW) == ([], []) and ages(path) == ["r40", "r1"]


def test_a_pruned_answer_leaves_no_trace_in_the_index_file(tmp_path: Path):
    """SQLite leaves a deleted row's bytes in the file's free space unless told otherwise (secure_delete)."""
    answers = Answers(tmp_path)
    rows = [
        {"request_id": f"r{i}", "index": 0, "time": log_time(NOW - (40.05 - i / 10) * DAY), "model_version": "1"}
        | {"label": "x", "probabilities": {"x": 1.0}, "text": f"the text of answer {i} " * 3}
        for i in range(200)
    ]
    answers.add(rows)
    answers.prune(log_time(NOW - 30 * DAY))
    data = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert b"the text of answer 1 " not in data and b"the text of answer 150 " in data
    assert answers.find("r50") == [] and [a["text"] for a in answers.find("r150")] == ["the text of answer 150 " * 3]


def test_copies_a_killed_rewrite_left_are_removed_after_a_day(tmp_path: Path):
    stale, fresh = tmp_path / "requests-x.jsonl.123.tmp", tmp_path / "feedback-y.jsonl.456.tmp"
    for path in (stale, fresh):
        path.write_text('{"text": "a row retention removed"}\n')
    os.utime(stale, (NOW - 2 * DAY, NOW - 2 * DAY))
    assert remove_stale_asides(tmp_path, now=NOW) == [stale] and fresh.exists()
