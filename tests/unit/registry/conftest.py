"""A throwaway registry for the registry's tests: a project with its own SQLite MLflow store (in process, no server),
three registered versions whose runs carry the lineage tags the registry reads, and a raw data version in DVC's
layout (data.dvc, the `.dir` listing in the local cache). MLflow migrates a new store once per file, so the project
is built once per module and each test gets a copy (`registry_project`); the copy's store is repaired to point at
its own artifacts on its first `connect`, as a user's `cp -a` of a project is."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from helpers import dvc_cached

from textops.adapters.tracking import STORE_VARIABLES, Session, connect
from textops.core import lineage
from textops.core.config import Params

REVIEWS = "text,label\na good film,positive\na bad film,negative\n"
OTHER_DATA = "0" * 32 + ".dir"  # v1 was trained on another data version


def raw_version(root: Path) -> str:
    """data/raw/reviews.csv as the version data.dvc names (its listing in the cache); that version's md5."""
    raw = root / "data" / "raw"
    raw.mkdir(parents=True)
    (raw / "reviews.csv").write_text(REVIEWS)
    listing = [{"relpath": "raw/reviews.csv", "md5": dvc_cached(root, REVIEWS.encode())}]
    md5 = dvc_cached(root, json.dumps(listing).encode(), ".dir")
    (root / "data.dvc").write_text(f"outs:\n- md5: {md5}\n  nfiles: 1\n  path: data\n")
    return md5


def model_files(session: Session, run_id: str) -> str:
    """The run's model folder with an MLmodel file (what the registry checks is there); its file URI."""
    uri = session.client.get_run(run_id).info.artifact_uri
    folder = Path(uri.removeprefix("file://")) / "model"
    folder.mkdir(parents=True)
    (folder / "MLmodel").write_text("flavors: {}\n")
    return folder.as_uri()


@pytest.fixture(scope="module")
def registry_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project: versions 1-3 registered, no alias yet; v1 from other data, v2 and v3 from data/'s version."""
    root = tmp_path_factory.mktemp("registry") / "proj"
    root.mkdir()
    params = Params()
    with pytest.MonkeyPatch.context() as mp:
        for name in STORE_VARIABLES:
            mp.delenv(name, raising=False)
        raw = raw_version(root)
        session = connect(root, params)
        session.client.create_registered_model(session.model_name)
        for data in (OTHER_DATA, raw, raw):
            tags = {lineage.RAW_MD5: data, lineage.PARAMS_MD5: lineage.training_fingerprint(params)}
            run_id = session.client.create_run(session.experiment_id, tags=tags).info.run_id
            session.client.set_terminated(run_id)
            session.client.create_model_version(session.model_name, model_files(session, run_id), run_id=run_id)
    return root


@pytest.fixture
def registry_project(registry_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the module's registry project that the test may change."""
    for name in STORE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return Path(shutil.copytree(registry_template, tmp_path / "proj"))
