"""The Prefect flows in-process (temporary Prefect server, project-local PREFECT_HOME), through `textops run`
and `textops rollback`, on real DVC, Great Expectations, MLflow (SQLite in the test project) and a tiny model.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import REPO, git, set_params, textops

# Small enough for two shared CPU cores: a few hundred rows, one epoch, a very small model.
FAST = {
    "sample": {"rows": 400, "seed": 13},
    "validate": {"min_rows": 100, "min_rows_per_class": 20},
    "model": {
        "max_length": 32,
        "tiny": {"vocab_size": 500, "hidden_size": 16, "num_layers": 1, "num_heads": 2, "intermediate_size": 32},
    },
    "train": {"epochs": 1, "batch_size": 32, "save_steps": 1000, "logging_steps": 5},
    "promotion": {"floor": 0.0},
}


@pytest.fixture
def fast_project(project: Path) -> Path:
    set_params(project, FAST)
    return project


def in_process(root: Path, code: str) -> dict:
    """Run CODE in a fresh interpreter in ROOT with flows importable; it must print one JSON line last."""
    script = f"import sys, json\nsys.path.insert(0, {str(REPO)!r})\nfrom flows import configure_prefect\n"
    script += f"configure_prefect(__import__('pathlib').Path({str(root)!r}))\n" + code
    proc = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def registry(root: Path) -> dict:
    """Champion version and every version's test metrics (not throughput), read from the project's store."""
    return in_process(
        root,
        "from mlflow import MlflowClient\n"
        "from textops.config import load_params\n"
        "from textops.registry import client\n"
        "p = load_params('params.yaml'); c = client(__import__('pathlib').Path('.').resolve(), p)\n"
        "name = p.mlflow.registered_model\n"
        "vs = c.search_model_versions(f\"name='{name}'\")\n"
        "out = {'champion': str(c.get_model_version_by_alias(name, 'champion').version),\n"
        "       'metrics': {v.version: {k: m for k, m in c.get_run(v.run_id).data.metrics.items()\n"
        "                               if k.startswith('test_') and 'second' not in k} for v in vs}}\n"
        "print(json.dumps(out))\n",
    )


# --------------------------------------------------------------------------------------------------
# Cheap checks: settings and the retry condition (real Prefect states, no server).


def test_configure_prefect_keeps_user_settings(tmp_path, monkeypatch):
    sys.path.insert(0, str(REPO))
    from flows import configure_prefect

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
    assert configure_prefect(tmp_path) == {"PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120"}


def test_train_retries_transient_errors_only():
    sys.path.insert(0, str(REPO))
    from prefect.states import exception_to_failed_state

    from flows.pipeline import transient_only
    from textops.errors import DataError, StateError

    def failed(exc: BaseException):
        try:
            raise exc
        except BaseException as raised:
            return asyncio.run(exception_to_failed_state(raised))

    assert transient_only(None, None, failed(OSError("CUDA error: an illegal memory access"))) is True
    assert transient_only(None, None, failed(ConnectionError("tracking server went away"))) is True
    assert transient_only(None, None, failed(DataError("bad labels"))) is False
    assert transient_only(None, None, failed(StateError("no data"))) is False


# --------------------------------------------------------------------------------------------------
# The pipeline flow end to end.


def test_failed_validation_fails_the_flow_and_trains_nothing(fast_project):
    # Valid data, but the gate asks for more training rows than the sample has.
    set_params(fast_project, {"validate": {"min_rows": 100_000}})
    proc = textops(fast_project, "run", check=False)
    assert proc.returncode != 0
    err = proc.stdout + proc.stderr
    assert "data validation failed, nothing trained or registered" in err
    assert "expect_table_row_count_to_be_between" in err  # the failed expectation is named
    assert not (fast_project / "artifacts" / "model" / "run.json").exists()
    assert json.loads((fast_project / "metrics" / "validate.json").read_text())["success"] is False
    # dvc.lock records what the flow's stages produced.
    lock = yaml.safe_load((fast_project / "dvc.lock").read_text())
    assert {"preprocess", "validate"} <= set(lock["stages"])


def test_run_on_fresh_project_trains_registers_then_skips_without_torch(fast_project):
    proc = textops(fast_project, "run")
    out = proc.stdout
    assert "ingesting the built-in sample" in out
    assert "now the champion" in out and "next steps" in out and "textops serve" in out
    assert (fast_project / ".prefect").is_dir()  # project-local Prefect home
    assert registry(fast_project)["champion"] == "1"
    # Every stage's outputs are recorded in dvc.lock: DVC agrees there is nothing to reproduce.
    status = subprocess.run([sys.executable, "-m", "dvc", "status"], cwd=fast_project, capture_output=True,
                            text=True, check=True).stdout
    assert "up to date" in status, status

    # Same data and params: the flow ends early, Completed, and never imports torch.
    result = in_process(
        fast_project,
        "from flows.pipeline import training_pipeline\n"
        "s = training_pipeline(project_dir='.', return_state=True)\n"
        "print(json.dumps({'type': s.type.value, 'message': s.message, 'torch': 'torch' in sys.modules}))\n",
    )
    assert result["type"] == "COMPLETED"
    assert result["message"].startswith("nothing to retrain")
    assert result["torch"] is False
    again = textops(fast_project, "run")
    assert "nothing to retrain" in again.stdout

    # A params change is a change: `--force` is not needed.
    set_params(fast_project, {"train": {"learning_rate": 0.001}})
    changed = textops(fast_project, "run")
    assert "registered" in changed.stdout
    assert len(registry(fast_project)["metrics"]) == 2


# --------------------------------------------------------------------------------------------------
# Data-version rollback.


def noisy(frame: pd.DataFrame, fraction: float, seed: int) -> pd.DataFrame:
    """Valid data whose labels are partly wrong: the same texts, FRACTION of labels flipped."""
    out = frame.copy()
    flip = out.sample(frac=fraction, random_state=seed).index
    names = sorted(out["label"].unique())
    out.loc[flip, "label"] = out.loc[flip, "label"].map(lambda v: names[1 - names.index(v)])
    out["text"] = out["text"] + " ."  # new rows, so v2 is a new data version on top of v1
    return out


def test_rollback_restores_data_and_reproduces_the_v1_model(fast_project):
    root = fast_project
    sample = root.parent / "v1.csv"
    textops(root, "sample", "--no-ingest", "--output", str(sample))
    textops(root, "ingest", str(sample), "--commit")
    v1_rev = git(root, "rev-parse", "HEAD").strip()
    textops(root, "run")
    v1 = registry(root)
    assert v1["champion"] == "1"

    v2 = root.parent / "v2.csv"
    noisy(pd.read_csv(sample), 0.45, seed=1).to_csv(v2, index=False)
    textops(root, "ingest", str(v2), "--commit")
    textops(root, "run")
    assert len(registry(root)["metrics"]) == 2

    proc = textops(root, "rollback", "--data", v1_rev, "--force", "--reason", "v2 labels are noisy")
    assert "now the champion" in proc.stdout
    after = registry(root)
    assert after["champion"] == "3"
    # Same data version, params and seed on the CPU: the retrained model is the v1 model, metric for metric.
    assert after["metrics"]["3"] == v1["metrics"]["1"]
    # The working tree's data is v1's, and the data versions list shows it as the newest version.
    assert (root / "data.dvc").read_text() == git(root, "show", f"{v1_rev}:data.dvc")
    versions = textops(root, "data", "versions").stdout.splitlines()
    v1_md5 = yaml.safe_load((root / "data.dvc").read_text())["outs"][0]["md5"]
    assert v1_md5[:12] in versions[1]
