"""Shared fixtures: a throwaway textops project (git repo, DVC repo with a local remote, MLflow store).

Tests that commit, ingest or register work only in such a project, never in this checkout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SST2 = REPO.parent / "shared" / "datasets" / "sst2"

# The project's own offline switches, also for the subprocesses tests start.
from textops.env import OFFLINE_ENV  # noqa: E402

for _k, _v in OFFLINE_ENV.items():
    os.environ.setdefault(_k, _v)
# One torch thread per process: the suite runs two workers (pytest-xdist) on two cores, and each training
# process with torch's default thread count would spin against the other (BENCHMARKS.md, "Threads").
os.environ.setdefault("OMP_NUM_THREADS", "1")
# DVC stages call `textops ...` through a shell: the console script must be on PATH even when the
# virtualenv is not activated (`.venv/bin/python -m pytest`).
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def make_project(path: Path) -> Path:
    """A textops project in PATH: params.yaml, dvc.yaml and sources layout, git + DVC with a local remote."""
    path.mkdir(parents=True, exist_ok=True)
    for name in ("params.yaml", "dvc.yaml", ".gitignore"):
        shutil.copy(REPO / name, path / name)
    # dvc.yaml lists the stage modules as deps; the project needs them at those paths.
    shutil.copytree(REPO / "src", path / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.email", "tests@textops.invalid")
    git(path, "config", "user.name", "textops tests")
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=path, check=True)
    remote = path.parent / f"{path.name}-remote"
    remote.mkdir(exist_ok=True)
    subprocess.run([sys.executable, "-m", "dvc", "remote", "add", "-d", "local", str(remote)], cwd=path, check=True)
    subprocess.run([sys.executable, "-m", "dvc", "config", "core.autostage", "true"], cwd=path, check=True)
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "init project")
    return path


def merge(base: dict, update: dict) -> dict:
    """BASE with UPDATE merged in, nested sections key by key."""
    out = dict(base)
    for key, value in update.items():
        out[key] = merge(base.get(key) or {}, value) if isinstance(value, dict) else value
    return out


def set_params(root: Path, *updates: dict, commit: bool = True) -> None:
    """Merge UPDATES into ROOT's params.yaml; with COMMIT, commit it (a clean tree: lineage tags say dirty=false)."""
    path = root / "params.yaml"
    params = yaml.safe_load(path.read_text())
    for update in updates:
        params = merge(params, update)
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    if commit:
        git(root, "commit", "-q", "-m", "test params", "--", "params.yaml")


@contextmanager
def sampled_project(factory: pytest.TempPathFactory, name: str, params: dict) -> Iterator[Path]:
    """For module fixtures: a new project with PARAMS and the sample ingested, the current directory while the
    block runs, on its own MLflow store whatever the caller's environment says."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        root = make_project(factory.mktemp(name) / "proj")
        mp.chdir(root)
        set_params(root, params, commit=False)
        textops(root, "sample")
        yield root


STORE_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


@pytest.fixture(autouse=True)
def no_store_leak():
    """Fail a test that leaves an MLflow store in the environment (`mlflow.set_tracking_uri` exports it).

    textops reads MLFLOW_TRACKING_URI as the user's store, so a leaked value silently points every later test
    in the worker, and every `textops` it starts, at another project's store (CI saw a locked-store test list
    an unlocked store this way). The variables are put back either way, so one leak fails one test.
    """
    before = {name: os.environ.get(name) for name in STORE_VARIABLES}
    yield
    after = {name: os.environ.get(name) for name in STORE_VARIABLES}
    for name, value in before.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    assert after == before, f"the test left the MLflow store variables changed: {before} -> {after}"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh project directory, the current directory for the test, with its own MLflow store."""
    root = make_project(tmp_path / "proj")
    monkeypatch.chdir(root)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    return root


def textops(cwd: Path, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run the real `textops` console script in CWD."""
    exe = Path(sys.executable).with_name("textops")
    proc = subprocess.run([str(exe), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"textops {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture
def sst2() -> Path:
    if not (SST2 / "train.tsv").exists():
        pytest.skip(f"SST-2 not found at {SST2} (CI has it; a user's machine does not)")
    return SST2


@pytest.fixture(scope="session")
def champion_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project with the sample ingested and a champion registered (tests/reliability FAST params), built once
    per session. Tests may read it and run things that must leave it unchanged; tests that change it build
    their own (an MLflow store cannot be copied: its artifact URIs are absolute)."""
    sys.path.insert(0, str(Path(__file__).parent / "reliability"))
    from harness import SECRETS, champion_project

    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.delenv("PREFECT_API_URL", raising=False)
        for name, value in SECRETS.items():  # test_security checks that none of them is written anywhere
            mp.setenv(name, value)
        return champion_project(tmp_path_factory.mktemp("champion") / "proj")
