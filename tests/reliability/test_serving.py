"""The served champion under load, under fuzzed malformed requests and under requests too large to be
reasonable: `textops serve` on 127.0.0.1, started and stopped by the test.

- 5,000 requests from 16 concurrent clients: no errors (the latency figures are in BENCHMARKS.md, measured by
  benchmarks/serve_load.py with the same load generator);
- 1,000 generated malformed payloads (hypothesis): wrong types, huge strings, deep JSON, invalid UTF-8, empty
  bodies, wrong or missing content types: never a 5xx, and correct requests are still answered afterwards;
- bounded work: a 50 MB request is refused at once (413), the work of a client that went away is dropped, and a
  large request lets small ones through.
"""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest
from helpers import TEXTS, listening_addresses, load, post_raw, serving, wait_for

pytestmark = pytest.mark.reliability

JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def server(champion_template):
    with serving(champion_template) as served:
        yield served.url, served.port


def predictions(url: str, texts: list[str]) -> list[dict]:
    status, body = post_raw(url, json.dumps({"inputs": texts}).encode(), JSON)
    assert status == 200, body[:300]
    return json.loads(body)["predictions"]


def test_binds_loopback_only(server):
    _, port = server
    assert listening_addresses(port) == {"127.0.0.1"}


def test_a_kept_alive_connection_answers_without_a_delayed_ack_stall(server):
    """Without TCP_NODELAY every answer waited ~40 ms for the client's delayed ACK (Nagle)."""
    import http.client
    import statistics

    _, port = server
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    times = []
    for _ in range(50):
        start = time.perf_counter()
        conn.request("GET", "/ping")
        conn.getresponse().read()
        times.append(time.perf_counter() - start)
    conn.close()
    assert statistics.median(times) < 0.02, times


def test_5000_requests_from_16_clients_without_an_error(server):
    url, _ = server
    result = load(url, TEXTS, requests=5000, clients=16)
    assert result["errors"] == 0, result["examples"]
    assert len(result["latencies"]) == 5000


# --------------------------------------------------------------------------------------------------
# fuzzing

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
keys = st.sampled_from(["inputs", "instances", "dataframe_split", "dataframe_records", "params", "text", "x"])


@st.composite
def malformed(draw) -> tuple[bytes, dict[str, str]]:
    """A request body and headers that are wrong in one of many ways."""
    kind = draw(
        st.sampled_from(
            [
                "bytes",
                "json",
                "keyed",
                "records",
                "split",
                "deep",
                "huge",
                "empty",
                "content_type",
                "no_content_type",
                "csv",
                "parquet",
                "charset",
            ]
        )
    )
    if kind == "bytes":  # mostly not UTF-8, not JSON
        return draw(st.binary(min_size=1, max_size=200)), JSON
    if kind == "json":
        return json.dumps(draw(json_values)).encode(), JSON
    if kind == "keyed":  # a known field holding the wrong kind of thing
        return json.dumps({draw(keys): draw(json_values)}).encode(), JSON
    if kind == "records":
        rows = draw(st.lists(st.dictionaries(st.sampled_from(["text", "label", "x"]), scalars, max_size=3), max_size=4))
        return json.dumps({"dataframe_records": rows}).encode(), JSON
    if kind == "split":
        data = draw(st.lists(st.lists(scalars, max_size=3), max_size=4))
        return json.dumps(
            {"dataframe_split": {"columns": draw(st.lists(st.text(max_size=5), max_size=3)), "data": data}}
        ).encode(), JSON
    if kind == "deep":
        depth = draw(st.integers(min_value=500, max_value=200_000))
        return (b"[" * depth + b"]" * draw(st.sampled_from([0, depth]))), JSON
    if kind == "huge":  # a huge string where a text goes, or as a key, or alone
        n = draw(st.integers(min_value=100_000, max_value=2_000_000))
        where = draw(st.sampled_from(["list", "key", "bare"]))
        big = "x" * n
        body = {"list": {"inputs": [big, 3]}, "key": {big: ["a"]}, "bare": big}[where]
        return json.dumps(body).encode(), JSON
    if kind == "empty":
        return b"", draw(st.sampled_from([JSON, {"Content-Type": "text/csv"}, {}]))
    if kind == "content_type":
        ctype = draw(
            st.sampled_from(
                [
                    "text/plain",
                    "application/xml",
                    "multipart/form-data",
                    "application/x-www-form-urlencoded",
                    "application/json; boundary=x",
                ]
            )
            | st.text(max_size=30).filter(lambda t: t.isascii() and t.isprintable())
        )
        return json.dumps({"inputs": ["fine"]}).encode(), {"Content-Type": ctype}
    if kind == "no_content_type":
        return json.dumps({"inputs": ["fine"]}).encode(), {}
    if kind == "csv":
        return draw(st.binary(max_size=200)), {"Content-Type": "text/csv"}
    if kind == "parquet":
        return b"PAR1" + draw(st.binary(max_size=200)), {"Content-Type": "application/vnd.apache.parquet"}
    return json.dumps({"inputs": ["fine"]}).encode(), {"Content-Type": "application/json; charset=latin-1"}


def test_1000_malformed_payloads_never_get_a_5xx(server):
    url, _ = server
    before = predictions(url, TEXTS)
    seen: list[int] = []

    @settings(
        max_examples=1000, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(malformed())
    def check(request: tuple[bytes, dict[str, str]]) -> None:
        body, headers = request
        status, answer = post_raw(url, body, headers)
        seen.append(status)
        assert status < 500, (status, body[:200], headers, answer[:300])

    check()
    assert len(seen) >= 1000
    assert sum(400 <= s < 500 for s in seen) > 900  # malformed: most are refused (a few are valid by chance)
    # and it still answers correct requests, with the same answer as before the fuzzing
    assert predictions(url, TEXTS) == before


# --------------------------------------------------------------------------------------------------
# bounded work


def metric(url: str, name: str, labels: str = "") -> float:
    """The sum of a metric's samples in GET /metrics whose labels contain LABELS (0 when none)."""
    from support import request

    lines = request(url, "GET", "/metrics")[2].decode().splitlines()
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in lines if line.split("{")[0].split(" ")[0] == name and labels in line
    )


def test_a_50_mb_request_is_refused_at_once(server):
    url, _ = server
    body = json.dumps({"inputs": ["a perfectly valid review of a film " * 30] * 48_000}).encode()
    assert len(body) > 50_000_000
    start = time.monotonic()
    status, answer = post_raw(url, body, JSON)
    assert status == 413 and "serve.max_body_bytes" in json.loads(answer)["message"]
    assert time.monotonic() - start < 10
    too_many = json.dumps({"inputs": ["short"] * 5000}).encode()
    status, answer = post_raw(url, too_many, JSON)
    assert status == 413 and "serve.max_texts" in json.loads(answer)["message"]
    assert predictions(url, TEXTS)  # and it answers the next request


def big_request(texts: int = 1000) -> bytes:
    return json.dumps({"inputs": [f"{TEXTS[i % len(TEXTS)]} " * 40 for i in range(texts)]}).encode()


@pytest.mark.parametrize("sent", ["all of it", "half of it"])
def test_the_work_of_a_client_that_went_away_is_dropped(server, sent: str):
    url, port = server
    dropped = metric(url, "textops_requests_dropped_total")
    body = big_request()
    head = (
        "POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", port)) as s:  # send a large request, then give up at once
        s.sendall(head + (body if sent == "all of it" else body[: len(body) // 2]))
        time.sleep(0.2)
    wait_for(
        lambda: metric(url, "textops_requests_dropped_total") > dropped, 60, "the server to drop the work", interval=0.2
    )
    assert metric(url, "textops_request_errors_total", 'status="5') == 0
    assert predictions(url, TEXTS)


def test_a_large_request_lets_small_ones_through(server):
    url, _ = server
    body = big_request()
    start = time.monotonic()
    assert post_raw(url, body, JSON)[0] == 200
    alone = time.monotonic() - start
    done: dict[str, float] = {}

    def large() -> None:
        post_raw(url, body, JSON)
        done["large"] = time.monotonic()

    thread = threading.Thread(target=large)
    thread.start()
    time.sleep(min(0.2, alone / 5))
    small = []
    for _ in range(3):
        t0 = time.monotonic()
        predictions(url, TEXTS[:1])
        small.append(time.monotonic() - t0)
    thread.join(120)
    # a small request waits for at most one batch of the large one, not for all of it
    assert max(small) < alone / 2, (small, alone)
    assert done["large"] > t0 + small[-1]


def test_status_shows_the_champion_the_data_and_what_serves_it(server, champion_template):
    from helpers import textops

    _, port = server
    # The server was started with --port (not serve.port): status finds it all the same.
    st = json.loads(textops(champion_template, "status", "--json").stdout)
    assert st["aliases"]["champion"]["version"] == "1" and st["data"]["champion_trained_on_it"] is True, st
    assert st["serving"]["model_version"] == "1" and st["serving"]["alias"] == "champion", st
    assert any(d["name"] == "retrain" and d["schedules"] for d in st["schedules"]), st["schedules"]
    screen = textops(champion_template, "status").stdout
    assert "champion    v1" in screen and f"127.0.0.1:{port}: v1 (champion)" in screen, screen


def explain(url: str, body, query: str = "") -> tuple[int, dict]:
    from helpers import request

    status, _, answer = request(url, "POST", f"/explain{query}", json.dumps(body).encode(), JSON, 120)
    return status, json.loads(answer)


def test_explain_answers_beside_invocations_and_refuses_mistakes(server, champion_template):
    """POST /explain on the ONNX-served champion (a PyTorch copy loaded on first use, its own thread), the same
    request formats as /invocations; `textops explain --json`; and the run report's explained test rows."""
    from helpers import textops

    url, _ = server
    texts = ["a wonderful, moving film", "dull and far too long"]
    result: dict = {}
    thread = threading.Thread(target=lambda: result.update(answer=explain(url, {"inputs": texts})))
    thread.start()
    assert len(predictions(url, texts)) == 2  # /invocations answers while an explanation runs
    thread.join(300)
    status, answer = result["answer"]
    assert status == 200, answer
    served = predictions(url, texts)
    for text, e, p in zip(texts, answer["explanations"], served, strict=True):
        assert " ".join(w["word"] for w in e["words"]) == text.replace(",", " ,")  # words, not wordpieces
        assert e["target"] == e["label"] and abs(e["prob"] - p[f"prob_{e['label']}"]) < 1e-3  # the served model
        assert abs(sum(w["attribution"] for w in e["words"]) - (e["logit"] - e["baseline_logit"])) < 0.05
    # the dataframe format, a chosen target; mistakes are 4xx with a message
    status, answer = explain(url, {"dataframe_records": [{"text": texts[0]}]}, "?target=negative")
    assert status == 200 and answer["explanations"][0]["target"] == "negative", answer
    for body, query, code, words in [
        ({"inputs": texts}, "?target=maybe", 400, "unknown target label 'maybe'"),
        ({"inputs": ["fine", " "]}, "", 400, "are empty"),
        ({"inputs": ["x"] * 9}, "", 413, "serve.max_explain_texts"),
        ({"inputs": []}, "", 400, "no texts"),
    ]:
        status, answer = explain(url, body, query)
        assert status == code and words in answer["message"], (body, status, answer)
    # the CLI: the champion with PyTorch, JSON for a program (its refusals are explain.target_index's, unit-tested)
    cli = json.loads(textops(champion_template, "explain", texts[0], "--steps", "16", "--json").stdout)
    assert cli["steps"] == 16 and [w["word"] for w in cli["explanations"][0]["words"]][:2] == ["a", "wonderful"]
    # the run report of the champion's run: its most confidently wrong test rows, highlighted
    rows = json.loads((champion_template / "artifacts/eval/explained_errors.json").read_text())
    page = (champion_template / "reports/run.html").read_text()
    assert rows and all(r["label"] != r["true_label"] for r in rows), rows  # the tiny model errs on 5+ test rows
    assert "Most confidently wrong test rows" in page and page.count('<span style="background:rgba(') >= len(rows)
