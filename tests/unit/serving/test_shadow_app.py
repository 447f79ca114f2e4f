"""The shadow's share in the app (in-process, stand-in models): each request counted once in /metrics, as scored
or skipped with its reason; the sample is the one `shadow.sampled` draws; a request answered while another is in
flight is not shadowed."""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from helpers import StandInSource, wait_for

from textops.serving.follow import Follower
from textops.serving.scoring import Limits
from textops.serving.serve_metrics import Metrics
from textops.serving.serving_app import create_app
from textops.serving.shadow import sampled, shadow_follower
from textops.serving.state import ServeState

testclient = pytest.importorskip("starlette.testclient")


def shadowed_state(fraction: float) -> ServeState:
    metrics = Metrics()
    state = ServeState(
        Follower(StandInSource("1"), 3600, lambda kind, info: None),
        metrics,
        Limits(max_body_bytes=5000, max_texts=20),
        64,
        ThreadPoolExecutor(1),
        shadow=shadow_follower(StandInSource("2"), 3600, metrics),
        shadow_pool=ThreadPoolExecutor(1),
        shadow_fraction=fraction,
    )
    return state


def counts(text: str) -> dict[str, float]:
    """textops_shadow_scored_total and textops_shadow_skipped_total{reason} from /metrics."""
    found = {"scored": 0.0}
    for line in text.splitlines():
        if line.startswith("textops_shadow_scored_total "):
            found["scored"] = float(line.split()[-1])
        elif m := re.match(r'textops_shadow_skipped_total\{reason="(\w+)"\} (\S+)', line):
            found[m.group(1)] = float(m.group(2))
    return found


def test_the_sample_is_the_one_the_hash_draws_and_every_request_is_counted():
    state = shadowed_state(0.5)
    with testclient.TestClient(create_app(state), client=("127.0.0.1", 40000)) as c:
        wait_for(lambda: state.shadow.current is not None, 30, "the shadow loaded")
        for n in range(40):
            assert c.post("/invocations", json={"inputs": [f"good text {n}"]}).status_code == 200
        # no request log, no request id: the n-th request offered to the shadow is sampled as "request-n"
        expected = sum(sampled(f"request-{n}", 0.5) for n in range(1, 41))
        assert 0 < expected < 40
        found = wait_for(lambda: (f := counts(c.get("/metrics").text))["scored"] == expected and f, 30, "the shadows")
        assert found == {"scored": expected, "sampled_out": 40 - expected}, found


def test_a_request_answered_while_another_is_in_flight_is_not_shadowed():
    state = shadowed_state(1.0)
    with testclient.TestClient(create_app(state), client=("127.0.0.1", 40000)) as c:
        wait_for(lambda: state.shadow.current is not None, 30, "the shadow loaded")
        state.follower.current.model.delay = 0.5  # the champion slow: two requests overlap
        done = []
        threads = [
            threading.Thread(target=lambda: done.append(c.post("/invocations", json={"inputs": ["good"]})))
            for _ in range(2)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert [r.status_code for r in done] == [200, 200]
        # The first answered while the second waited for the pool: skipped; the last one alone: shadowed.
        found = wait_for(lambda: (f := counts(c.get("/metrics").text))["scored"] == 1 and f, 30, "the shadow")
        assert found == {"scored": 1, "busy": 1}, found
