"""The no-op retrain's quick check (`registry/noop.py`): it reads the SQLite store directly, answers like MLflow's own
check when the champion is unchanged, imports none of the heavy libraries, and says "not sure" otherwise."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import mlflow_client, textops

from textops.core.config import load_params
from textops.registry.noop import quick_nothing_to_retrain

HEAVY = ("mlflow", "prefect", "torch", "dvc", "transformers", "pandas", "sklearn")


def test_the_no_op_run_imports_nothing_heavy_and_answers_like_mlflow(champion_template: Path, monkeypatch):
    monkeypatch.chdir(champion_template)
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "textops", "run"],
        cwd=champion_template,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "nothing to retrain: champion v1" in proc.stdout
    imported = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in proc.stderr.splitlines() if "|" in line}
    assert not imported & set(HEAVY), imported & set(HEAVY)

    from textops.registry.noop import nothing_to_retrain

    params = load_params(champion_template / "params.yaml")
    assert quick_nothing_to_retrain(champion_template, params) == nothing_to_retrain(champion_template, params)


@pytest.mark.parametrize("override", ["train.seed=7", "data.lowercase=true", "model.max_length=48"])
def test_changed_training_params_are_not_a_no_op(champion_template: Path, override: str):
    params = load_params(champion_template / "params.yaml", (override,))
    assert quick_nothing_to_retrain(champion_template, params) is None


def test_params_outside_training_are_still_a_no_op(champion_template: Path):
    params = load_params(champion_template / "params.yaml", ("promotion.min_delta=0.5", "serve.port=6000"))
    assert quick_nothing_to_retrain(champion_template, params).startswith("nothing to retrain")


def test_another_store_is_for_mlflow_to_judge(champion_template: Path, monkeypatch):
    params = load_params(champion_template / "params.yaml")
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", "http://127.0.0.1:9/")
    assert quick_nothing_to_retrain(champion_template, params) is None
    monkeypatch.delenv("MLFLOW_REGISTRY_URI")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{champion_template.parent / 'other.db'}")
    assert quick_nothing_to_retrain(champion_template, params) is None


@pytest.mark.slow
def test_missing_model_files_or_edited_data_are_not_a_no_op(champion_copy: Path):
    root = champion_copy
    params = load_params(root / "params.yaml")
    assert quick_nothing_to_retrain(root, params)
    batch = next((root / "data" / "raw").rglob("*.*"))
    saved = batch.read_bytes()
    batch.write_bytes(saved + b"\n")  # a hand edit: data.dvc no longer names what is there
    assert quick_nothing_to_retrain(root, params) is None
    edited = textops(root, "run", check=False)
    assert edited.returncode != 0 and "changed outside `textops ingest`" in edited.stderr
    batch.write_bytes(saved)
    assert quick_nothing_to_retrain(root, params)

    client, name = mlflow_client(root)
    shutil.rmtree(Path(client.get_model_version_download_uri(name, "1").removeprefix("file://")))
    assert quick_nothing_to_retrain(root, params) is None
