"""The preprocess stage's line: the same for `textops preprocess` and the pipeline's stage line."""

from textops.data.results import SHOWN_LABELS, PreprocessResult


def test_preprocess_result_describes_rows_splits_and_labels():
    stats = {"rows_in": 1200, "rows_out": 1150, "splits": {"train": 920, "val": 115, "test": 115}, "dropped": {}}
    result = PreprocessResult.from_dict({**stats, "labels": ["neg", "pos"]})
    assert result.describe() == "1,200 rows in, 1,150 out (train 920, val 115, test 115); labels: neg, pos"
    assert result.to_dict()["dropped"] == {}
    many = PreprocessResult(rows_out=5, splits={"train": 5}, labels=[f"c{i}" for i in range(SHOWN_LABELS + 3)])
    assert many.describe().startswith("5 rows (train 5); labels: c0, ") and many.describe().endswith(" and 3 more")
