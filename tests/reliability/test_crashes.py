"""SIGKILL at chosen points of training, evaluation, registration, ingest and data checkout.

Each victim is the real `textops` command in a fresh interpreter; a few lines run before it wrap one library
function so that the process SIGKILLs itself at an exact point (no sleeps, no races). Then: no MLflow run is
left RUNNING once the next command has run (it is KILLED), no half-registered model version exists, and the
rerun ends with the metrics of an uninterrupted run; data/ is never left half changed.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from helpers import (
    FAST,
    FLOW,
    digest,
    dvc,
    git,
    killed,
    make_project,
    registry_state,
    run_status,
    sampled_project,
    set_params,
    textops,
    two_sample_files,
    wait_for,
)
from helpers import textops_python as victim

pytestmark = pytest.mark.reliability

# on_step_end / on_save run in the Trainer's loop: wrap the MLflow callback the train stage installs.
KILL_IN_TRAINER = """
import textops.modeling.train as t
_orig = t.mlflow_logger
def _patched():
    cb = _orig()
    class Kill(type(cb)):
        def {hook}(self, args, state, control, **kwargs):
            if state.global_step == {step}:
                die()
    return Kill()
t.mlflow_logger = _patched
"""


def data_state(root: Path) -> dict[str, str]:
    """data/ and data.dvc (the DVC cache may keep objects of an interrupted ingest: they are harmless)."""
    return digest(root / "data", root / "data.dvc")


def metrics(root: Path) -> dict:
    train = json.loads((root / "metrics/train.json").read_text())
    evaluation = json.loads((root / "metrics/eval.json").read_text())
    keep = ("val_accuracy", "val_macro_f1", "val_loss", "global_step", "best_step")
    return {**{k: train[k] for k in keep}, **{k: evaluation[k] for k in ("accuracy", "macro_f1", "log_loss", "ece")}}


def fresh_outputs(root: Path) -> None:
    """Forget every training output and checkpoint (the next train starts from nothing)."""
    for path in ("artifacts/checkpoints", "artifacts/model", "artifacts/eval"):
        shutil.rmtree(root / path, ignore_errors=True)
    for path in ("metrics/train.json", "metrics/eval.json"):
        (root / path).unlink(missing_ok=True)


def last_run(root: Path) -> str:
    return json.loads((root / "artifacts/checkpoints/mlflow_run.json").read_text())["run_id"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A project with clean data, and the metrics of an uninterrupted train + evaluate on it."""
    with sampled_project(tmp_path_factory, "crash", FAST) as root:
        textops(root, "preprocess")
        textops(root, "validate")
        git(root, "add", "-A")
        git(root, "commit", "-q", "-m", "data")
        textops(root, "train")
        textops(root, "evaluate")
        reference = metrics(root)
        yield root, reference


@pytest.mark.parametrize(
    "hook, step, resumes_from",
    [pytest.param("on_step_end", 3, 0, marks=pytest.mark.extended), ("on_save", 50, 50)],
    ids=["during-first-epoch", "right-after-a-checkpoint"],
)
def test_kill_during_training_then_rerun_matches_uninterrupted(trained, hook, step, resumes_from):
    root, reference = trained
    fresh_outputs(root)
    proc = victim(root, KILL_IN_TRAINER.format(hook=hook, step=step), "train")
    assert killed(proc), "training ended before the kill point"
    killed_run = last_run(root)
    assert run_status(root, killed_run) == "RUNNING"  # a SIGKILLed process cannot end its run
    assert not (root / "artifacts/model/run.json").exists()
    assert registry_state(root)["versions"] == []

    out = textops(root, "train")
    assert run_status(root, killed_run) == "KILLED"
    assert "marked KILLED" in out.stderr
    train = json.loads((root / "metrics/train.json").read_text())
    assert train["resumed_from_step"] == resumes_from
    textops(root, "evaluate")
    assert metrics(root) == reference


@pytest.mark.extended
def test_kill_during_evaluation_then_rerun(trained):
    root, reference = trained
    fresh_outputs(root)
    textops(root, "train")
    run_id = json.loads((root / "artifacts/model/run.json").read_text())["run_id"]
    # Inside the reopened MLflow run, while evaluate logs its artifacts.
    proc = victim(root, "import mlflow\nmlflow.log_artifact = lambda *a, **k: die()", "evaluate")
    assert killed(proc)
    assert run_status(root, run_id) == "RUNNING"

    # Registering the half-evaluated run is refused; the run is marked KILLED; nothing is registered.
    refused = textops(root, "register", check=False)
    assert refused.returncode != 0 and "KILLED" in refused.stderr, refused.stderr
    assert run_status(root, run_id) == "KILLED"
    assert registry_state(root)["versions"] == []

    textops(root, "evaluate")
    assert run_status(root, run_id) == "FINISHED"
    assert metrics(root) == reference


def test_kill_during_register_leaves_no_half_registered_version(trained):
    root, _ = trained
    if not (root / "metrics/eval.json").exists():
        textops(root, "train")
        textops(root, "evaluate")
    before = registry_state(root)
    # After the version is created, before the report and the aliases.
    proc = victim(root, "from mlflow import MlflowClient\nMlflowClient.log_text = lambda *a, **k: die()", "register")
    assert killed(proc)
    after = registry_state(root)
    new = [v for v in after["versions"] if v not in before["versions"]]
    assert len(new) == 1 and new[0][2] in ("promoted", "rejected")  # created with its decision, in one call
    assert after["aliases"] == before["aliases"]

    textops(root, "register")
    final = registry_state(root)
    assert all(decision in ("promoted", "rejected") for _, _, decision in final["versions"])
    assert final["aliases"]["challenger"] == max((v for v, _, _ in final["versions"]), key=int)


def processes_in(root: Path) -> list[str]:
    """Command lines of the processes whose working directory is ROOT (what a textops run left behind)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and Path(proc / "cwd").resolve() == root.resolve():
                found.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            continue
    return found


def test_a_run_killed_while_training_wedges_nothing(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    root = make_project(tmp_path / "proj")
    set_params(root, FAST, FLOW, {"train": {"save_steps": 5}})
    textops(root, "sample")
    proc = victim(root, KILL_IN_TRAINER.format(hook="on_step_end", step=3), "run")
    assert killed(proc), "the run ended before the kill point"
    # The temporary Prefect server does not outlive the run that started it.
    wait_for(lambda: not processes_in(root), 30, "the run's processes to go: " + " | ".join(processes_in(root)))

    # The next run is not stuck behind the dead run's training slot: it takes the slot back and says so.
    out = textops(root, "run", timeout=600)
    said = out.stdout + out.stderr
    assert "released the training slot held by process" in said and "which died" in said, said
    assert "now the champion" in out.stdout


# --------------------------------------------------------------------------------------------------
# data commands


@pytest.fixture
def data_project(tmp_path, monkeypatch):
    """A project with one committed data version and a second file ready to ingest."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    root = two_sample_files(tmp_path)
    textops(root, "ingest", str(tmp_path / "v1.csv"), "--commit")
    return root


INGEST_KILL_POINTS = {
    # Half of a batch written to the staging file, then killed.
    "while-writing-a-batch": """
import textops.lifecycle.ingest as i
def _write(root, rel, content):
    from textops.data.recovery import staging_dir
    (staging_dir(root) / "batch-partial").write_bytes(content[: len(content) // 2])
    die()
i.write_batch = _write
""",
    # The batches are in data/raw, `dvc add` has not run.
    "before-dvc-add": "import textops.lifecycle.ingest as i\ni.track_raw = lambda *a, **k: die()",
    # `dvc add` done (data.dvc changed, cache written), the git commit not.
    "after-dvc-add": """
import textops.adapters.dvc as s
_repo_of = s.dvc_repo
def _repo(root):
    repo = _repo_of(root)
    real = repo.add
    def add(*a, **k):
        real(*a, **k)
        die()
    repo.add = add
    return repo
s.dvc_repo = _repo
""",
}


@pytest.mark.parametrize(
    "point",
    [p if p == "after-dvc-add" else pytest.param(p, marks=pytest.mark.extended) for p in sorted(INGEST_KILL_POINTS)],
)
def test_kill_during_ingest_is_repaired_by_the_next_command(data_project, point):
    root = data_project
    before = data_state(root)
    pointer = (root / "data.dvc").read_text()
    proc = victim(root, INGEST_KILL_POINTS[point], "ingest", str(root.parent / "v2.csv"), "--commit")
    assert killed(proc)

    nxt = textops(root, "preprocess")  # any data command repairs first, and says so
    assert "interrupted" in nxt.stderr, nxt.stderr
    assert data_state(root) == before
    assert (root / "data.dvc").read_text() == pointer
    assert git(root, "status", "--porcelain", "data.dvc") == ""
    assert not list((root / ".textops/staging").glob("*"))
    status = dvc(root, "status", "data.dvc")
    assert "up to date" in status.stdout, status.stdout + status.stderr

    # And the ingest works once it is not killed.
    assert "ingested" in textops(root, "ingest", str(root.parent / "v2.csv"), "--commit").stdout


@pytest.mark.extended
def test_kill_during_data_checkout_is_repaired_by_the_next_command(data_project):
    root = data_project
    assert dvc(root, "repro", "preprocess").returncode == 0
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "v1 clean")
    v1 = git(root, "rev-parse", "HEAD").strip()
    textops(root, "ingest", str(root.parent / "v2.csv"), "--commit")
    # textops' own preprocess, as the repair below runs it: it also records the data version's Croissant stage.
    textops(root, "preprocess")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "v2 clean")
    before = {**data_state(root), **{p: (root / p).read_text() for p in ("data.dvc", "dvc.lock")}}

    # Killed after git has switched the pointer files, while DVC switches the data.
    code = "from dvc.repo import Repo\nRepo.checkout = lambda *a, **k: die()"
    assert killed(victim(root, code, "data", "checkout", v1))
    assert (root / "data.dvc").read_text() != before["data.dvc"]  # half switched

    repaired = textops(root, "preprocess")
    assert "interrupted" in repaired.stderr
    assert {**data_state(root), **{p: (root / p).read_text() for p in ("data.dvc", "dvc.lock")}} == before

    textops(root, "data", "checkout", v1)
    assert (root / "data.dvc").read_text() == git(root, "show", f"{v1}:data.dvc")
