""" "Nothing to retrain" read off the project's SQLite store directly (`noop.quick_nothing_to_retrain`), against a
real MLflow store (conftest.py): it answers only when the champion was surely trained on data/'s version with these
params and its model files are in the project; anything else is "not sure" (None), and MLflow's check decides."""

from __future__ import annotations

from pathlib import Path

from textops.adapters import dvc
from textops.adapters.tracking import connect
from textops.core.config import Params
from textops.registry.noop import quick_nothing_to_retrain
from textops.registry.registry import move_champion

PARAMS = Params()


def crowned(root: Path, version: str) -> Path:
    """ROOT with VERSION the champion, its store pointing at ROOT's own artifacts (`connect` repairs the copy)."""
    session = connect(root, PARAMS, experiment=False)
    move_champion(session, version, "auto", "test")
    return root


def test_the_champion_of_this_data_and_these_params_is_nothing_to_retrain(registry_project):
    raw = dvc.raw_md5(registry_project, PARAMS)
    assert raw is not None
    assert quick_nothing_to_retrain(crowned(registry_project, "3"), PARAMS) == (
        f"nothing to retrain: champion v3 was trained on this data version (raw md5 {raw[:12]}) with these params"
    )


def test_another_data_version_or_changed_params_is_something_to_retrain(registry_project):
    assert quick_nothing_to_retrain(crowned(registry_project, "1"), PARAMS) is None  # v1: other data
    crowned(registry_project, "2")
    assert quick_nothing_to_retrain(registry_project, PARAMS) is not None
    changed = Params.model_validate({"train": {"learning_rate": 0.123}})
    assert quick_nothing_to_retrain(registry_project, changed) is None
    served = Params.model_validate({"serve": {"threads": 3}})
    assert quick_nothing_to_retrain(registry_project, served) is not None  # no model depends on serve


def test_an_edited_data_folder_or_missing_model_files_is_not_sure(registry_project):
    crowned(registry_project, "3")
    reviews = registry_project / "data" / "raw" / "reviews.csv"
    original = reviews.read_text()
    reviews.write_text(original + "an edit by hand,positive\n")  # data.dvc no longer describes data/
    assert quick_nothing_to_retrain(registry_project, PARAMS) is None
    reviews.write_text(original)
    assert quick_nothing_to_retrain(registry_project, PARAMS) is not None

    session = connect(registry_project, PARAMS, experiment=False)
    location = session.client.get_model_version_download_uri(session.model_name, "3")
    (Path(location.removeprefix("file://")) / "MLmodel").unlink()  # a champion that cannot load is replaced
    assert quick_nothing_to_retrain(registry_project, PARAMS) is None


def test_no_champion_or_a_registry_elsewhere_is_not_sure(registry_project, monkeypatch):
    connect(registry_project, PARAMS, experiment=False)
    assert quick_nothing_to_retrain(registry_project, PARAMS) is None  # versions, but no champion
    crowned(registry_project, "3")
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", "sqlite:////elsewhere/mlflow.db")
    assert quick_nothing_to_retrain(registry_project, PARAMS) is None
    monkeypatch.delenv("MLFLOW_REGISTRY_URI")
    assert quick_nothing_to_retrain(registry_project, PARAMS) is not None
