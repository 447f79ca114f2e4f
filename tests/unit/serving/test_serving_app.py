"""The app of `textops serve` in-process (Starlette's test client) over a stand-in source: headers, /version,
/health, /metrics, /reload, chunked scoring, the swap seen by requests, the request log. Real servers on
127.0.0.1 with the real registry are in tests/integration/test_serve.py and tests/reliability/test_serving.py."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest
from helpers import StandInModel, StandInSource, wait_for

from textops.live.request_log import RequestLog, text_hash
from textops.serving.follow import Follower
from textops.serving.scoring import Limits
from textops.serving.serve_metrics import Metrics
from textops.serving.serving_app import create_app
from textops.serving.state import ServeState

testclient = pytest.importorskip("starlette.testclient")
JSON = {"Content-Type": "application/json"}


def make_state(source: StandInSource, batch_size: int = 64, request_log: RequestLog | None = None) -> ServeState:
    metrics = Metrics()

    def on_event(kind, info):
        (metrics.reloads if kind == "swapped" else metrics.failed_reloads).inc()

    return ServeState(
        Follower(source, 3600, on_event),
        metrics,
        Limits(max_body_bytes=5000, max_texts=20),
        batch_size,
        ThreadPoolExecutor(1),
        request_log,
    )


def client(state: ServeState, host: str = "127.0.0.1"):
    return testclient.TestClient(create_app(state), client=(host, 40000))


def test_answers_name_the_model_and_version_everywhere():
    state = make_state(StandInSource("1"))
    with client(state) as c:
        r = c.post("/invocations", content=json.dumps({"inputs": ["a good film", "bad"]}), headers=JSON)
        assert r.status_code == 200
        assert r.headers["x-model-version"] == "1" and r.headers["x-model-name"] == "stand-in"
        assert [p["label"] for p in r.json()["predictions"]] == ["positive", "negative"]
        assert set(r.json()["predictions"][0]) == {"label", "prob_negative", "prob_positive"}
        bad = c.post("/invocations", content=b"{nope", headers=JSON)
        assert bad.status_code == 400 and bad.json()["message"] and bad.headers["x-model-version"] == "1"
        assert c.get("/health").status_code == 200 and c.get("/ping").status_code == 200
        assert c.get("/nowhere").headers["x-model-version"] == "1"
        version = c.get("/version").json()
        assert version["model_name"] == "stand-in" and version["model_version"] == "1"
        assert version["alias"] == "champion" and version["data"] == {"raw_md5": "md5-1", "rev": "rev-1"}
        assert version["loaded_at"].endswith("Z") and version["last_reload_error"] is None
        metrics = c.get("/metrics").text
        assert 'textops_requests_total{model_version="1",status="200"} 1.0' in metrics
        assert 'textops_request_errors_total{model_version="1",status="400"} 1.0' in metrics
        assert "textops_request_seconds_bucket" in metrics and "textops_texts_per_request_count 1.0" in metrics


def test_a_request_finishes_on_the_model_it_started_on():
    source = StandInSource("1")
    state = make_state(source)
    with client(state) as c:
        c.post("/invocations", content=json.dumps({"inputs": ["warm"]}), headers=JSON)
        state.follower.current.model.delay = 1.0  # v1 is slow: the swap happens while it computes
        answers = {}
        slow = threading.Thread(
            target=lambda: answers.update(
                r=c.post("/invocations", content=json.dumps({"inputs": ["a good film"]}), headers=JSON)
            )
        )
        slow.start()
        threading.Event().wait(0.3)
        source.version = "2"
        assert state.follower.check()["result"] == "swapped"
        slow.join(10)
        r = answers["r"]
        assert r.status_code == 200 and r.headers["x-model-version"] == "1"
        assert r.json()["predictions"][0]["prob_positive"] == pytest.approx(0.51)  # v1's answer
        after = c.post("/invocations", content=json.dumps({"inputs": ["a good film"]}), headers=JSON)
        assert after.headers["x-model-version"] == "2" and after.json()["predictions"][0]["prob_positive"] == 0.52
        assert "textops_model_reloads_total 1.0" in c.get("/metrics").text


def test_large_requests_are_scored_in_chunks_in_order():
    state = make_state(StandInSource("1"), batch_size=2)
    with client(state) as c:
        model: StandInModel = state.follower.current.model
        calls = model.calls
        texts = [f"good {i}" if i % 2 else f"bad {i}" for i in range(7)]
        r = c.post("/invocations", content=json.dumps({"inputs": texts}), headers=JSON)
        assert r.status_code == 200 and model.calls - calls == 4  # 2 + 2 + 2 + 1
        assert [p["label"] for p in r.json()["predictions"]] == ["negative", "positive"] * 3 + ["negative"]


def test_limits_answer_413_before_any_work():
    state = make_state(StandInSource("1"))
    with client(state) as c:
        calls = state.follower.current.model.calls
        for body, says in [
            (json.dumps({"inputs": ["x" * 6000]}), "serve.max_body_bytes"),
            (json.dumps({"inputs": ["x"] * 21}), "serve.max_texts"),
        ]:
            r = c.post("/invocations", content=body, headers=JSON)
            assert r.status_code == 413 and says in r.json()["message"]
        assert state.follower.current.model.calls == calls


def test_reload_is_for_loopback_clients_only():
    source = StandInSource("1")
    with client(make_state(source), host="192.0.2.7") as c:
        source.version = "2"
        assert c.post("/reload").status_code == 403
        assert c.get("/version").json()["model_version"] == "1"
    source = StandInSource("1")
    with client(make_state(source)) as c:
        source.version = "2"
        r = c.post("/reload")
        assert r.status_code == 200 and r.json() == {"result": "swapped", "model_version": "2", "previous": "1"}
        source.version, source.broken = "3", {"3"}
        failed = c.post("/reload")
        assert failed.status_code == 503 and failed.json()["result"] == "failed"
        version = c.get("/version").json()
        assert version["model_version"] == "2" and version["last_reload_error"]["version"] == "3"
        assert "textops_model_reload_failures_total 1.0" in c.get("/metrics").text


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
@pytest.mark.parametrize("with_texts", [False, True])
def test_the_request_log_has_a_row_per_text(tmp_path: Path, fmt: str, with_texts: bool):
    log = RequestLog(tmp_path / "logs", fmt, texts=with_texts)
    state = make_state(StandInSource("1"), request_log=log)
    texts = ["a good film", "secret bad words"]
    with client(state) as c:
        r = c.post("/invocations", content=json.dumps({"inputs": texts}), headers=JSON)
        assert r.status_code == 200 and r.headers["x-request-id"]
    files = list((tmp_path / "logs").glob(f"requests-*.{fmt}"))
    assert len(files) == 1
    if fmt == "jsonl":
        rows = [json.loads(line) for line in files[0].read_text().splitlines()]
    else:
        rows = pd.read_parquet(files[0]).to_dict(orient="records")
    assert [row["index"] for row in rows] == [0, 1]
    assert {row["request_id"] for row in rows} == {r.headers["x-request-id"]}
    assert rows[0]["model_version"] == "1" and rows[0]["label"] == "positive" and rows[1]["chars"] == len(texts[1])
    assert rows[1]["text_sha256"] == text_hash(texts[1])
    assert dict(rows[0]["probabilities"])["positive"] == pytest.approx(0.51)
    assert rows[0]["time"].endswith("Z")
    assert ("secret" in files[0].read_bytes().decode(errors="replace")) == with_texts


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_a_client_id_sent_twice_never_labels_the_other_answer(tmp_path: Path, fmt: str):
    """Two clients send the same X-Request-Id: each answer gets the server's own id, the client's is kept beside
    it, and feedback on the first answer labels the first text only."""
    from textops.live.feedback import FeedbackLog, read_feedback

    log = RequestLog(tmp_path / "logs", fmt, texts=True)
    state = make_state(StandInSource("1"), request_log=log)
    state.feedback_log = FeedbackLog(tmp_path / "logs", 1_000_000)
    mine = {**JSON, "X-Request-Id": "order-42"}
    with client(state) as c:
        first = c.post("/invocations", content=json.dumps({"inputs": ["a good film"]}), headers=mine)
        second = c.post("/invocations", content=json.dumps({"inputs": ["a bad film"]}), headers=mine)
        ids = [first.headers["x-request-id"], second.headers["x-request-id"]]
        assert ids[0] != ids[1] and "order-42" not in ids
        assert first.headers["x-client-request-id"] == second.headers["x-client-request-id"] == "order-42"
        assert c.post("/feedback", json={"request_id": "order-42", "label": "negative"}).status_code == 404
        assert c.post("/feedback", json={"request_id": ids[0], "label": "negative"}).status_code == 200
    logged = tmp_path / "logs"
    if fmt == "parquet":
        rows = [r for p in logged.glob("requests-*.parquet") for r in pd.read_parquet(p).to_dict("records")]
    else:
        rows = [json.loads(line) for p in logged.glob("requests-*.jsonl") for line in p.read_text().splitlines()]
    assert sorted((r["request_id"], r["client_request_id"], r["text"]) for r in rows) == sorted(
        [(ids[0], "order-42", "a good film"), (ids[1], "order-42", "a bad film")]
    )
    labelled = read_feedback(tmp_path / "logs")
    assert [(f["request_id"], f["label"]) for f in labelled] == [(ids[0], "negative")]


def test_feedback_needs_the_token_when_the_server_has_one(tmp_path: Path):
    from textops.live.feedback import FeedbackLog

    log = RequestLog(tmp_path / "logs", "jsonl")
    state = make_state(StandInSource("1"), request_log=log)
    state.feedback_log, state.feedback_token = FeedbackLog(tmp_path / "logs", 1_000_000), "s3cret-token"
    with client(state) as c:
        answer = c.post("/invocations", content=json.dumps({"inputs": ["a good film"]}), headers=JSON)
        item = {"request_id": answer.headers["x-request-id"], "label": "positive"}
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic s3cret-token"}):
            refused = c.post("/feedback", json=item, headers=headers)
            assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
            assert "feedback token" in refused.json()["message"]
        accepted = c.post("/feedback", json=item, headers={"Authorization": "Bearer s3cret-token"})
        assert accepted.status_code == 200 and accepted.json() == {"accepted": 1}


def test_a_lone_surrogate_in_feedback_is_a_400_not_a_500(tmp_path: Path):
    """JSON's escapes can carry half a surrogate pair: SQLite (the answers index) cannot take it, so it is refused."""
    from textops.live.feedback import FeedbackLog, read_feedback

    state = make_state(StandInSource("1"), request_log=RequestLog(tmp_path / "logs", "jsonl"))
    state.feedback_log = FeedbackLog(tmp_path / "logs", 1_000_000)
    with client(state) as c:
        answer = c.post("/invocations", content=json.dumps({"inputs": ["a good film"]}), headers=JSON)
        rid = answer.headers["x-request-id"]
        for body in (
            '{"request_id": "\\ud800", "label": "positive"}',
            f'{{"request_id": "{rid}", "label": "\\udc00"}}',
        ):
            refused = c.post("/feedback", content=body.encode(), headers=JSON)
            assert refused.status_code == 400 and "lone surrogate" in refused.json()["message"], refused.text
    assert read_feedback(tmp_path / "logs") == []


def test_a_shadow_that_cannot_load_says_so_in_version_metrics_and_the_log():
    import logging

    from textops.serving.shadow import shadow_follower

    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append  # on the logger itself: an in-process CLI run stops textops' loggers propagating
    logger = logging.getLogger("textops.serve")
    logger.addHandler(handler)
    # A library may have disabled every logger that existed when it configured logging (dateparser does, with
    # disable_existing_loggers=True, when the root logger has no handler yet: in a test worker, not in textops,
    # whose commands give the root logger a handler first). What is under test is textops' own line.
    was_disabled, logger.disabled = logger.disabled, False
    state = make_state(StandInSource("1"))
    state.shadow = shadow_follower(StandInSource("2", broken=("2",)), 3600, state.metrics)
    state.shadow_pool = ThreadPoolExecutor(1)
    try:
        with client(state) as c:
            wait_for(lambda: state.shadow.last_error is not None, 30, "the shadow's load to fail")
            shadow = c.get("/version").json()["shadow"]
            assert shadow["model_version"] is None and shadow["last_load_error"]["version"] == "2"
            assert "cannot load v2" in shadow["last_load_error"]["message"]
            assert "textops_shadow_load_failures_total 1.0" in c.get("/metrics").text
            assert c.get("/version").json()["model_version"] == "1"  # the served model is not affected
    finally:
        logger.removeHandler(handler)
        logger.disabled = was_disabled
    lines = [r.getMessage() for r in records if "cannot load v2" in r.getMessage()]
    assert lines and "vNone" not in lines[0] and "shadow" in lines[0] and "it stays none" in lines[0]
