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
