"""Two of the same thing at once: pipeline runs (the Prefect concurrency limit), registrations and ingests (the
project's locks). The registry ends with consistent aliases and no duplicate promotion; data/ with every batch.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from helpers import FAST, dvc, git, make_project, registry_state, set_params, textops, wait_for

from textops.adapters.locks import STATE_DIR
from textops.runtime.training_slot import HOLDER_FILE

pytestmark = pytest.mark.reliability

EXE = str(Path(sys.executable).with_name("textops"))


def at_once(root: Path, *commands: list[str], timeout: float = 900) -> list[tuple[int, str]]:
    procs = [
        subprocess.Popen([EXE, *c], cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for c in commands
    ]
    return [(p.wait(timeout=timeout), p.communicate()[0]) for p in procs]


def consistent(state: dict) -> None:
    """Every version has a decision; the champion is the last history entry; no promotion is recorded twice."""
    assert all(decision in ("promoted", "rejected") for _, _, decision in state["versions"]), state
    versions = {v for v, _, _ in state["versions"]}
    if state["history"]:
        assert state["aliases"]["champion"] == state["history"][-1]["version"]
    assert set(state["aliases"].values()) <= versions
    promoted = [h["version"] for h in state["history"] if h["kind"] == "auto"]
    assert len(promoted) == len(set(promoted)), state["history"]


@pytest.fixture
def fresh(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    root = make_project(tmp_path / "proj")
    set_params(root, FAST)
    return root


def test_two_pipeline_runs_at_once_train_once(fresh):
    root = fresh
    textops(root, "sample")
    # The second run starts once the first holds the training slot, and the first holds it for tens of seconds
    # (12 epochs): started together on a loaded machine, the second could reach its no-op check only after the
    # first had registered, and never meet the slot.
    set_params(root, {**FAST, "train": {**FAST["train"], "epochs": 12}})
    first = subprocess.Popen([EXE, "run"], cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wait_for(
        lambda: (root / STATE_DIR / HOLDER_FILE).exists() or first.poll() is not None,
        300,
        "the first run to take the training slot",
        interval=0.2,
    )
    assert first.poll() is None, first.communicate()[0]
    second = subprocess.Popen([EXE, "run"], cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    results = [(p.wait(timeout=900), p.communicate()[0]) for p in (first, second)]
    assert [code for code, _ in results] == [0, 0], results
    outs = [out for _, out in results]
    # One trained and registered; the other waited for the training slot, then found nothing to retrain.
    assert sum("registered" in o for o in outs) == 1, outs
    assert sum("nothing to retrain" in o for o in outs) == 1, outs
    # The one that waited said what for, and who held it.
    assert sum("waiting for the training slot 'textops-training', held by" in o for o in outs) == 1, outs
    state = registry_state(root)
    assert len(state["versions"]) == 1 and state["aliases"]["champion"] == "1"
    consistent(state)


@pytest.mark.extended
def test_two_registrations_at_once_promote_at_most_once(fresh):
    root = fresh
    textops(root, "sample")
    for stage in ("preprocess", "validate", "train", "evaluate"):
        textops(root, stage)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "trained")
    results = at_once(root, ["register"], ["register"])
    # The same run twice: one version. The first (under the registry lock) becomes champion; the second finds its
    # run registered as the champion and says there is nothing to register (a run is one model, never two versions).
    assert sorted(code for code, _ in results) == [0, 1], results
    outs = " ".join(out for _, out in results)
    assert outs.count("PROMOTED") == 1 and "registered already" in outs and "nothing to register" in outs, outs
    state = registry_state(root)
    assert len(state["versions"]) == 1 and len(state["history"]) == 1
    consistent(state)


@pytest.mark.extended
def test_two_ingests_at_once_both_land(fresh):
    root = fresh
    files = []
    for seed in (1, 2):
        set_params(root, {"sample": {"seed": seed, "rows": 300}})
        files.append(root.parent / f"s{seed}.csv")
        textops(root, "sample", "--no-ingest", "--output", str(files[-1]))
    results = at_once(root, ["ingest", str(files[0])], ["ingest", str(files[1])])
    assert [code for code, _ in results] == [0, 0], results
    assert len(list((root / "data" / "raw").glob("batch-*.jsonl"))) == 2
    status = dvc(root, "status", "data.dvc")
    assert "up to date" in status.stdout, status.stdout + status.stderr
