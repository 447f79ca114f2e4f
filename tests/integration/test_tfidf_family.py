"""The tfidf model family end to end: `model.base: tfidf` runs (no Trainer), is served, hot-swapped with a
transformer version both ways (promote, then roll back), scored by `textops predict` (in process and on a local
Ray) and monitored (the embedding check skipped: no encoder)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd
import pytest
from helpers import FAST, make_project, post_raw, request, serving, set_params, textops, wait_for

pytestmark = pytest.mark.slow


def served_version(server, expected: str) -> dict:
    return wait_for(lambda: (v := server.version())["model_version"] == expected and v, 120, f"the swap to v{expected}")


def test_a_tfidf_champion_is_served_swapped_with_a_transformer_both_ways_predicted_and_monitored(tmp_path: Path):
    started = time.monotonic()
    root = make_project(tmp_path / "proj")
    set_params(root, FAST, {"model": {"base": "tfidf"}, "serve": {"poll_seconds": 1}, "monitor": {"min_rows": 20}})
    textops(root, "sample")
    out = textops(root, "run").stdout
    assert "tfidf model" in out and "now the champion" in out, out
    body = json.dumps({"inputs": ["a wonderful film", "an awful battery"]}).encode()
    with serving(root) as server:
        assert server.version()["runtime"] == "sklearn"
        status, answer = post_raw(server.url, body, {"Content-Type": "application/json"})
        predictions = json.loads(answer)["predictions"]
        assert status == 200 and len(predictions) == 2 and "label" in predictions[0], answer

        # tfidf -> transformer: a tiny version promoted by hand, followed by the server.
        textops(root, "run", "-S", "model.base=tiny")
        textops(root, "model", "promote", "2", "--reason", "the hot swap to a transformer")
        assert served_version(server, "2")["runtime"] in ("torch", "onnx", "onnx-int8")
        # transformer -> tfidf: the rollback restores v1, and the server swaps back.
        textops(root, "model", "rollback")
        assert served_version(server, "1")["runtime"] == "sklearn"
        status, again = post_raw(server.url, body, {"Content-Type": "application/json"})
        assert status == 200 and json.loads(again) == json.loads(answer)
        # Its explanations are the linear model's own: coefficient x TF-IDF value, summing exactly.
        status, _, explained = request(server.url, "POST", "/explain", body, {"Content-Type": "application/json"})
        assert status == 200, explained
        for e in json.loads(explained)["explanations"]:
            assert e["method"].startswith("linear") and e["delta"] == 0.0, e
            assert abs(sum(w["attribution"] for w in e["words"]) - (e["logit"] - e["baseline_logit"])) < 1e-6

    test = pd.read_parquet(root / "artifacts" / "clean" / "test.parquet")
    test[["text", "label"]].to_csv(root / "new.csv", index=False)
    textops(root, "predict", "new.csv", "-o", "scored.csv")
    scored = pd.read_csv(root / "scored.csv")
    names = json.loads((root / "artifacts" / "clean" / "labels.json").read_text())["labels"]
    truth = [names[i] for i in scored["label_input"]]
    assert len(scored) == len(test) and (scored["label"] == truth).mean() > 0.6, scored
    textops(root, "predict", "new.csv", "-o", "on-ray.csv", "--engine", "ray")  # a local Ray, one file: in order
    on_ray = pd.read_csv(root / "on-ray.csv")
    assert on_ray["label"].tolist() == scored["label"].tolist()
    assert abs(on_ray.filter(like="prob_") - scored.filter(like="prob_")).max().max() < 1e-6

    monitored = json.loads(textops(root, "monitor", "new.csv", "--json", check=False).stdout)
    checks = {c["name"]: c for c in monitored["checks"]}
    assert checks["embeddings (domain classifier)"]["test"] == "skipped", checks
    print(f"tfidf family test: {time.monotonic() - started:.0f} s")
