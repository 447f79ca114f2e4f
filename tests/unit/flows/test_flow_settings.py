"""Prefect's settings for an in-process run, and the train task's retry condition (real Prefect states, no
server)."""

from __future__ import annotations

import asyncio
import os


def test_configure_prefect_keeps_user_settings(tmp_path, monkeypatch):
    from textops.flows import configure_prefect

    # configure_prefect writes os.environ directly: give it a copy, so nothing leaks into later tests.
    monkeypatch.setattr(os, "environ", dict(os.environ))
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.delenv("PREFECT_HOME", raising=False)
    monkeypatch.setenv("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "300")
    monkeypatch.delenv("PREFECT_LOGGING_EXTRA_LOGGERS", raising=False)
    applied = configure_prefect(tmp_path)
    assert applied == {"PREFECT_HOME": str(tmp_path.resolve() / ".prefect"), "PREFECT_LOGGING_EXTRA_LOGGERS": "textops"}
    assert os.environ["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] == "300"
    # Against a server, PREFECT_HOME is the user's business.
    monkeypatch.delenv("PREFECT_HOME")
    monkeypatch.delenv("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS")
    monkeypatch.setenv("PREFECT_LOGGING_EXTRA_LOGGERS", "mine")
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:1/api")
    assert configure_prefect(tmp_path) == {"PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "1200"}


def test_train_retries_transient_errors_only():
    from prefect.states import exception_to_failed_state
    from textops.flows.pipeline import transient_only

    from textops.core.errors import DataError, StateError

    def failed(exc: BaseException):
        try:
            raise exc
        except BaseException as raised:
            return asyncio.run(exception_to_failed_state(raised))

    assert transient_only(None, None, failed(OSError("CUDA error: an illegal memory access"))) is True
    assert transient_only(None, None, failed(ConnectionError("tracking server went away"))) is True
    assert transient_only(None, None, failed(DataError("bad labels"))) is False
    assert transient_only(None, None, failed(StateError("no data"))) is False


def test_a_new_projects_prefect_database_starts_from_the_migrated_template(tmp_path, monkeypatch):
    import sqlite3

    from textops.flows import server

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    first, second = tmp_path / "first" / ".prefect", tmp_path / "second" / ".prefect"
    first.mkdir(parents=True)
    second.mkdir(parents=True)
    assert not server.seed_database(second)  # no template yet: the first project migrates its own
    con = sqlite3.connect(first / server.DB)
    con.execute("PRAGMA journal_mode=WAL")  # as Prefect's server keeps it, with writes still in the WAL
    con.execute("CREATE TABLE alembic_version (version_num TEXT)")
    con.execute("INSERT INTO alembic_version VALUES ('head')")
    con.commit()
    server.save_template(first)
    con.close()
    assert server.template_dir("prefect", "prefect").parent == tmp_path / "cache" / "textops"
    assert server.seed_database(second)
    rows = sqlite3.connect(second / server.DB).execute("SELECT version_num FROM alembic_version").fetchall()
    assert rows == [("head",)]
    # The template is written once; a project that has a database keeps it.
    stamp = (server.template_dir("prefect", "prefect") / server.DB).stat().st_mtime_ns
    server.save_template(second)
    assert (server.template_dir("prefect", "prefect") / server.DB).stat().st_mtime_ns == stamp


def test_the_temporary_server_start_up_waits_for_progress_not_for_a_fixed_time(tmp_path, monkeypatch):
    """A server that is alive and working (CPU used) is waited for past any fixed time; one that stalls (no CPU,
    no log) fails after STALL_S; one that exits fails at once, naming its log. Real processes, no server needed."""
    import subprocess
    import sys

    import pytest
    from textops.flows import server

    from textops.core.errors import StateError

    monkeypatch.setattr(server, "STALL_S", 2)
    log = tmp_path / "server.log"
    log.write_text("")
    url = "http://127.0.0.1:9/api"  # nothing answers there
    stalled = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with pytest.raises(StateError, match="made no progress"):
            server._wait_healthy(url, stalled, log)
    finally:
        stalled.kill()
        stalled.wait()
    gone = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    gone.wait()
    with pytest.raises(StateError, match="exited with code 3"):
        server._wait_healthy(url, gone, log)
    # Busy for longer than STALL_S, then gone: waited for the whole time it was busy (no stall reported).
    busy = subprocess.Popen([sys.executable, "-c", "import time\nt = time.time()\nwhile time.time() - t < 5: pass"])
    with pytest.raises(StateError, match="exited with code 0"):
        server._wait_healthy(url, busy, log)
