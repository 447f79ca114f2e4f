"""One person's rows out of everything the server keeps (`textops forget`): the request log's rows, the feedback on
those answers and their entries in the answers index, found by the server's request ids, a client's own
X-Request-Id, a text's SHA-256, or a piece of text the kept texts contain (docs/privacy.md)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from textops.core.redact import redact
from textops.live.answers import ANSWERS
from textops.live.request_log import text_hash
from textops.live.request_log_reader import feedback_files, log_files
from textops.live.retention import drop_rows


def writers(directory: Path) -> list[int]:
    """The other live processes whose request log in DIRECTORY may be open (a JSONL file names its writer's pid)."""
    pids = set()
    for path in log_files(directory):
        try:
            pid = int(path.name.split("-")[2].split(".")[0])
        except (IndexError, ValueError):
            continue
        if path.suffix == ".jsonl" and pid != os.getpid() and alive(pid):
            pids.add(pid)
    return sorted(pids)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def matcher(request_ids=(), client_ids=(), texts=(), containing=()):
    """Whether a row is one of those asked for: by request id, client request id, the hash of a text as served or
    as redacted (whichever the log kept), or a piece of its kept text."""
    request_ids, client_ids = set(request_ids), set(client_ids)
    hashes = {text_hash(t) for t in texts} | {text_hash(redact(t)) for t in texts}
    pieces = [p for p in containing if p]

    def match(row: dict) -> bool:
        text = row.get("text") or ""
        return (
            row.get("request_id") in request_ids
            or row.get("client_request_id") in client_ids
            or row.get("text_sha256") in hashes
            or any(p in text for p in pieces)
        )

    return match


def forget(directory: Path, request_ids=(), client_ids=(), texts=(), containing=()) -> dict:
    """Remove the rows asked for (`matcher`) from the request log in DIRECTORY, the feedback on those answers, and
    their answers; the counts. Files are rewritten aside and renamed; SQLite overwrites what it deletes."""
    from textops.core.errors import StateError

    directory = Path(directory)
    running = writers(directory)
    if running:
        raise StateError(
            f"a server (pid {', '.join(map(str, running))}) is writing the request log in {directory}: stop "
            "`textops serve` first (a file rewritten under it would lose the rows it writes meanwhile), then run "
            "this again. Nothing was changed."
        )
    match = matcher(request_ids, client_ids, texts, containing)
    answers: set[tuple] = set()

    def logged(row: dict) -> bool:
        if match(row):
            answers.add((row.get("request_id"), row.get("index")))
            return True
        return False

    counts = {"requests": 0, "feedback": 0, "answers": 0, "files_removed": 0}
    for path in log_files(directory):
        dropped, removed = drop_rows(path, logged)
        counts["requests"] += dropped
        counts["files_removed"] += removed
    for path in feedback_files(directory):
        dropped, removed = drop_rows(path, lambda r: match(r) or (r.get("request_id"), r.get("index")) in answers)
        counts["feedback"] += dropped
        counts["files_removed"] += removed
    counts["answers"] = forget_answers(directory / ANSWERS, answers, set(request_ids), containing)
    return counts


def forget_answers(path: Path, answers: set[tuple], request_ids: set[str], containing) -> int:
    """Delete ANSWERS ((request id, position)), every answer of REQUEST_IDS and those whose text holds a piece of
    CONTAINING from the answers index at PATH; how many."""
    if not path.exists():
        return 0
    con = sqlite3.connect(path, timeout=30)
    try:
        con.execute("PRAGMA secure_delete=ON")
        gone = 0
        with con:
            for key in answers:
                gone += con.execute("DELETE FROM answers WHERE request_id = ? AND position = ?", key).rowcount
            for rid in request_ids:
                gone += con.execute("DELETE FROM answers WHERE request_id = ?", (rid,)).rowcount
            for piece in (p for p in containing if p):
                gone += con.execute("DELETE FROM answers WHERE instr(text, ?) > 0", (piece,)).rowcount
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        con.close()
    return gone
