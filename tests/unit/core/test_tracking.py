"""Which MLflow store a project uses, and a Session that leaves the process as it found it."""

from __future__ import annotations

import os

import mlflow

from textops.adapters.tracking import Session, tracking_uri
from textops.core.config import Params


def test_tracking_uri_resolves_against_root_and_env_wins(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking_uri(tmp_path, Params()) == f"sqlite:///{tmp_path.resolve()}/mlruns/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    assert tracking_uri(tmp_path, Params()) == "http://127.0.0.1:5999"


def test_session_active_points_mlflow_at_the_store_and_back(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    uri = f"sqlite:///{tmp_path}/a.db"
    session = Session(uri, mlflow.MlflowClient(uri, uri), None, "m")
    before = mlflow.get_tracking_uri()
    with session.active():
        assert mlflow.get_tracking_uri() == uri and mlflow.get_registry_uri() == uri
        # mlflow.set_tracking_uri / set_registry_uri alone export the variables; textops reads the first as the
        # user's store, and a child `mlflow models serve` would take the second as its registry
        assert "MLFLOW_TRACKING_URI" not in os.environ and "MLFLOW_REGISTRY_URI" not in os.environ
    assert mlflow.get_tracking_uri() == before != uri
    # A store the user chose in the environment is still theirs afterwards, and still followed.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mine:5000")
    with session.active():
        assert mlflow.get_tracking_uri() == uri
    assert os.environ["MLFLOW_TRACKING_URI"] == "http://mine:5000"
    assert mlflow.get_tracking_uri() == "http://mine:5000"


def test_server_gone_names_a_tracking_server_that_stopped_answering():
    import requests

    from textops.adapters.tracking import server_gone

    def wrapped(exc: Exception) -> Exception:
        try:
            try:
                raise exc
            except Exception as inner:  # as MLflow's http_request wraps it: a new exception, the old as context
                raise mlflow.exceptions.MlflowException(f"API request to http://u:secret@h:5000/api failed: {inner}")  # noqa: B904
        except Exception as outer:
            return outer

    gone = server_gone(wrapped(requests.exceptions.ConnectionError("Connection refused")))
    assert gone is not None and "Connection refused" in gone and "secret" not in gone
    assert server_gone(wrapped(requests.exceptions.RetryError("too many 503 error responses"))) is not None
    assert server_gone(wrapped(ValueError("a bad value"))) is None
    assert server_gone(ValueError("no cause")) is None


def test_owner_tags_tell_a_live_owner_from_a_dead_or_reused_pid():
    import os
    import socket

    import psutil

    from textops.adapters.tracking import owner_alive, owner_tags
    from textops.core.lineage import OWNER_HOST, OWNER_PID, OWNER_START

    mine = owner_tags()
    assert owner_alive(mine) is True
    # the same pid with another start time: the pid was reused by a process that is not the run's owner
    assert owner_alive({**mine, OWNER_START: f"{float(mine[OWNER_START]) - 1000:.2f}"}) is False
    # a tag written by a textops that recorded kernel clock ticks: not comparable, the pid alone decides
    assert owner_alive({**mine, OWNER_START: "4242424"}) is True
    assert owner_alive({**mine, OWNER_START: ""}) is True
    gone = next(p for p in range(os.getpid() + 10_000, 4_194_304) if not psutil.pid_exists(p))
    assert owner_alive({**mine, OWNER_PID: str(gone), OWNER_START: "4242424"}) is False
    # another machine's run, or no owner tags: this machine cannot tell
    assert owner_alive({**mine, OWNER_HOST: socket.gethostname() + "-other"}) is None
    assert owner_alive({}) is None


def test_a_damaged_store_is_named_at_once_and_a_locked_one_as_held(tmp_path):
    import sqlite3

    import pytest

    from textops.adapters.tracking import check_store
    from textops.core.errors import StateError

    damaged = tmp_path / "damaged.db"
    damaged.write_bytes(b"this was mlflow.db before a bad copy" * 200)
    with pytest.raises(StateError, match="is damaged") as err:
        check_store(f"sqlite:///{damaged}", timeout=30)
    assert "another process" not in str(err.value)

    held = tmp_path / "held.db"
    sqlite3.connect(held).execute("CREATE TABLE t (x)").connection.commit()
    holder = sqlite3.connect(held)
    holder.execute("BEGIN IMMEDIATE")  # what an open sqlite3 shell in a transaction does
    try:
        with pytest.raises(StateError, match="another process holds it"):
            check_store(f"sqlite:///{held}", timeout=0.2)
    finally:
        holder.rollback()
        holder.close()
    check_store(f"sqlite:///{held}", timeout=5)  # free again: no error
