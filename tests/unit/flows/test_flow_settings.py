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


def test_importing_the_flows_changes_no_environment_and_a_flow_start_sets_the_offline_switches(tmp_path, monkeypatch):
    import importlib

    import textops.flows
    import textops.flows.pipeline

    from textops.core.env import OFFLINE_ENV

    monkeypatch.setattr(os, "environ", {k: v for k, v in os.environ.items() if k not in OFFLINE_ENV})
    before = dict(os.environ)
    importlib.reload(textops.flows)
    pipeline = importlib.reload(textops.flows.pipeline)
    assert os.environ == before
    (tmp_path / "params.yaml").write_text("{}\n")
    root, _ = pipeline.project(tmp_path, "params.yaml")
    assert root == tmp_path.resolve()
    assert {k: os.environ.get(k) for k in OFFLINE_ENV} == OFFLINE_ENV
