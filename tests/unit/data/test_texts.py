"""The one rule for texts to score (textops.data.texts): what is a text, what is left out and counted, .txt files,
lone surrogates; and CSV outputs that a spreadsheet shows instead of running."""

from __future__ import annotations

import pandas as pd
import pytest

from textops.core.errors import DataError
from textops.data.readers import write_table
from textops.data.texts import read_texts


def test_missing_looking_texts_are_texts_and_blank_rows_are_left_out_and_counted(tmp_path):
    path = tmp_path / "na.csv"
    path.write_text('text\nNA\nnull\nN/A\nNone\n""\n   \n\nhello\n')
    frame = read_texts(path)
    assert frame["text"].tolist() == ["NA", "null", "N/A", "None", "hello"]
    assert frame.attrs["blank_rows"] == 3
    jsonl = tmp_path / "na.jsonl"
    jsonl.write_text('{"text": "NA"}\n{"text": null}\n\n{"text": " "}\n{"text": "None"}\n')
    frame = read_texts(jsonl)  # a blank line between JSON Lines is not a row; a null or blank text is
    assert frame["text"].tolist() == ["NA", "None"] and frame.attrs["blank_rows"] == 2


def test_a_txt_file_is_one_text_per_line(tmp_path):
    path = tmp_path / "texts.txt"
    path.write_bytes('\ufeffNA\r\nnull\r\n\r\n  \r\na, "quoted" text\twith a tab\r\n'.encode())
    frame = read_texts(path)
    assert frame["text"].tolist() == ["NA", "null", 'a, "quoted" text\twith a tab']
    assert frame.attrs == {"columns": {"text": "text"}, "blank_rows": 2}
    with pytest.raises(DataError, match="a .txt file is one text per line, with no columns: --text-column 'review'"):
        read_texts(path, "review")


def test_a_lone_surrogate_is_refused_naming_its_row(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "fine"}\n{"text": "half a pair \\ud800 here"}\n')
    with pytest.raises(DataError, match=r"bad.jsonl: line\(s\) \[2\] hold a lone surrogate"):
        read_texts(path)


def test_csv_outputs_neutralize_formula_texts_and_other_formats_keep_them(tmp_path):
    frame = pd.DataFrame({"text": ['=HYPERLINK("http://x")', "fine", "@SUM(A1)"], "prob_a": [0.1, 0.2, 0.3]})
    write_table(frame, tmp_path / "out.csv")
    assert pd.read_csv(tmp_path / "out.csv")["text"].tolist() == ['\'=HYPERLINK("http://x")', "fine", "'@SUM(A1)"]
    write_table(frame, tmp_path / "out.parquet")
    assert pd.read_parquet(tmp_path / "out.parquet")["text"].tolist() == frame["text"].tolist()
    assert frame["text"].iloc[0].startswith("=")  # the caller's frame is left as it was
