"""Serving: the real `textops serve` on a free port following the champion through real `textops model
promote/rollback` under load, a version that cannot load, SIGHUP and POST /reload, the request log, --workers,
SIGKILL, bad payloads, MLflow's own `mlflow models serve` of the logged pyfunc, and batch `textops predict`."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from helpers import (
    FAST,
    TEXTS,
    TINY,
    WEAK,
    active_store,
    background_load,
    free_port,
    merge,
    mlflow_client,
    post_raw,
    prepare_data,
    request,
    sampled_project,
    serving,
    textops,
    train_and_register,
    wait_for,
)

POLL = 2  # serve.poll_seconds of the following server
JSON_TYPE = "application/json"
# Personal data in served texts (serve.redact): never on disk in clear, in any file of the project
EMAIL, PHONE, OTHER_EMAIL, OTHER_PHONE = (
    "ines.okafor@example.net",
    "+44 20 7946 0321",
    "li.wei@example.org",
    "030 2468013",
)


def personal_data_on_disk(root: Path) -> list[str]:
    """The files under ROOT (and the server's console logs beside it) holding EMAIL or a phone number in clear:
    their bytes as they are, and a Parquet file's values decoded too (its pages may be compressed)."""
    needles = [
        n.encode() for n in (EMAIL, OTHER_EMAIL, PHONE, PHONE.replace(" ", ""), OTHER_PHONE, "79460321", "2468013")
    ]
    found = []
    for path in [*root.rglob("*"), *root.parent.glob("serve-*.log")]:
        if not path.is_file() or path.is_symlink():
            continue
        data = path.read_bytes()
        if path.suffix == ".parquet":
            data += pd.read_parquet(path).to_json(force_ascii=False).encode()
        found += [f"{path.relative_to(root.parent)}: {n.decode()}" for n in needles if n in data]
    return found


def post_json(url: str, body, content_type: str = "application/json") -> tuple[int, dict | str]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    status, answer = post_raw(url, data, {"Content-Type": content_type})
    try:
        return status, json.loads(answer)
    except json.JSONDecodeError:
        return status, answer.decode(errors="replace")


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


@pytest.fixture(scope="module")
def server(served_project: Path):
    """`textops serve` following the champion, checking every POLL seconds."""
    with serving(served_project, "-S", f"serve.poll_seconds={POLL}") as served:
        yield served


def version_probs(root: Path, version: str, texts: list[str] = TEXTS) -> np.ndarray:
    """In-process predictions of a registered version: what the server must return when it serves it."""
    import mlflow.pyfunc

    with active_store(root):
        model = mlflow.pyfunc.load_model(f"models:/{mlflow_client(root)[1]}/{version}")
    return model.predict(pd.DataFrame({"text": texts}))[["prob_negative", "prob_positive"]].to_numpy()


def served_probs(url: str, texts: list[str] = TEXTS) -> tuple[np.ndarray, str]:
    """The server's probabilities for TEXTS and the version that says it computed them."""
    status, headers, body = request(
        url, "POST", "/invocations", json.dumps({"inputs": texts}).encode(), {"Content-Type": "application/json"}
    )
    assert status == 200, body
    preds = json.loads(body)["predictions"]
    return np.array([[p["prob_negative"], p["prob_positive"]] for p in preds]), headers["x-model-version"]


def metric(server, name: str) -> float:
    """The sum of a metric's samples in GET /metrics (0 when absent)."""
    lines = server.get("/metrics")[2].decode().splitlines()
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines if line.split("{")[0].split(" ")[0] == name)


def other(version: str) -> str:
    return "1" if version == "2" else "2"


@pytest.mark.slow
def test_hot_swap_under_load_through_promote_and_rollback(served_project: Path, server):
    """16 clients send requests all along while the champion is promoted twice and rolled back once: no
    request fails, each answer comes from a version that was champion while it ran (allowing for the poll and
    the load), each says which one, and each move is served within poll_seconds + load time, without a restart."""
    root = served_project
    truth = {v: dict(zip(TEXTS, version_probs(root, v)[:, 1].tolist(), strict=True)) for v in ("1", "2")}
    assert not np.allclose(list(truth["1"].values()), list(truth["2"].values()), atol=1e-3)  # distinguishable
    start = server.version()["model_version"]
    moves = [
        (("model", "promote", other(start), "--reason", "hot swap test"), other(start)),
        (("model", "promote", start, "--reason", "hot swap test, back"), start),
        (("model", "rollback"), other(start)),
    ]
    reloads = metric(server, "textops_model_reloads_total")
    timeline = [[start, 0.0, None]]  # [version, champion from (at the earliest), until (at the latest)]
    seen = []  # per move: (version, when the server was first seen serving it, its load seconds)
    with background_load(server.url, TEXTS, clients=16) as result:
        time.sleep(2)
        for args, expected in moves:
            before = time.time()
            textops(root, *args)
            timeline[-1][2] = moved = time.time()
            timeline.append([expected, before, None])
            version = wait_for(
                lambda e=expected: (v := server.version())["model_version"] == e and v,
                120,
                f"the server to serve v{expected}",
                interval=0.1,
            )
            assert version["last_reload_error"] is None
            seen.append((expected, time.time(), version["load_seconds"]))
            # served within poll_seconds + load time of the move (and a margin for this loaded machine)
            assert seen[-1][1] - moved <= POLL + version["load_seconds"] + 5, (expected, seen[-1], moved)
            time.sleep(1)
    assert server.proc.poll() is None  # no restart
    assert metric(server, "textops_model_reloads_total") - reloads == 3
    responses = result["responses"]
    assert result["errors"] == 0, result["examples"]
    assert len(responses) > 100 and {r["status"] for r in responses} == {200}
    lag = POLL + max(load for _, _, load in seen) + 5  # the old champion answers until the new one is loaded
    for r in responses:
        champions = [
            v for v, since, until in timeline if since <= r["end"] and (until is None or until + lag >= r["start"])
        ]
        assert r["version"] in champions, (r, timeline)
        # the header names the model that computed the answer
        assert r["prediction"]["prob_positive"] == pytest.approx(truth[r["version"]][r["text"]], abs=1e-5)
    for expected, when, _ in seen:  # and after each swap the clients got the new champion's answers
        assert any(r["version"] == expected and when <= r["start"] <= when + 1 for r in responses), expected


def register_copy(root: Path, of: str) -> tuple[str, Path]:
    """A new version of the registered model whose artifacts are a copy of version OF's: (version, its dir)."""
    import mlflow.artifacts

    client, name = mlflow_client(root)
    with active_store(root):
        path = Path(mlflow.artifacts.download_artifacts(f"models:/{name}/{of}", dst_path=str(root.parent / "copy")))
    mv = client.create_model_version(name, source=str(path.resolve()), run_id=client.get_model_version(name, of).run_id)
    return str(mv.version), path


@pytest.mark.slow
def test_a_version_that_cannot_load_is_not_swapped_in(served_project: Path, server):
    root = served_project
    serving_now = server.version()["model_version"]
    broken, path = register_copy(root, "1")
    shutil.rmtree(path)  # its artifacts are deleted
    textops(root, "model", "promote", broken, "--reason", "artifacts deleted")
    error = wait_for(lambda: server.version()["last_reload_error"], POLL + 60, "the failed reload")
    assert error["version"] == broken and f"cannot load v{broken}" in error["message"]
    status, headers, _ = request(
        server.url, "POST", "/invocations", json.dumps({"inputs": TEXTS}).encode(), {"Content-Type": "application/json"}
    )
    assert status == 200 and headers["x-model-version"] == serving_now  # the old model keeps serving
    assert metric(server, "textops_model_reload_failures_total") >= 1
    good = other(serving_now)
    textops(root, "model", "promote", good, "--reason", "a good version again")
    wait_for(lambda: server.version()["model_version"] == good, POLL + 60, f"the swap to v{good}")
    assert server.version()["last_reload_error"] is None
    probs, header = served_probs(server.url)
    assert header == good and np.allclose(probs, version_probs(root, good), atol=1e-5)


@pytest.mark.slow
def test_payload_formats_and_bad_payloads(served_project: Path, server):
    url = server.url
    good = [
        ({"inputs": TEXTS}, "application/json"),
        ({"instances": TEXTS}, "application/json"),
        ({"dataframe_split": {"columns": ["text"], "data": [[t] for t in TEXTS]}}, "application/json"),
        ({"dataframe_records": [{"text": t} for t in TEXTS]}, "application/json"),
        (pd.DataFrame({"text": TEXTS}).to_csv(index=False).encode(), "text/csv"),
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
    expected, _ = served_probs(url)
    for body, content_type in good:
        status, answer = post_json(url, body, content_type)
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
    # every response says which model answered; /version and /health say what is loaded
    _, headers, _ = request(url, "GET", "/health")
    version = server.version()
    assert headers["x-model-version"] == version["model_version"] and headers["x-model-name"] == version["model_name"]
    assert version["alias"] == "champion" and version["data"]["raw_md5"] and version["data"]["rev"]
    assert version["loaded_at"] and version["poll_seconds"] == POLL
    assert version["runtime"] == "onnx"  # serve.runtime's default: the ONNX graph logged with the model


@pytest.mark.slow
def test_sighup_and_reload_check_the_registry_now_and_requests_are_logged(served_project: Path):
    root = served_project
    with serving(
        root, "-S", "serve.poll_seconds=0", "-S", "serve.log_requests=true", "-S", "serve.runtime=torch"
    ) as server:
        first = server.version()["model_version"]
        assert server.version()["runtime"] == "torch"
        textops(root, "model", "promote", other(first), "--reason", "sighup test")
        time.sleep(2)
        assert server.version()["model_version"] == first  # poll_seconds 0: nothing polls
        os.kill(server.proc.pid, signal.SIGHUP)
        wait_for(lambda: server.version()["model_version"] == other(first), 60, "the swap after SIGHUP")
        assert server.proc.poll() is None  # SIGHUP reloads, it does not stop the server
        textops(root, "model", "promote", first, "--reason", "reload test")
        status, _, body = request(server.url, "POST", "/reload", timeout=120)
        assert status == 200 and json.loads(body)["result"] == "swapped"
        assert server.version()["model_version"] == first
        status, headers, _ = request(
            server.url,
            "POST",
            "/invocations",
            json.dumps({"inputs": TEXTS[:2]}).encode(),
            {"Content-Type": "application/json"},
        )
        assert status == 200
        assert any(url == server.url for url in json.loads(textops(root, "status", "--json").stdout)["serving_checked"])
    # Stopped, the server's record is gone (a SIGKILLed one's, of an earlier test, is skipped and then pruned).
    assert not (root / ".textops" / "serving" / f"{server.proc.pid}.json").exists()
    assert server.url not in json.loads(textops(root, "status", "--json").stdout)["serving_checked"]
    logs = list((root / "logs" / "requests").glob("requests-*.jsonl"))
    rows = [json.loads(line) for f in logs for line in f.read_text().splitlines()]
    mine = [r for r in rows if r["request_id"] == headers["x-request-id"]]
    assert [r["index"] for r in mine] == [0, 1] and all(r["model_version"] == first for r in mine)
    assert mine[0]["chars"] == len(TEXTS[0]) and set(mine[0]["probabilities"]) == {"negative", "positive"}
    assert "text" not in mine[0] and TEXTS[0] not in "".join(f.read_text() for f in logs)
    assert (
        "logs/" not in subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True).stdout
    )


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, pytest.param(2, marks=pytest.mark.extended)])
def test_sigkill_of_textops_serve_frees_the_port(served_project: Path, workers: int):
    """--workers N: each worker follows the alias; a SIGKILL of `textops serve` leaves nothing on the port."""
    root = served_project
    with serving(root, "--workers", str(workers), "-S", "serve.poll_seconds=0") as server:
        assert served_probs(server.url)[0].shape == (len(TEXTS), 2)
        children = _children(server.proc.pid)
        if workers > 1:
            first = server.version()["model_version"]
            textops(root, "model", "promote", other(first), "--reason", "workers test")
            os.kill(server.proc.pid, signal.SIGHUP)  # passed on to every worker

            def serving_everywhere() -> bool:
                info = [
                    line
                    for line in server.get("/metrics")[2].decode().splitlines()
                    if line.startswith("textops_model_info") and line.endswith(" 1.0")
                ]
                return len(info) == workers and all(f'model_version="{other(first)}"' in line for line in info)

            wait_for(serving_everywhere, 90, "every worker to serve the new champion", interval=0.2)
            textops(root, "model", "promote", first, "--reason", "workers test, back")
        server.proc.kill()
        server.proc.wait(10)
        wait_for(lambda: _port_free(server.port), 5, "the port to be free after SIGKILL", interval=0.1)
        wait_for(
            lambda: (
                not [
                    c
                    for c in children
                    if Path(f"/proc/{c}").exists() and "Z" not in Path(f"/proc/{c}/stat").read_text().split(")")[-1][:3]
                ]
            ),
            10,
            "every worker to exit",
            interval=0.1,
        )


@pytest.mark.slow
def test_busy_port_is_a_clear_error(served_project: Path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        proc = textops(served_project, "serve", "--port", str(s.getsockname()[1]), check=False, timeout=120)
    assert proc.returncode != 0 and "another process is listening" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_mlflow_models_serve_still_serves_the_logged_model(served_project: Path):
    """Users who deploy with MLflow's own tooling lose nothing: `mlflow models serve` of the champion alias
    answers, and the pyfunc's guard still turns MLflow's 500s and conversions into 4xx."""
    from textops.adapters.tracking import tracking_uri
    from textops.core.config import load_params
    from textops.core.env import child_env
    from textops.serving.serve import stop_server, wait_ready

    root = served_project
    params = load_params(root / "params.yaml")
    uri = tracking_uri(root, params)
    port = free_port()
    with open(root.parent / "mlflow-serve.log", "wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mlflow",
                "models",
                "serve",
                "-m",
                f"models:/{params.mlflow.registered_model}@champion",
                "--env-manager",
                "local",
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
            ],
            cwd=root,
            env=child_env(MLFLOW_TRACKING_URI=uri, MLFLOW_REGISTRY_URI=uri),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_ready(url, proc, timeout=240)
            champion = mlflow_client(root)[0].get_model_version_by_alias(params.mlflow.registered_model, "champion")
            status, answer = post_json(url, {"inputs": TEXTS})
            assert status == 200, answer
            probs = np.array([[p["prob_negative"], p["prob_positive"]] for p in answer["predictions"]])
            assert np.allclose(probs, version_probs(root, str(champion.version)), atol=1e-5)
            assert post_json(url, {"inputs": [1, 2]})[0] == 400  # numbers where texts go: the guard
            assert post_raw(url, b'{"inputs": ["x"]}', {})[0] == 415  # no Content-Type: the guard
            assert post_json(url, b"[" * 100_000)[0] == 400  # nested past the recursion limit: the guard
        finally:
            stop_server(proc)


@pytest.mark.slow
@pytest.mark.parametrize(
    "suffix", [".csv", *(pytest.param(s, marks=pytest.mark.extended) for s in (".jsonl", ".parquet"))]
)
def test_predict_file_in_batches(served_project: Path, suffix: str):
    root = served_project
    # with the true labels beside the texts: the served names (`label`, `prob_*`) hold the prediction, and the
    # input's `label` stays as `label_input`
    frame = pd.DataFrame({"id": range(7), "text": [TEXTS[i % 3] for i in range(7)], "label": ["positive"] * 7})
    src = root.parent / f"in{suffix}"
    {
        ".csv": lambda: frame.to_csv(src, index=False),
        ".jsonl": lambda: frame.to_json(src, orient="records", lines=True),
        ".parquet": lambda: frame.to_parquet(src),
    }[suffix]()
    out = root.parent / f"out{suffix}"
    proc = textops(root, "predict", str(src), "--output", str(out), "--batch-size", "3", "--model-version", "1")
    assert "7 rows" in proc.stdout and "label is kept as label_input" in proc.stdout, proc.stdout
    # read back as numbers (textops' own reader keeps every cell as written: ids like 007 stay strings)
    result = {".csv": pd.read_csv, ".jsonl": lambda p: pd.read_json(p, lines=True), ".parquet": pd.read_parquet}[
        suffix
    ](out)
    assert list(result["id"]) == list(range(7))
    assert set(result["label"]) <= {"negative", "positive"} and list(result["label_input"]) == ["positive"] * 7
    v1 = version_probs(root, "1", TEXTS[:3])
    assert np.allclose(result[["prob_negative", "prob_positive"]].to_numpy()[:3], v1, atol=1e-5)


@pytest.mark.slow
def test_predict_errors_are_user_errors(served_project: Path):
    root = served_project
    missing = textops(root, "predict", "nope.csv", "--output", "x.csv", check=False)
    assert missing.returncode != 0 and "not found" in missing.stderr and "Traceback" not in missing.stderr
    (root.parent / "t.csv").write_text("text\nhello\n")
    unknown = textops(
        root, "predict", str(root.parent / "t.csv"), "--output", "x.csv", "--model-version", "42", check=False
    )
    assert unknown.returncode != 0 and "cannot load" in unknown.stderr


@pytest.mark.slow
def test_feedback_labels_served_answers_and_comes_back_as_online_figures_and_data(served_project: Path):
    """POST /feedback on the real server: labels matched to served answers by X-Request-Id (the server's own; a
    client's id is echoed as X-Client-Request-Id and names no answer) and position; unknown answers 404, labels
    the model does not have 422, malformed bodies 400/415, floods 413, all refused whole with nothing written;
    accepted labels written before the 200, a second label kept as a later answer. Then the online figures in
    `monitor --requests` and `status`, and the labelled texts exported for the next retrain, once. A text with an
    e-mail address and a phone number, labelled, exported and queued for labelling, is nowhere on disk in clear."""
    from textops.live.feedback import read_feedback

    root = served_project
    logs = root / "logs" / "requests"
    texts = [f"{TEXTS[i % len(TEXTS)]} (review {i})" for i in range(40)]
    texts[3] = f"{TEXTS[3]} Mail me at {EMAIL} or call {PHONE}!"
    redacted = f"{TEXTS[3]} Mail me at <EMAIL> or call <PHONE>!"
    with serving(
        root,
        "-S",
        "serve.poll_seconds=0",
        "-S",
        "serve.log_requests=true",
        "-S",
        "serve.log_texts=true",
        "-S",
        "serve.max_texts=50",
    ) as server:

        def feedback(body, content_type: str = "application/json") -> tuple[int, dict]:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            status, _, answer = request(server.url, "POST", "/feedback", data, {"Content-Type": content_type})
            return status, json.loads(answer) if answer else {}

        status, headers, body = request(
            server.url,
            "POST",
            "/invocations",
            json.dumps({"inputs": texts}).encode(),
            {"Content-Type": "application/json", "X-Request-Id": "client-batch-1"},
        )
        assert status == 200 and headers["x-client-request-id"] == "client-batch-1"  # kept beside the server's
        batch = headers["x-request-id"]
        assert batch != "client-batch-1"
        version = headers["x-model-version"]
        predicted = [p["label"] for p in json.loads(body)["predictions"]]
        status, headers, body = request(
            server.url,
            "POST",
            "/invocations",
            json.dumps({"inputs": [texts[0]]}).encode(),
            {"Content-Type": "application/json"},
        )
        single = headers["x-request-id"]
        unlabelled = json.dumps({"inputs": [f"{TEXTS[4]} ({OTHER_EMAIL}, tel. {OTHER_PHONE})"]}).encode()
        assert request(server.url, "POST", "/invocations", unlabelled, {"Content-Type": JSON_TYPE})[0] == 200

        refused = [
            ({"request_id": "nobody-asked", "label": "positive"}, 404),
            ({"request_id": "client-batch-1", "index": 0, "label": "positive"}, 404),  # a client's id: anyone's
            ({"request_id": batch, "index": 99, "label": "positive"}, 404),
            ({"request_id": batch, "index": 0, "label": "sarcastic"}, 422),  # not a class of the model
            ({"request_id": batch, "label": "positive"}, 422),  # a batch needs the position
            ([{"request_id": single, "label": "negative"}, {"request_id": "nobody", "label": "negative"}], 404),
            ({"request_id": single}, 400),
            (b"{not json", 400),
            ([{"request_id": single, "label": "negative"}] * 51, 413),  # more than serve.max_texts
        ]
        for body, expected in refused:
            status, answer = feedback(body)
            assert status == expected and answer.get("message"), (body, status, answer)
        assert feedback({"request_id": single, "label": "negative"}, "text/plain")[0] == 415
        assert read_feedback(logs) == []  # all or nothing: the valid item of a refused list was not kept

        labels = ["positive" if i % 2 else "negative" for i in range(40)]
        status, answer = feedback(
            [{"request_id": batch, "index": i, "label": label} for i, label in enumerate(labels)]
            + [{"request_id": single, "label": "positive"}]
        )
        assert status == 200 and answer == {"accepted": 41}
        assert feedback({"request_id": batch, "index": 0, "label": "positive"}) == (200, {"accepted": 1})
        assert len(read_feedback(logs, latest=False)) == 42 and len(read_feedback(logs)) == 41  # both kept
        _, _, exposed = request(server.url, "GET", "/metrics")
        assert "textops_feedback_labels_total 42.0" in exposed.decode()

    labels[0] = "positive"  # the newest label of that answer counts
    truth = labels + ["positive"]
    served = predicted + [predicted[0]]
    expected = sum(t == p for t, p in zip(truth, served, strict=True)) / len(truth)
    result = json.loads(textops(root, "monitor", "--requests", "--json", "-S", "monitor.window=all").stdout)
    assert result["online"][version]["n"] == 41, result["online"]
    assert result["online"][version]["accuracy"] == pytest.approx(expected, abs=1e-4)
    status = json.loads(textops(root, "status", "--json").stdout)
    assert status["online"][version] == result["online"][version], status["online"]

    first = textops(root, "feedback", "export").stdout
    assert "41 labelled texts" in first, first
    exported = pd.read_csv(next((root / "landing").glob("feedback-*.csv")))
    assert (
        len(exported) == 41
        and set(exported["text"]) <= set(texts) | {redacted}
        and set(exported["label"]) <= {"positive", "negative"}
    )
    assert redacted in set(exported["text"])  # the labelled text, as the log keeps it
    assert "no feedback since the last export" in textops(root, "feedback", "export").stdout  # never twice
    queued = textops(root, "label", "queue", "-n", "5", "-o", "queue/tasks.json").stdout
    assert "label queue: 1 texts" in queued, queued  # the one answer without feedback
    assert "(<EMAIL>, tel. <PHONE>)" in (root / "queue" / "tasks.json").read_text(encoding="utf-8")
    assert personal_data_on_disk(root) == []


@pytest.mark.slow
def test_a_shadow_challenger_is_promoted_on_live_evidence_and_served(served_project: Path):
    """The loop on live traffic: a challenger that passes offline waits (promotion.live_min_labels) while the
    server scores every request with it in shadow, after answering; people label the answers (POST /feedback);
    `textops model promote-check` promotes it once enough labelled answers show it does not lose, with the live
    figures in its evidence; the running server then answers with it, with no restart."""
    from textops.live.feedback import shadow_figures

    root = served_project
    live = ("-S", "promotion.live_min_labels=40")
    textops(root, "model", "promote", "1", "--reason", "the weak model serves, for this test")
    # The last trained model (good) registered again: it beats the weak champion offline, and waits.
    out = textops(root, "register", *live).stdout
    version = out.split(" v", 1)[1].split(" ", 1)[0]
    assert "stays challenger until 40" in out, out
    client, name = mlflow_client(root)
    assert client.get_model_version(name, version).tags["textops.decision"] == "awaiting-live"
    assert "waits: 0 of 40" in textops(root, "model", "promote-check", *live).stdout

    test = pd.read_parquet(root / "artifacts/clean/test.parquet").head(60)  # label ids, in labels.json's order
    names = json.loads((root / "artifacts/clean/labels.json").read_text())["labels"]
    test["label"] = [names[int(i)] for i in test["label"]]
    logs = root / "logs" / "requests"
    with serving(
        root,
        "-S",
        "serve.poll_seconds=1",
        "-S",
        "serve.log_requests=true",
        "-S",
        "serve.shadow=true",
        "-S",
        "serve.shadow_fraction=1",  # every request, one at a time (none skipped as busy): 60 labelled answers
        "-S",
        "serve.log_texts=true",
        *live,
    ) as server:
        wait_for(
            lambda: (server.version().get("shadow") or {}).get("model_version") == version,
            240,
            "the challenger loaded in shadow",
        )
        ids = []
        for start in range(0, len(test), 20):
            batch = json.dumps({"inputs": test["text"].iloc[start : start + 20].tolist()}).encode()
            status, headers, _ = request(server.url, "POST", "/invocations", batch, {"Content-Type": JSON_TYPE})
            assert status == 200 and headers["x-model-version"] == "1"
            ids.append(headers["x-request-id"])
        items = [
            {"request_id": rid, "index": i, "label": label}
            for n, rid in enumerate(ids)
            for i, label in enumerate(test["label"].iloc[n * 20 : (n + 1) * 20].astype(str))
        ]
        status, _, body = request(
            server.url, "POST", "/feedback", json.dumps(items).encode(), {"Content-Type": "application/json"}
        )
        assert status == 200 and json.loads(body) == {"accepted": 60}, body
        figures = wait_for(
            lambda: (f := shadow_figures(logs).get(f"1->{version}")) and f["labelled"] >= 60 and f,
            120,
            "the shadow's answers logged",
        )
        assert figures["texts"] >= 60 and 0 <= figures["agreement"] <= 1, figures
        _, _, exposed = request(server.url, "GET", "/metrics")
        assert f'textops_shadow_texts_total{{model_version="1",shadow_version="{version}"}}' in exposed.decode()
        assert "textops_shadow_scored_total 3.0" in exposed.decode()  # a request at a time: each one shadowed
        assert "textops_shadow_skipped_total{" not in exposed.decode()

        checked = textops(root, "model", "promote-check", *live).stdout
        assert "promoted, now the champion" in checked and "labelled live texts in shadow" in checked, checked
        wait_for(lambda: server.version()["model_version"] == version, 240, "the server following the promotion")
        tags = client.get_model_version(name, version).tags
        assert tags["textops.decision"] == "promoted" and tags["textops.live.labelled"] == "60", tags
        # The champion and the challenger are one version now: nothing left to shadow.
        wait_for(lambda: server.version().get("shadow") is None, 120, "the shadow dropped")

    result = json.loads(textops(root, "monitor", "--requests", "--json", "-S", "monitor.window=all").stdout)
    assert result["shadow"][f"1->{version}"]["labelled"] == 60, result["shadow"]

    # The labels come back as data: exported once, ingested through the same checks, retrained on.
    exported = textops(root, "feedback", "export").stdout
    assert "60 labelled texts" in exported, exported
    path = exported.rsplit("-> ", 1)[1].strip()
    textops(root, "ingest", path)
    textops(root, "preprocess")
    textops(root, "validate")
    train_and_register(root)
    client, name = mlflow_client(root)
    newest = max(client.search_model_versions(f"name='{name}'"), key=lambda mv: int(mv.version))
    data = yaml.safe_load((root / "data.dvc").read_text())["outs"][0]["md5"]
    assert newest.tags["textops.challenger.data.raw_md5"] == data  # trained on the data with the feedback in it
