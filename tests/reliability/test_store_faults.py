"""The registry's own failures: a project that moved (MLflow keeps absolute artifact paths), and a champion whose
model files are gone. Neither may strand the user: the moved project works as it did, and a broken champion is
replaced by the next run instead of wedging every registration."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from helpers import FAST, FLOW, make_project, mlflow_client, registry_state, set_params, textops

pytestmark = pytest.mark.reliability


@pytest.fixture
def trained(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    root = make_project(tmp_path / "proj")
    set_params(root, FAST, FLOW)
    assert "now the champion" in textops(root, "run").stdout
    return root


@pytest.mark.extended
def test_a_moved_project_keeps_its_registry(trained, tmp_path):
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


def test_a_champion_without_its_model_files_is_replaced_by_the_next_run(trained):
    client, name = mlflow_client(trained)
    location = client.get_model_version_download_uri(name, "1")
    shutil.rmtree(Path(location.removeprefix("file://")))
    texts, out = trained.parent / "t.csv", trained.parent / "o.csv"
    texts.write_text("text\nfine\n")
    scored = textops(trained, "predict", str(texts), "-o", str(out), check=False)
    assert scored.returncode == 1 and "cannot load" in scored.stderr and "Traceback" not in scored.stderr
    out = textops(trained, "run").stdout  # same data and params, yet not "nothing to retrain"
    assert "nothing to retrain" not in out
    assert "champion v1 cannot be loaded" in out and "now the champion" in out, out
    assert registry_state(trained)["aliases"]["champion"] == "2"
