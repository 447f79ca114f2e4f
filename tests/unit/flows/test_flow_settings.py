"""Prefect's settings for an in-process run, and the train task's retry condition (real Prefect states, no
server). The temporary server's start-up against real processes is tests/integration/test_prefect_start_up.py."""

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

    from textops.runtime import prefect_server as server

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
