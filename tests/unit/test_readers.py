"""Reading labelled files and files of texts: formats, encodings, labels, and the errors a person can fix."""

from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd
import pytest

from textops.errors import DataError
from textops.readers import line_endings, read_labelled_file, read_texts


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl", "parquet", "csv.gz"])
def test_read_formats_with_non_latin_text(tmp_path, fmt):
    frame = pd.DataFrame(
        {"review": ["这部电影很好看", "Отличный фильм", "ひどい映画だった"], "topic": ["Sports", "World", "Sports"]}
    )
    path = tmp_path / f"in.{fmt}"
    if fmt == "csv":
        path.write_bytes(b"\xef\xbb\xbf" + frame.to_csv(index=False).encode())  # UTF-8 with BOM
    elif fmt == "tsv":
        frame.to_csv(path, sep="\t", index=False)
    elif fmt == "jsonl":
        frame.to_json(path, orient="records", lines=True, force_ascii=False)
    elif fmt == "parquet":
        frame.to_parquet(path)
    else:
        path.write_bytes(gzip.compress(frame.to_csv(index=False).encode()))
    out = read_labelled_file(path, "review", "topic", max_file_mb=1)
    assert out["text"].tolist() == frame["review"].tolist()
    assert out["label"].tolist() == ["Sports", "World", "Sports"]


def test_line_endings_outside_quoted_fields():
    assert line_endings("a,b\n1,2\n") == {"LF": 1}
    assert line_endings("a,b\r\n1,2\r\n") == {"CRLF": 2}
    # Excel: CRLF rows, LF inside a quoted cell: consistent
    assert line_endings('text,label\r\n"two\nlines",pos\r\n') == {"CRLF": 2}
    assert line_endings("a,b\r\n1,2\n3,4\r5,6\r\n") == {"CRLF": 2, "LF": 1, "CR": 1}
    assert line_endings('{"text": "x"}\r\n{"text": "y"}\n', quoted=False) == {"CRLF": 1, "LF": 1}


def test_integer_labels_normalised(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text('{"text": "good one", "label": 1}\n{"text": "bad one", "label": 0}\n')
    assert read_labelled_file(path, "text", "label", 1)["label"].tolist() == ["1", "0"]


def test_read_refuses_directory(tmp_path):
    with pytest.raises(DataError, match="not a regular file"):
        read_labelled_file(tmp_path, "text", "label", 1)


def test_read_texts_errors(tmp_path: Path):
    from textops.errors import DataError

    (tmp_path / "a.csv").write_text("sentence\nhello\n")
    with pytest.raises(DataError, match="no 'text' column"):
        read_texts(tmp_path / "a.csv")
    with pytest.raises(DataError, match="unsupported"):
        read_texts(tmp_path / "a.xlsx")
    with pytest.raises(DataError, match="not found"):
        read_texts(tmp_path / "missing.parquet")


def test_empty_rows_are_left_out_with_their_line_numbers(tmp_path):
    # a quoted text over two lines: the empty row after it is on line 4, not data row 2 + 1
    rows = "".join(f"text {i},pos\n" for i in range(200))
    path = tmp_path / "a.csv"
    path.write_text(f'text,label\n"two\nlines",pos\n   ,neg\nfine,\n{rows}')
    frame = read_labelled_file(path, "text", "label", 1, max_invalid_fraction=0.01)
    assert len(frame) == 201 and frame.attrs["dropped_lines"] == [4, 5]
    jsonl = tmp_path / "a.jsonl"
    jsonl.write_text('{"text": "a", "label": 1}\n\n{"text": "", "label": 0}\n' + '{"text": "b", "label": 0}\n' * 150)
    assert read_labelled_file(jsonl, "text", "label", 1, 0.01).attrs["dropped_lines"] == [3]


def test_too_many_empty_rows_refuse_the_file_naming_them(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("text,label\nfine,pos\n,neg\ngood,\nok,neg\n")
    with pytest.raises(DataError, match=r"2 of 4 rows have an empty text or label \(lines 3, 4\)") as err:
        read_labelled_file(path, "text", "label", 1, max_invalid_fraction=0.01)
    assert "null" not in str(err.value) and "nan" not in str(err.value)


@pytest.mark.parametrize(
    ("name", "content", "column", "message"),
    [
        ("a.csv", "text,label\nx,99999999999999999999999\ny,1\n", "label", "fit in 64 bits"),
        ("a.jsonl", '{"text": "x", "label": 1e300}\n{"text": "y", "label": 1.0}\n', "label", "whole numbers"),
        ("a.jsonl", '{"text": "x", "label": Infinity}\n', "label", "whole numbers"),
        ("a.csv", "text,label\nx,pos\n", "text", "two different columns"),
    ],
)
def test_labels_a_model_cannot_keep_are_refused(tmp_path, name, content, column, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(DataError, match=message):
        read_labelled_file(path, "text", column, 1)


def test_unicode_equivalent_labels_are_one_class(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("text,label\nx,cafe\u0301\ny,caf\u00e9\nz, caf\u00e9 \n", encoding="utf-8")
    assert read_labelled_file(path, "text", "label", 1)["label"].tolist() == ["caf\u00e9"] * 3
