"""Serving: the real `mlflow models serve` of the champion on a free port, restarts after promote/rollback,
bad payloads, and batch `textops predict` of files."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import (
    FAST,
    TINY,
    WEAK,
    active_store,
    free_port,
    merge,
    mlflow_client,
    prepare_data,
    sampled_project,
    serving,
    textops,
    train_and_register,
)

from textops.readers import read_texts

TEXTS = ["the movie was truly wonderful!", "the battery was awful.", "honestly, the staff was not friendly"]


def post_json(url: str, body, content_type: str = "application/json") -> tuple[int, dict | str]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(f"{url}/invocations", data=data, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        text = err.read().decode(errors="replace")
        try:
            return err.code, json.loads(text)
        except json.JSONDecodeError:
            return err.code, text


def test_serve_without_champion_is_a_clear_error(project: Path):
    proc = textops(project, "serve", "--port", str(free_port()), check=False, timeout=120)
    assert proc.returncode != 0
    assert "no champion" in proc.stderr and "Traceback" not in proc.stderr


@pytest.fixture(scope="module")
def served_project(tmp_path_factory: pytest.TempPathFactory):
    with sampled_project(tmp_path_factory, "serve", merge(FAST, TINY)) as root:
        prepare_data(root)
        train_and_register(root, WEAK)
        out = train_and_register(root)
        assert "v2 (challenger): PROMOTED" in out, out
        yield root


def version_probs(root: Path, version: str) -> np.ndarray:
    """In-process predictions of a registered version: what the server must return when it serves it."""
    import mlflow.pyfunc

    with active_store(root):
        model = mlflow.pyfunc.load_model(f"models:/{mlflow_client(root)[1]}/{version}")
    return model.predict(pd.DataFrame({"text": TEXTS}))[["prob_negative", "prob_positive"]].to_numpy()


def served_probs(url: str) -> np.ndarray:
    status, body = post_json(url, {"inputs": TEXTS})
    assert status == 200, body
    return np.array([[p["prob_negative"], p["prob_positive"]] for p in body["predictions"]])


@pytest.mark.slow
def test_server_follows_promotion_and_rollback_across_restarts(served_project: Path):
    root = served_project
    v1, v2 = version_probs(root, "1"), version_probs(root, "2")
    assert not np.allclose(v1, v2, atol=1e-3)  # the two versions are distinguishable
    with serving(root) as (url, _, _):
        served = served_probs(url)
    assert np.allclose(served, v2, atol=1e-5)
    textops(root, "model", "rollback")
    with serving(root) as (url, _, _):
        assert np.allclose(served_probs(url), v1, atol=1e-5)
    textops(root, "model", "promote", "2", "--reason", "back to the better model")
    with serving(root) as (url, _, _):
        assert np.allclose(served_probs(url), v2, atol=1e-5)


@pytest.mark.slow
def test_payload_formats_and_bad_payloads(served_project: Path):
    good = [
        {"inputs": TEXTS},
        {"dataframe_split": {"columns": ["text"], "data": [[t] for t in TEXTS]}},
        {"dataframe_records": [{"text": t} for t in TEXTS]},
    ]
    bad = [
        b"{not json",
        b"\xff\xfe",
        {"texts": TEXTS},  # wrong field
        {"inputs": [1, 2]},  # not strings
        {"inputs": ["fine", None]},
        {"inputs": []},  # empty list
        {"dataframe_records": [{"sentence": "no text column"}]},
        {"dataframe_split": {"columns": ["text"], "data": [[3.5]]}},
        {"inputs": [["nested"]]},
    ]
    with serving(served_project) as (url, _, _):
        expected = served_probs(url)
        for body in good:
            status, answer = post_json(url, body)
            assert status == 200, (body, answer)
            preds = answer["predictions"]
            assert len(preds) == len(TEXTS)
            assert all(p["label"] in ("negative", "positive") for p in preds)
            probs = np.array([[p["prob_negative"], p["prob_positive"]] for p in preds])
            assert np.allclose(probs.sum(axis=1), 1, atol=1e-5) and np.allclose(probs, expected, atol=1e-5)
        for body in bad:
            status, answer = post_json(url, body)
            assert 400 <= status < 500, (body, status, answer)
            assert isinstance(answer, dict) and answer.get("message"), answer
            assert post_json(url, {"inputs": TEXTS[:1]})[0] == 200  # and it keeps answering
        # longer than max_length: truncated, not an error; an empty string is scored
        status, answer = post_json(url, {"inputs": ["great " * 5000, ""]})
        assert status == 200, answer
        assert len(answer["predictions"]) == 2


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_predict_file_in_batches(served_project: Path, suffix: str):
    root = served_project
    frame = pd.DataFrame({"id": range(7), "text": [TEXTS[i % 3] for i in range(7)]})
    src = root.parent / f"in{suffix}"
    {".csv": lambda: frame.to_csv(src, index=False), ".jsonl": lambda: frame.to_json(src, orient="records", lines=True),
     ".parquet": lambda: frame.to_parquet(src)}[suffix]()
    out = root.parent / f"out{suffix}"
    proc = textops(root, "predict", str(src), "--output", str(out), "--batch-size", "3", "--model-version", "1")
    assert "7 rows" in proc.stdout
    result = read_texts(out)
    assert list(result["id"]) == list(range(7))
    assert set(result["pred"]) <= {"negative", "positive"}
    v1 = version_probs(root, "1")
    assert np.allclose(result[["prob_negative", "prob_positive"]].to_numpy()[:3], v1, atol=1e-5)


@pytest.mark.slow
def test_predict_errors_are_user_errors(served_project: Path):
    root = served_project
    missing = textops(root, "predict", "nope.csv", "--output", "x.csv", check=False)
    assert missing.returncode != 0 and "not found" in missing.stderr and "Traceback" not in missing.stderr
    (root.parent / "t.csv").write_text("text\nhello\n")
    unknown = textops(root, "predict", str(root.parent / "t.csv"), "--output", "x.csv", "--model-version", "42",
                      check=False)
    assert unknown.returncode != 0 and "cannot load" in unknown.stderr
