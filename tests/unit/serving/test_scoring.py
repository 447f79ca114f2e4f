"""MLflow's scoring protocol as `textops serve` reads it (`textops.serving.scoring`): the formats, the 4xx for malformed
requests, and the limits (413)."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest

from textops.serving.scoring import BadRequest, Limits, read_texts

TEXTS = ["a good film", "a bad one", "这部电影很好看"]
JSON = "application/json"


def js(body) -> bytes:
    return json.dumps(body).encode()


def parquet(frame: pd.DataFrame) -> bytes:
    out = io.BytesIO()
    frame.to_parquet(out)
    return out.getvalue()


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (js({"inputs": TEXTS}), JSON),
        (js({"instances": TEXTS}), JSON),
        (js({"inputs": {"text": TEXTS}}), JSON),
        (js({"instances": [{"text": t} for t in TEXTS]}), JSON),
        (js({"inputs": [{"text": t} for t in TEXTS]}), JSON),
        (js({"dataframe_split": {"columns": ["text"], "data": [[t] for t in TEXTS]}}), JSON),
        (js({"dataframe_records": [{"text": t, "id": i} for i, t in enumerate(TEXTS)]}), JSON),
        (js({"inputs": TEXTS, "params": {"ignored": 1}}), "application/json; charset=utf-8"),
        (pd.DataFrame({"text": TEXTS}).to_csv(index=False).encode(), "text/csv"),
        (parquet(pd.DataFrame({"text": TEXTS})), "application/vnd.apache.parquet"),
    ],
)
def test_every_format_of_mlflows_protocol_gives_the_texts_in_order(body: bytes, content_type: str):
    assert read_texts(body, content_type) == TEXTS


def test_a_bare_string_is_one_text():
    assert read_texts(js({"inputs": "one text"}), JSON) == ["one text"]


@pytest.mark.parametrize(
    ("body", "content_type", "status", "says"),
    [
        (b"{not json", JSON, 400, "not valid JSON"),
        (b"\xff\xfe", JSON, 400, "not UTF-8"),
        (b"[" * 100_000 + b"]" * 100_000, JSON, 400, "nested too deeply"),
        (js([1, 2]), JSON, 400, "JSON object"),
        (js({"texts": TEXTS}), JSON, 400, "exactly one of"),
        (js({"inputs": TEXTS, "instances": TEXTS}), JSON, 400, "exactly one of"),
        (js({"inputs": [1, 2]}), JSON, 400, "list of strings"),
        (js({"inputs": ["fine", None]}), JSON, 400, "list of strings"),
        (js({"inputs": []}), JSON, 400, "no texts"),
        (js({"inputs": [["nested"]]}), JSON, 400, "list of strings"),
        (b'{"inputs": ["fine", "half a pair \\ud800 here"]}', JSON, 400, "text(s) [1] hold a lone surrogate"),
        (js({"inputs": {"sentence": TEXTS}}), JSON, 400, "'text'"),
        (js({"dataframe_records": [{"sentence": "no text column"}]}), JSON, 400, "'text' column"),
        (js({"dataframe_split": {"columns": ["text"], "data": [[3.5]]}}), JSON, 400, "must be a string"),
        (js({"dataframe_split": {"columns": ["text"], "data": [[[1, [2]]]]}}), JSON, 400, ""),
        (b"text,id\nfine,1\n,2\n", "text/csv", 400, "must be a string"),
        (b"", "text/csv", 400, ""),
        (b"PAR1garbage", "application/vnd.apache.parquet", 400, ""),
        (js({"inputs": TEXTS}), None, 415, "Content-Type header is missing"),
        (js({"inputs": TEXTS}), "text/plain", 415, "content types"),
        (js({"inputs": TEXTS}), "application/json; charset=latin-1", 415, "UTF-8"),
        (js({"inputs": TEXTS}), "application/json; boundary=x", 415, "boundary"),
    ],
)
def test_malformed_requests_get_a_4xx_that_says_what_is_wrong(body, content_type, status, says):
    with pytest.raises(BadRequest) as err:
        read_texts(body, content_type)
    assert err.value.status == status and says in err.value.message
    answer = json.loads(err.value.body())
    assert answer["message"] == err.value.message and answer["error_code"]


def test_limits_answer_413_with_the_parameter_to_change():
    limits = Limits(max_body_bytes=2000, max_texts=3, max_chars_per_text=50)
    assert read_texts(js({"inputs": ["x" * 50] * 3}), JSON, limits) == ["x" * 50] * 3
    for body, says in [
        (js({"inputs": ["x"] * 4}), "serve.max_texts"),
        (js({"inputs": ["fine", "x" * 51]}), "serve.max_chars_per_text"),
        (js({"inputs": ["x" * 3000]}), "serve.max_body_bytes"),
    ]:
        with pytest.raises(BadRequest) as err:
            read_texts(body, JSON, limits)
        assert err.value.status == 413 and says in err.value.message
