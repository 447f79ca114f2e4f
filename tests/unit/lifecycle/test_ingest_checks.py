"""The label check of an ingest says what is most likely wrong, and never advises what would make wrong classes."""

from __future__ import annotations

import pandas as pd
import pytest

from textops.core.config import Params
from textops.core.errors import DataError
from textops.lifecycle.ingest_checks import check_files


def files(*labels: str) -> list[tuple[str, pd.DataFrame]]:
    return [("new.csv", pd.DataFrame({"text": [f"text {i}" for i in range(len(labels))], "label": list(labels)}))]


def data(*labels: str) -> pd.DataFrame:
    return pd.DataFrame({"text": [f"old {i}" for i in range(len(labels))], "label": list(labels)})


def test_labels_of_another_kind_are_named_as_such_without_advising_new_classes():
    with pytest.raises(DataError, match="are numbers and share none") as refused:
        check_files(files("0", "1"), data("negative", "positive"), Params(), False, False)
    assert "--allow-new-labels would make every one of them a class of its own" in str(refused.value)


def test_a_typo_is_a_typo_and_a_new_class_goes_in_when_asked():
    with pytest.raises(DataError, match="A typo\\?.*--allow-new-labels"):
        check_files(files("positve", "negative"), data("negative", "positive"), Params(), False, False)
    check_files(files("neutral", "negative"), data("negative", "positive"), Params(), True, False)
    check_files(files("2", "0"), data("0", "1"), Params(), True, False)
