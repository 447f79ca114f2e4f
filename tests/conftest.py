"""Fixtures of the whole suite. Helpers live in tests/helpers.py (imported by name: `from helpers import ...`).

Tests that commit, ingest or register work only in a throwaway project (`project`), never in this checkout.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

# Before any library is imported: the suite never writes to the user's home (~/.prefect, ~/.config, ~/.cache,
# ~/.gitconfig). Every library that keeps state under HOME or the XDG directories gets a throwaway one, and git
# sees no global config, as on a fresh machine (the test repos set their own identity).
_HOME = Path(tempfile.mkdtemp(prefix="textops-tests-home-"))
atexit.register(shutil.rmtree, _HOME, ignore_errors=True)
os.environ.update(
    HOME=str(_HOME),
    MPLCONFIGDIR=str(_HOME / ".matplotlib"),
    XDG_CONFIG_HOME=str(_HOME / ".config"),
    XDG_CACHE_HOME=str(_HOME / ".cache"),
    XDG_DATA_HOME=str(_HOME / ".local"),
)
for _name in ("GIT_CONFIG_GLOBAL", "PREFECT_HOME"):  # textops keeps Prefect's home in the project; flows
    os.environ.pop(_name, None)  # run in-process by a test use the throwaway HOME's

import pytest  # noqa: E402
from helpers import (  # noqa: E402
    FAST,
    SECRETS,
    SST2,
    champion_project,
    copy_project,
    easy_reviews,
    make_project,
    set_params,
    textops,
)

from textops.core.env import set_offline_env  # noqa: E402

# The project's own offline switches, also for the subprocesses tests start.
set_offline_env()
# One torch thread per process: the suite runs three workers (pytest-xdist) on two cores, and each training
# process with torch's default thread count would spin against the other (BENCHMARKS.md, "Threads").
os.environ.setdefault("OMP_NUM_THREADS", "1")
# DVC stages call `textops ...` through a shell: the console script must be on PATH even when the
# virtualenv is not activated (`.venv/bin/python -m pytest`).
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"

STORE_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


# The longest test files (CI's --durations, minutes of one worker each), first: with `--dist loadfile` the
# workers take files in this order, so the longest no longer start last and leave the others idle at the end
# (the loop test, its cool-down included, was seen alone for the last 6 minutes).
LONGEST_FIRST = (  # by their time in the lane of 2026-12-07 17:42 (three workers: the files' summed durations)
    "test_loop.py",  # one test of 5 minutes
    "test_serve.py",
    "test_crashes.py",
    "test_mlflow_server.py",
    "test_poisoned_data.py",
    "test_workers.py",
    "test_ray.py",
    "test_flows.py",
    "test_ingest.py",
    "test_bad_data.py",
    "test_faults.py",
    "test_store_faults.py",
    "test_registry.py",
    "test_distributed.py",
    "test_journey.py",
    "test_train.py",
    "test_restores.py",
    "test_prefect_server.py",
    "test_evaluate.py",
    "test_user_mistakes.py",
    "test_own_data.py",
)


def pytest_collection_modifyitems(items):
    """tests/production (the scale-out on PostgreSQL-backed servers) is part of the extended tier; the longest
    files go first (LONGEST_FIRST), the rest in their order (a stable sort)."""
    for item in items:
        if "tests/production/" in item.nodeid or item.nodeid.startswith("production/"):
            item.add_marker(pytest.mark.extended)
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(Path(str(item.fspath)).name, len(rank)))


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


@pytest.fixture
def fast_project(project: Path) -> Path:
    """`project` with the FAST params committed."""
    set_params(project, FAST)
    return project


# The train and evaluate tests: FAST with one more epoch and a higher learning rate for the easy reviews.
SMALL = {"train": {"epochs": 4, "learning_rate": 0.003}}


@pytest.fixture
def small(project: Path) -> Path:
    """`project` with the FAST params (SMALL on top) and an easy labelled file ingested and preprocessed; the file
    has a `group` column (data.group_column), carried into the splits for the evaluation's slices, never trained on."""
    set_params(project, FAST, SMALL, commit=False)
    reviews = easy_reviews()
    reviews.assign(group=[("web", "mail", "")[i % 3] for i in range(len(reviews))]).to_csv(
        project / "easy.csv", index=False
    )
    textops(project, "ingest", "easy.csv")
    textops(project, "preprocess")
    return project


@pytest.fixture
def sst2() -> Path:
    if not (SST2 / "train.tsv").exists():
        pytest.skip(f"SST-2 not found at {SST2} (CI has it; a user's machine does not)")
    return SST2


@pytest.fixture
def champion_copy(champion_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the session's champion project that the test may change (seconds, where a new one takes a training
    run): the copy's store points at its own artifacts after its first command, as a user's `cp -a` does."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    return copy_project(champion_template, tmp_path / "proj")


@pytest.fixture(scope="session")
def champion_template(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    """A project with the sample ingested and a champion registered (FAST params), trained once per test run and
    shared by the xdist workers: the first to ask trains it under a file lock, and each worker reads its own copy
    (`copy_project`, a user's `cp -a`), so no worker sees another's commands in it. Tests may read it and run things
    that must leave it unchanged; tests that change it take `champion_copy`."""
    from filelock import FileLock

    # The workers' base temp dirs share this parent (pytest-xdist's recipe for a once-per-run fixture).
    shared = tmp_path_factory.getbasetemp() if worker_id == "master" else tmp_path_factory.getbasetemp().parent
    trained = shared / "champion-trained" / "proj"
    with FileLock(str(shared / "champion-trained.lock")):
        if not (trained.parent / "done").exists():
            with pytest.MonkeyPatch.context() as mp:
                mp.delenv("MLFLOW_TRACKING_URI", raising=False)
                mp.delenv("PREFECT_API_URL", raising=False)
                for name, value in SECRETS.items():  # test_security checks that none of them is written anywhere
                    mp.setenv(name, value)
                champion_project(trained)
            (trained.parent / "done").write_text("")
    if worker_id == "master":
        return trained
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        return copy_project(trained, tmp_path_factory.mktemp("champion") / "proj")
