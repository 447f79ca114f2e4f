"""The data gate with real Great Expectations on small frames: a passing case and each kind of failure."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from helpers import textops

from textops.core.config import Params
from textops.core.errors import StateError, ValidationFailed
from textops.data.validate import validate, validate_raw

LABELS = ["negative", "positive"]
# Small bounds so that small frames pass: train needs 20 rows and 5 per class, val/test 2 rows.
PARAMS = Params.model_validate(
    {"validate": {"min_rows": 20, "min_rows_per_class": 5, "max_class_ratio": 3.0}, "data": {"max_chars": 200}}
)


def split_frame(prefix: str, counts: dict[int, int]) -> pd.DataFrame:
    rows = [(f"{prefix} text number {i} of class {label}", label) for label, n in counts.items() for i in range(n)]
    return pd.DataFrame({"text": [r[0] for r in rows], "label": pd.Series([r[1] for r in rows], dtype="int64")})


def good_splits() -> dict[str, pd.DataFrame]:
    return {
        "train": split_frame("train", {0: 12, 1: 14}),
        "val": split_frame("val", {0: 2, 1: 2}),
        "test": split_frame("test", {0: 2, 1: 3}),
    }


def write_clean(root: Path, splits: dict[str, pd.DataFrame], labels: list[str] = LABELS) -> Path:
    clean = root / PARAMS.data.clean_dir
    clean.mkdir(parents=True, exist_ok=True)
    for name, frame in splits.items():
        frame.to_parquet(clean / f"{name}.parquet", index=False)
    (clean / "labels.json").write_text(json.dumps({"labels": labels}))
    return root


def failure(root: Path, splits: dict[str, pd.DataFrame]) -> str:
    write_clean(root, splits)
    with pytest.raises(ValidationFailed) as info:
        validate(root, PARAMS)
    metrics = json.loads((root / "metrics/validate.json").read_text())
    assert metrics["success"] is False and metrics["failed"] >= 1
    message = str(info.value)
    assert "reports/validation/index.html" in message
    return message


def test_clean_data_passes_and_writes_metrics_and_docs(tmp_path):
    write_clean(tmp_path, good_splits())
    summary = validate(tmp_path, PARAMS)
    assert summary["success"] is True and summary["failed"] == 0
    assert summary["evaluated"] >= 30
    metrics = json.loads((tmp_path / "metrics/validate.json").read_text())
    assert metrics["success"] is True
    assert set(metrics["suites"]) == {
        "clean.train",
        "clean.val",
        "clean.test",
        "clean.train.classes",
        "clean.val.classes",
        "clean.test.classes",
        "clean.splits",
    }
    assert metrics["evaluated"] == summary["evaluated"]
    index = Path(summary["report"])
    assert index == tmp_path / "reports/validation/index.html" and index.exists()
    assert "clean.train" in index.read_text()
    # A second run: the metric and the report are byte-identical (the train stage depends on the metric).
    before = (tmp_path / "metrics/validate.json").read_bytes(), index.read_bytes()
    validate(tmp_path, PARAMS)
    assert ((tmp_path / "metrics/validate.json").read_bytes(), index.read_bytes()) == before


def test_the_report_shows_data_as_text_never_as_markup(tmp_path):
    splits = good_splits()
    splits["train"].loc[0, "text"] = "<script>document.title='owned'</script>" + "x" * 300  # too long: it fails
    write_clean(tmp_path, splits)
    with pytest.raises(ValidationFailed):
        validate(tmp_path, PARAMS)
    page = (tmp_path / "reports/validation/index.html").read_text()
    assert "<script>" not in page and "&lt;script&gt;document.title" in page
    assert "http://" not in page and "https://" not in page  # nothing loaded from the network


def test_unknown_label_id(tmp_path):
    splits = good_splits()
    splits["train"].loc[3, "label"] = 7
    message = failure(tmp_path, splits)
    assert "clean.train / column 'label': expect_column_values_to_be_in_set: 1 unexpected" in message
    assert "e.g. 7" in message


def test_empty_text(tmp_path):
    splits = good_splits()
    splits["val"].loc[0, "text"] = ""
    message = failure(tmp_path, splits)
    expected = "expect_column_value_lengths_to_be_between (min_value=2, max_value=200): 1 unexpected (25.00%), e.g. ''"
    assert f"clean.val / column 'text': {expected}" in message


def test_text_shared_between_splits(tmp_path):
    splits = good_splits()
    leaked = splits["train"].loc[5, "text"]
    splits["test"].loc[1, "text"] = leaked
    message = failure(tmp_path, splits)
    assert "clean.splits / column 'text': expect_column_values_to_be_unique: 2 unexpected" in message
    assert "'split': 'train'" in message and "'split': 'test'" in message
    assert leaked in message


def test_too_few_rows_for_a_class(tmp_path):
    splits = good_splits()
    splits["train"] = split_frame("train", {0: 4, 1: 12})  # 4 < 5 per class; ratio 3 is within the bound
    message = failure(tmp_path, splits)
    expected = "clean.train.classes / column 'count': expect_column_values_to_be_between (min_value=5): 1 unexpected"
    assert expected in message
    assert "{'count': 4, 'label': 'negative'}" in message
    assert "ratio_to_smallest" not in message


def test_class_missing_from_a_split(tmp_path):
    splits = good_splits()
    splits["val"] = split_frame("val", {1: 4})
    message = failure(tmp_path, splits)
    assert "clean.val.classes / column 'count': expect_column_values_to_be_between (min_value=1)" in message
    assert "'count': 0, 'label': 'negative'" in message


def test_class_imbalance(tmp_path):
    splits = good_splits()
    splits["train"] = split_frame("train", {0: 6, 1: 30})
    message = failure(tmp_path, splits)
    expected = "column 'ratio_to_smallest': expect_column_values_to_be_between (max_value=3): 1 unexpected"
    assert f"clean.train.classes / {expected}" in message
    assert "'label': 'positive'" in message
    assert "clean.train.classes / column 'count'" not in message  # 6 >= 5 per class


def test_too_few_rows_and_missing_column(tmp_path):
    splits = good_splits()
    splits["train"] = split_frame("train", {0: 5, 1: 5})
    splits["test"] = splits["test"].drop(columns=["label"])
    splits["val"] = splits["val"].drop(columns=["text"])
    message = failure(tmp_path, splits)
    assert "clean.val / column 'text': expect_column_to_exist: no such column" in message
    assert "clean.val / column 'text': expect_column_values_to_be_unique could not run (" in message
    assert "clean.train: expect_table_row_count_to_be_between (min_value=20): observed 10" in message
    assert "clean.test / column 'label': expect_column_to_exist: no such column" in message


def test_missing_clean_data_is_a_state_error(tmp_path):
    with pytest.raises(StateError, match="textops preprocess"):
        validate(tmp_path, PARAMS)


def test_bad_labels_file(tmp_path):
    write_clean(tmp_path, good_splits(), labels=["negative", "negative"])
    with pytest.raises(ValidationFailed, match="distinct names"):
        validate(tmp_path, PARAMS)


def test_raw_gate():
    good = pd.DataFrame({"text": ["a fine text", "another one"], "label": ["pos", "neg"]})
    summary = validate_raw([("good.csv", good)], PARAMS)
    assert summary["success"] is True and summary["evaluated"] >= 12

    bad = pd.DataFrame({"text": ["fine", "   ", "x" * 2001, 42], "label": ["pos", None, "neg", "pos"]}, dtype=object)
    with pytest.raises(ValidationFailed) as info:
        validate_raw([("landing/bad.csv", bad)], PARAMS)
    message = str(info.value)
    assert message.startswith("landing/bad.csv: raw data check failed, nothing was ingested")
    assert "landing/bad.csv / column 'text': expect_column_values_to_match_regex: 1 unexpected" in message
    assert "landing/bad.csv / column 'text': expect_column_value_lengths_to_be_between" in message  # 2001 > 200 * 10
    assert "landing/bad.csv / column 'label': expect_column_values_to_not_be_null: 1 unexpected" in message
    assert "column 'text_type': expect_column_values_to_be_in_set: 1 unexpected (25.00%), e.g. 'int'" in message

    with pytest.raises(ValidationFailed, match="nolabel.csv / column 'label': expect_column_to_exist"):
        validate_raw([("nolabel.csv", pd.DataFrame({"text": ["only text"]}))], PARAMS)


@pytest.mark.parametrize(
    "texts, labels, failed",
    [
        (['=HYPERLINK("http://x","y")', "fine"], ["pos", "neg"], "expect_column_values_to_not_match_regex"),
        (["-2+3+cmd|' /C calc'!A0", "fine"], ["pos", "neg"], "expect_column_values_to_not_match_regex"),
        (["@SUM(1+1)", "fine"], ["pos", "neg"], "expect_column_values_to_not_match_regex"),
        (["one", "two", "three"], ["pos", "pos", "pos"], "expect_column_unique_value_count_to_be_between"),
        (["same"] * 9 + ["other"], ["pos", "neg"] * 5, "expect_column_values_to_be_unique"),
    ],
    ids=["hyperlink", "dde", "at-sum", "one-class", "duplicates"],
)
def test_raw_gate_refuses_formulas_one_class_and_duplicates(texts, labels, failed):
    with pytest.raises(ValidationFailed, match=failed):
        validate_raw([("f.csv", pd.DataFrame({"text": texts, "label": labels}))], PARAMS)


def test_raw_gate_accepts_ordinary_punctuation_and_classes_across_files():
    ordinary = ["=) loved it", "-- not for me", "+1 would watch again", "@anna you were right", "a - b (c)"]
    frame = pd.DataFrame({"text": ordinary, "label": ["pos", "neg", "pos", "pos", "neg"]})
    assert validate_raw([("ok.csv", frame)], PARAMS)["success"] is True
    # Per-class exports ingested together: the class count is for the whole ingest.
    pos = pd.DataFrame({"text": ["good one", "great one"], "label": ["pos", "pos"]})
    neg = pd.DataFrame({"text": ["bad one", "awful one"], "label": ["neg", "neg"]})
    assert validate_raw([("pos.csv", pos), ("neg.csv", neg)], PARAMS)["success"] is True


def test_validate_command_in_a_project(project):
    textops(project, "sample")
    textops(project, "preprocess")
    ok = textops(project, "validate")
    assert "expectations passed" in ok.stdout and "reports/validation/index.html" in ok.stdout
    assert json.loads((project / "metrics/validate.json").read_text())["success"] is True

    test = pd.read_parquet(project / "artifacts/clean/test.parquet")
    train = pd.read_parquet(project / "artifacts/clean/train.parquet")
    test.loc[0, "text"] = train.loc[0, "text"]
    test.to_parquet(project / "artifacts/clean/test.parquet", index=False)
    bad = textops(project, "validate", check=False)
    assert bad.returncode != 0
    assert "clean.splits / column 'text': expect_column_values_to_be_unique" in bad.stdout + bad.stderr
    assert json.loads((project / "metrics/validate.json").read_text())["success"] is False
