"""A `group` column (data.group_column) carried from an ingested file through the raw batches into the cleaned
splits, for the evaluation's slices; a file without one gives the very batch it always gave."""

from __future__ import annotations

import hashlib

import pandas as pd

from textops.core.artifacts import read_raw
from textops.core.config import Params
from textops.data.landing import batch_bytes
from textops.data.preprocess import clean_and_split
from textops.data.readers import read_labelled_file

# The batch of these two rows as every textops before group columns wrote it: its hash names the data version.
OLD_BATCH_SHA256 = hashlib.sha256(
    b'{"text":"good film","label":"pos"}\n{"text":"bad film","label":"neg"}\n'
).hexdigest()


def groups(values) -> list[str | None]:
    """VALUES with every missing value as None (pandas may hold them as NaN)."""
    return [v if isinstance(v, str) else None for v in values]


def test_a_file_without_a_group_column_gives_the_batch_it_always_gave(tmp_path):
    path = tmp_path / "rows.csv"
    path.write_text("text,label,notes\ngood film,pos,x\nbad film,neg,y\n", encoding="utf-8")
    frame = read_labelled_file(path, "text", "label", 10, group_column="group")
    assert list(frame.columns) == ["text", "label"]  # other columns are still dropped
    assert hashlib.sha256(batch_bytes(frame)).hexdigest() == OLD_BATCH_SHA256


def test_the_group_column_is_kept_as_strings_and_written_only_where_a_row_has_one(tmp_path):
    path = tmp_path / "rows.csv"
    path.write_text("text,label,source\ngood film,pos,web\nbad film,neg,\nok film,pos,3\n", encoding="utf-8")
    frame = read_labelled_file(path, "text", "label", 10, group_column="source")
    assert frame["group"].tolist() == ["web", None, "3"]
    assert frame.attrs["columns"] == {"text": "text", "label": "label", "group": "source"}
    lines = batch_bytes(frame).decode().splitlines()
    assert lines == [
        '{"text":"good film","label":"pos","group":"web"}',
        '{"text":"bad film","label":"neg"}',
        '{"text":"ok film","label":"pos","group":"3"}',
    ]
    off = read_labelled_file(path, "text", "label", 10, group_column=None)  # data.group_column: null
    assert "group" not in off.columns


def test_groups_travel_through_the_raw_batches_into_the_cleaned_splits(tmp_path):
    raw = tmp_path / "data" / "raw"
    raw.mkdir(parents=True)
    rows = pd.DataFrame(
        {
            "text": [f"text number {i} about something" for i in range(300)],
            "label": ["pos", "neg"] * 150,
            "group": [None if i % 7 == 0 else f"g{i % 3}" for i in range(300)],
        }
    )
    (raw / "batch-a.jsonl").write_bytes(batch_bytes(rows[:200]))
    (raw / "batch-b.jsonl").write_bytes(batch_bytes(rows[200:].drop(columns="group")))  # an old batch: no groups
    params = Params()
    frame = read_raw(tmp_path, params)
    assert groups(frame["group"]) == groups(rows["group"][:200]) + [None] * 100
    splits, _, _ = clean_and_split(frame, params)
    for part in splits.values():
        assert list(part.columns) == ["text", "label", "group"]
        expected = dict(zip(rows["text"], groups(rows["group"][:200]) + [None] * 100, strict=True))
        assert groups(part["group"]) == [expected[t] for t in part["text"]]
    off = Params.model_validate({"data": {"group_column": None}})
    assert list(read_raw(tmp_path, off).columns) == ["text", "label"]


def test_without_any_group_the_splits_are_as_before(tmp_path):
    raw = tmp_path / "data" / "raw"
    raw.mkdir(parents=True)
    rows = pd.DataFrame({"text": [f"text number {i} here" for i in range(200)], "label": ["pos", "neg"] * 100})
    (raw / "batch-a.jsonl").write_bytes(batch_bytes(rows))
    frame = read_raw(tmp_path, Params())
    assert list(frame.columns) == ["text", "label"]
    splits, _, _ = clean_and_split(frame, Params())
    assert all(list(part.columns) == ["text", "label"] for part in splits.values())
