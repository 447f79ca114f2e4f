"""A few formula rows in a file are set aside with their reason, not the whole file refused; many are not."""

from __future__ import annotations

import pandas as pd

from textops.data.set_aside import set_aside_formulas


def reviews(rows: int, formulas: int) -> pd.DataFrame:
    texts = [f'=HYPERLINK("http://x/{i}")' for i in range(formulas)] + [f"a fine film {i}" for i in range(rows)]
    return pd.DataFrame({"text": texts, "label": "positive"})


def test_a_few_formula_rows_are_set_aside_beside_the_file_neutralised_with_their_reason(tmp_path):
    source = tmp_path / "feedback.csv"
    kept, path, count = set_aside_formulas(str(source), reviews(199, 1), max_fraction=0.01)
    assert count == 1 and len(kept) == 199 and not kept["text"].str.startswith("=").any()
    assert path == tmp_path / "feedback.csv.set-aside.csv"
    aside = pd.read_csv(path)
    assert aside["text"].tolist() == ['\'=HYPERLINK("http://x/0")'] and "formula" in aside["reason"][0]

    held = tmp_path / "landing" / "held"
    assert set_aside_formulas(str(source), reviews(199, 1), 0.01, held)[1] == held / "feedback.csv.set-aside.csv"


def test_many_formula_rows_leave_the_file_whole_for_the_raw_suite_to_refuse(tmp_path):
    frame = reviews(90, 10)
    kept, path, count = set_aside_formulas(str(tmp_path / "x.csv"), frame, max_fraction=0.01)
    assert kept is frame and path is None and count == 0
    assert list(tmp_path.iterdir()) == []
