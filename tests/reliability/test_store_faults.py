"""The registry's own failures: a project that moved (MLflow keeps absolute artifact paths), and a champion whose
model files cannot be read. Neither may strand the user: the moved project works as it did, and a champion that
cannot be read stops the run with a message and the challenger waiting for a person, never replaced silently."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from helpers import FAST, FLOW, make_project, mlflow_client, registry_state, set_params, textops

pytestmark = pytest.mark.reliability


@pytest.fixture
def trained(tmp_path, monkeypatch):
    """A champion trained in this test's own project (FLOW params), for a test that runs it again unchanged; the
    others take a copy of the session's champion (`champion_copy`), seconds instead of a training run."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    root = make_project(tmp_path / "proj")
    set_params(root, FAST, FLOW)
    assert "now the champion" in textops(root, "run").stdout
    return root


@pytest.mark.extended
def test_a_moved_project_keeps_its_registry(champion_copy, tmp_path):
    trained = champion_copy
    set_params(trained, FLOW)  # the retrain below: one short epoch
    moved = tmp_path / "elsewhere" / "renamed"
    moved.parent.mkdir()
    shutil.move(str(trained), str(moved))
    (tmp_path / "texts.csv").write_text("text\nwhat a wonderful film\nthe battery was awful\n")
    out = textops(moved, "predict", str(tmp_path / "texts.csv"), "-o", str(tmp_path / "out.csv"))
    assert "2 rows scored" in out.stdout
    assert "the project moved" in out.stderr and str(moved) in out.stderr
    assert "1" in textops(moved, "model", "list").stdout
    # and training, registration and the data versions go on from the new place
    assert "registered" in textops(moved, "run", "--force").stdout
    assert len(registry_state(moved)["versions"]) == 2
    textops(moved, "data", "checkout", "--model", "1")


def test_a_copied_project_stays_itself(champion_copy, tmp_path):
    """`cp -a project copy` (the usual way to try something), then a run in the copy: its models go into the
    copy's own artifacts, never the original's, and the copy keeps working once the original is deleted."""
    from helpers import digest

    trained = champion_copy
    set_params(trained, FLOW)  # the retrain below: one short epoch

    copy = tmp_path / "copy"
    subprocess.run(["cp", "-a", str(trained), str(copy)], check=True)
    original = digest(trained / "mlruns")
    out = textops(copy, "run", "--force", "-S", "train.seed=7")
    assert "registered" in out.stdout and "copied from" in out.stderr and str(trained) in out.stderr, out.stderr
    assert digest(trained / "mlruns") == original  # nothing written into the original's store or artifacts
    client, name = mlflow_client(copy)
    for version in client.search_model_versions(f"name='{name}'"):
        where = client.get_model_version_download_uri(name, version.version)
        assert where.removeprefix("file://").startswith(str(copy)), (version.version, where)
    shutil.rmtree(trained)
    (tmp_path / "texts.csv").write_text("text\nwhat a wonderful film\n")
    scored = textops(copy, "predict", str(tmp_path / "texts.csv"), "-o", str(tmp_path / "out.csv"))
    assert "1 rows scored" in scored.stdout


def test_a_copy_without_its_artifacts_is_refused(champion_copy, tmp_path):
    trained = champion_copy
    copy = tmp_path / "bare-copy"
    shutil.copytree(trained, copy, symlinks=True, ignore=shutil.ignore_patterns("artifacts"))
    proc = textops(copy, "model", "list", check=False)
    assert proc.returncode != 0 and "copied from" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_a_champion_whose_files_cannot_be_read_is_not_replaced_silently(trained):
    """Unreadable is not absent (a network share down, a folder moved): the run fails saying so, the challenger is
    registered but not promoted, the champion stays; a person can promote the challenger by hand."""
    client, name = mlflow_client(trained)
    location = Path(client.get_model_version_download_uri(name, "1").removeprefix("file://"))
    aside = trained.parent / "v1-files-aside"
    shutil.move(location, aside)  # a share down: the files come back later
    texts, out = trained.parent / "t.csv", trained.parent / "o.csv"
    texts.write_text("text\nfine\n")
    scored = textops(trained, "predict", str(texts), "-o", str(out), check=False)
    assert scored.returncode == 1 and "cannot load" in scored.stderr and "Traceback" not in scored.stderr
    status = json.loads(textops(trained, "status", "--json").stdout)
    assert status["aliases"]["champion"]["version"] == "1" and status["aliases"]["champion"]["files_missing"], status
    run = textops(trained, "run", check=False)  # same data and params, yet not "nothing to retrain"
    assert run.returncode != 0 and "nothing to retrain" not in run.stdout, run.stdout
    said = run.stdout + run.stderr
    assert "champion v1 cannot be loaded" in said and "held for a person" in said, said
    assert "recorded test macro_f1" in said and "likely a bug" not in said and "Traceback" not in said
    state = registry_state(trained)
    assert state["aliases"]["champion"] == "1" and state["aliases"]["challenger"] == "2"
    shutil.move(aside, location)  # the files are back: `textops register`, as the message says, decides again
    again = textops(trained, "register")
    assert "v2 (challenger, its run's version decided again)" in again.stdout, again.stdout
    assert [v[0] for v in registry_state(trained)["versions"]] == ["1", "2"]  # never a second version of one run
    assert "now the champion" in textops(trained, "model", "promote", "2", "--reason", "v1's files are lost").stdout
    assert registry_state(trained)["aliases"]["champion"] == "2"
