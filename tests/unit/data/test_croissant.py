"""The data's Croissant description at its fixed place: deterministic, valid, readable by mlcroissant."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from textops.core.artifacts import SPLITS, clean_dir, croissant_path
from textops.core.config import Params
from textops.data.croissant import DEFAULT_NAME, write_current


def cleaned(root: Path, params: Params) -> None:
    folder = clean_dir(root, params)
    folder.mkdir(parents=True)
    for split in SPLITS:
        texts = [f"{split} text {n}" for n in range(4)] + ["NA", "=1+1"]
        pd.DataFrame({"text": texts, "label": [n % 2 for n in range(6)]}).to_parquet(folder / f"{split}.parquet")
    (folder / "labels.json").write_text(json.dumps({"labels": ["negative", "positive"]}))


def test_no_cleaned_splits_no_card(tmp_path):
    assert write_current(tmp_path, Params(), record=False) is None
    assert not croissant_path(tmp_path, Params()).exists()


def test_the_same_data_gives_the_same_bytes_wherever_the_project_is(tmp_path):
    import mlcroissant as mlc

    params = Params()
    first, second = tmp_path / "one", tmp_path / "elsewhere"
    written = []
    for root in (first, second):
        cleaned(root, params)
        path = write_current(root, params, record=False)
        assert path == croissant_path(root, params) and path.parent == clean_dir(root, params).parent
        written.append(path.read_bytes())
        assert write_current(root, params, record=False).read_bytes() == written[-1]  # again: unchanged
    assert written[0] == written[1]  # no time, no folder name
    card = json.loads(written[0])
    assert card["name"] == DEFAULT_NAME
    assert [f["contentUrl"] for f in card["distribution"]] == [f"clean/{s}.parquet" for s in SPLITS]

    dataset = mlc.Dataset(jsonld=str(croissant_path(first, params)))
    texts = [r["test/text"] for r in dataset.records("test")]
    assert [t.decode() if isinstance(t, bytes) else t for t in texts][-2:] == ["NA", "=1+1"]


def test_a_change_in_the_data_changes_the_card(tmp_path):
    params = Params()
    cleaned(tmp_path, params)
    before = write_current(tmp_path, params, record=False).read_bytes()
    pd.DataFrame({"text": ["another"], "label": [0]}).to_parquet(clean_dir(tmp_path, params) / "test.parquet")
    assert write_current(tmp_path, params, record=False).read_bytes() != before
