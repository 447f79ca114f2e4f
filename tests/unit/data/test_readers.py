"""Reading labelled files and files of texts: formats, encodings, labels, and the errors a person can fix."""

from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd
import pytest

from textops.core.errors import DataError
from textops.data.readers import line_endings, read_labelled_file
from textops.data.texts import read_texts


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


def test_a_json_lines_row_nested_thousands_deep_is_a_data_error_naming_the_depth(tmp_path):
    deep = tmp_path / "deep.jsonl"
    deep.write_text('{"text": "fine", "label": "a"}\n{"text": ' + "[" * 10_000 + "]" * 10_000 + ', "label": "b"}\n')
    with pytest.raises(DataError, match=r"deep.jsonl: line 2: the JSON nests 10,001 levels deep"):
        read_labelled_file(deep, "text", "label", 1)


def test_read_texts_errors(tmp_path: Path):
    from textops.core.errors import DataError

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


NA_LIKE = ["NA", "null", "N/A", "nan", "None", "#N/A"]


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl"])
def test_na_like_texts_are_texts_in_both_readers(tmp_path, fmt):
    frame = pd.DataFrame({"text": NA_LIKE, "label": ["pos", "neg"] * 3})
    path = tmp_path / f"in.{fmt}"
    if fmt == "jsonl":
        frame.to_json(path, orient="records", lines=True)
    else:
        path.write_text(frame.to_csv(sep="," if fmt == "csv" else "\t", index=False))
    assert read_labelled_file(path, "text", "label", 1)["text"].tolist() == NA_LIKE
    assert read_texts(path)["text"].tolist() == NA_LIKE


def test_read_texts_shares_the_labelled_reader_checks(tmp_path):
    (tmp_path / "a.json").write_text('{"text": "one"}\n{"text": 2}\n')  # .json: JSON Lines, values as written
    assert read_texts(tmp_path / "a.json")["text"].tolist() == ["one", 2]
    (tmp_path / "b.csv.gz").write_bytes(gzip.compress(b"id,text\n007,hello\n"))
    assert read_texts(tmp_path / "b.csv.gz").to_dict("list") == {"id": ["007"], "text": ["hello"]}
    (tmp_path / "c.csv").write_bytes("text\nhello\n".encode("utf-16"))
    with pytest.raises(DataError, match="c.csv: encoded as UTF-16"):
        read_texts(tmp_path / "c.csv")
    (tmp_path / "d.csv").write_bytes(b"text\ncaf\xe9\n")
    with pytest.raises(DataError, match="d.csv: not valid UTF-8"):
        read_texts(tmp_path / "d.csv")


def test_looks_like_data():
    from textops.data.columns import looks_like_data

    def frame(columns, *rows):
        return pd.DataFrame(list(rows), columns=columns, dtype=object)

    assert looks_like_data(frame(["great movie", "1"], ["awful film", "0"]))  # a number
    assert looks_like_data(frame(["fine", "pos"], ["dull", "neg"], ["nice", "pos"]))  # a value of its column
    assert looks_like_data(frame(["x" * 41, "lbl"], ["y", "z"]))  # long
    assert looks_like_data(frame(["one two three four", "lbl"], ["y", "z"]))  # many words
    assert not looks_like_data(frame(["review", "stars"], ["fine film", "5"]))
    assert not looks_like_data(frame(["text", "label"], ["fine film", "pos"]))


ROWS = [("great movie, truly great", "1"), ("awful film", "0"), ("not bad at all", "1"), ("boring", "0")]
HEADERLESS = "".join(f'"{text}",{label}\n' for text, label in ROWS)


def test_a_headerless_file_is_named_as_such(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text(HEADERLESS)
    with pytest.raises(DataError, match=r"first row \(great movie, truly great, 1\) looks like data") as err:
        read_labelled_file(path, "text", "label", 1)
    assert str(err.value).startswith(f"{path}: ") and "--no-header" in str(err.value)
    assert "`text,label`" in str(err.value)
    with pytest.raises(DataError, match="looks like data.*--no-header"):
        read_texts(path)


def test_a_header_naming_other_columns_is_still_missing_columns(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("review,stars\nfine film,5\ndull film,1\n")
    with pytest.raises(DataError, match=r"missing column\(s\) text, label \(found: review, stars\)") as err:
        read_labelled_file(path, "text", "label", 1)
    assert "--no-header" not in str(err.value)


@pytest.mark.parametrize("order", ["text,label", "label,text"])
def test_headerless_columns_chosen_from_the_values(tmp_path, order):
    rows = [f'"{t}",{y}' if order == "text,label" else f'{y},"{t}"' for t, y in ROWS]
    path = tmp_path / "a.csv"
    path.write_text("\n".join(rows) + "\n")
    frame = read_labelled_file(path, "text", "label", 1, header=False)
    assert frame["text"].tolist() == [t for t, _ in ROWS] and frame["label"].tolist() == [y for _, y in ROWS]
    text, label = ("0", "1") if order == "text,label" else ("1", "0")
    assert frame.attrs["columns"] == {"text": text, "label": label}
    assert read_texts(path, header=False).attrs["columns"] == {"text": text}


def test_headerless_columns_by_position(tmp_path):
    path = tmp_path / "a.tsv"
    path.write_text("1\tshort\ta much longer text than the other one\n0\tok\tanother long text, longer\n")
    frame = read_labelled_file(path, "1", "0", 1, header=False)  # not the longest: as asked
    assert frame["text"].tolist() == ["short", "ok"] and frame["label"].tolist() == ["1", "0"]
    assert frame.attrs["columns"] == {"text": "1", "label": "0"}
    auto = read_labelled_file(path, "text", "label", 1, header=False)
    assert auto.attrs["columns"] == {"text": "2", "label": "0"}  # labels 0/1 and short/ok tie: the lower position
    texts = read_texts(path, "1", header=False)
    assert texts.columns.tolist() == ["0", "1", "2"] and texts.attrs["columns"] == {"text": "1"}
    with pytest.raises(DataError, match="--label-column 3: there is no column at that position"):
        read_labelled_file(path, "2", "3", 1, header=False)


def test_headerless_line_numbers_count_the_first_line(tmp_path):
    path = tmp_path / "a.csv"
    rows = "".join(f"text number {i},pos\n" for i in range(200))
    path.write_text(f'first text,neg\n"two\nlines",pos\n   ,neg\n{rows}')
    frame = read_labelled_file(path, "0", "1", 1, max_invalid_fraction=0.01, header=False)
    assert len(frame) == 202 and frame.attrs["dropped_lines"] == [4]
    assert frame["text"].iloc[0] == "first text"  # the first line is data


def test_the_header_flag_does_not_apply_to_named_columns(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text('{"text": "fine", "label": "pos"}\n{"text": "dull", "label": "neg"}\n')
    frame = read_labelled_file(path, "text", "label", 1, header=False)
    assert frame["text"].tolist() == ["fine", "dull"] and frame.attrs["columns"] == {"text": "text", "label": "label"}


def test_relabelled_rows_are_found_after_cleaning():
    from textops.lifecycle.ingest_checks import relabelled

    existing = pd.DataFrame({"text": ["The movie was great", "dull  plot", "fine"], "label": ["pos", "neg", "pos"]})
    new = pd.DataFrame(
        {
            "text": ["the movie was great", "The movie was great", "dull plot", "new text"],
            "label": ["neg", "pos", "pos", "neg"],
        }
    )
    clash = relabelled(existing, new, lowercase=False)
    assert clash.to_dict("records") == [{"text": "dull plot", "label": "pos", "was": "neg"}]  # spaces cleaned
    lower = relabelled(existing, new, lowercase=True)
    assert sorted(lower["text"]) == ["dull plot", "the movie was great"]
    assert relabelled(existing.iloc[:0], new, lowercase=False).empty
    unrelated = pd.DataFrame({"text": ["nothing in common"], "label": ["neg"]})
    assert relabelled(existing, unrelated, lowercase=False).empty  # no text known: no clash, no error


def test_labels_in_messages_are_cut():
    """An unknown-label error once printed a 6,000-character label whole."""
    from textops.lifecycle.ingest_checks import shown

    one = shown({"x" * 6000, "b"})
    assert len(one) < 100 and "..." in one and "'b'" in one
    many = shown({f"label{i}" for i in range(30)})
    assert "(30 in all)" in many and many.count("'label") == 10


def test_one_text_per_line_and_a_header_under_no_header_are_named(tmp_path):
    lines = tmp_path / "texts.txt"
    lines.write_text("NA\na fine film\na dull film\n")  # the first text happens to look like a missing value
    assert read_texts(lines)["text"].tolist() == ["NA", "a fine film", "a dull film"]  # .txt: a text per line
    one_column = tmp_path / "texts.csv"
    one_column.write_text("NA\na fine film\na dull film\n")
    with pytest.raises(DataError, match="pass --no-header or name the file .txt"):
        read_texts(one_column)
    assert read_texts(one_column, "0", header=False)["0"].tolist() == ["NA", "a fine film", "a dull film"]
    headed = tmp_path / "headed.csv"
    headed.write_text("text\na fine film\na dull film\n")
    with pytest.raises(DataError, match="its first row is 'text', a header"):
        read_texts(headed, header=False)
