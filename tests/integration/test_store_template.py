"""A new project's MLflow store starts from the migrated empty store textops keeps in the user's cache (per MLflow
version), and works like one MLflow made itself: experiments, runs, the registry, the Default experiment's place."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from textops.adapters.tracking import STORE_TEMPLATE, connect, seed_store, template_dir
from textops.core.config import Params


def test_a_new_store_starts_from_the_template_and_works(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    params = Params()
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    template = template_dir("mlflow", "mlflow") / STORE_TEMPLATE
    assert not template.exists()
    connect(first, params)  # MLflow creates and migrates this one; textops keeps a copy
    assert template.is_file()
    tables = {r[0] for r in sqlite3.connect(template).execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"experiments", "runs", "registered_models", "alembic_version"} <= tables
    monkeypatch.chdir(second)
    session = connect(second, params)  # seeded, then used as MLflow's own
    db = second / "mlruns" / "mlflow.db"
    assert db.is_file()
    run = session.client.create_run(session.experiment_id)
    session.client.log_metric(run.info.run_id, "m", 1.0)
    session.client.create_registered_model("x")
    assert session.client.get_run(run.info.run_id).data.metrics == {"m": 1.0}
    default = session.client.get_experiment("0").artifact_location
    assert Path(default) == second.resolve() / "mlruns" / "0", default
    # An existing store is never replaced.
    assert not seed_store(session.uri)
