"""Serving: the real `mlflow models serve` of the champion on a free port, restarts after promote/rollback,
bad payloads, and batch `textops predict` of files."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import sampled_project, textops
from test_registry import TINY, WEAK, prepare_data, train_and_register

from textops.config import Params
from textops.serve import read_texts, serve_command, stop_server, wait_ready

TEXTS = ["the movie was truly wonderful!", "the battery was awful.", "honestly, the staff was not friendly"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(url: str, body, content_type: str = "application/json") -> tuple[int, dict | str]:
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


# --------------------------------------------------------------------------------------------------
# no model needed


def test_serve_command_serves_the_champion_alias_locally():
    cmd = serve_command(Params(), "127.0.0.1", 5999)
    assert cmd[:5] == [sys.executable, "-m", "mlflow", "models", "serve"]
    assert cmd[cmd.index("-m", 3) + 1] == "models:/textops-classifier@champion"
    assert cmd[cmd.index("--env-manager") + 1] == "local"
    assert cmd[cmd.index("-h") + 1] == "127.0.0.1" and cmd[cmd.index("-p") + 1] == "5999"
    assert serve_command(Params(), "127.0.0.1", 1, version="3")[6] == "models:/textops-classifier/3"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0): look at its state
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(")")[-1].split()[0] != "Z"


def test_stop_server_stops_the_whole_process_group(tmp_path: Path):
    # a parent that starts a child, as `mlflow models serve` starts uvicorn
    pidfile = tmp_path / "child.pid"
    proc = subprocess.Popen(
        ["sh", "-c", f"sleep 300 & echo $! > {pidfile}; wait"], start_new_session=True
    )
    for _ in range(100):
        if pidfile.exists() and pidfile.read_text().strip():
            break
        time.sleep(0.05)
    child = int(pidfile.read_text())
    assert _alive(child)
    stop_server(proc)
    assert proc.returncode is not None
    for _ in range(100):
        if not _alive(child):
            break
        time.sleep(0.05)
    assert not _alive(child), "the child of the server survived stop_server"


def test_wait_ready_fails_fast_when_the_server_exits():
    from textops.errors import StateError

    proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    with pytest.raises(StateError, match="exited with code 3"):
        wait_ready(f"http://127.0.0.1:{free_port()}", proc, timeout=30)


def test_read_texts_errors(tmp_path: Path):
    from textops.errors import DataError

    (tmp_path / "a.csv").write_text("sentence\nhello\n")
    with pytest.raises(DataError, match="no 'text' column"):
        read_texts(tmp_path / "a.csv")
    with pytest.raises(DataError, match="unsupported"):
        read_texts(tmp_path / "a.xlsx")
    with pytest.raises(DataError, match="not found"):
        read_texts(tmp_path / "missing.parquet")


def test_serve_without_champion_is_a_clear_error(project: Path):
    proc = textops(project, "serve", "--port", str(free_port()), check=False, timeout=120)
    assert proc.returncode != 0
    assert "no champion" in proc.stderr and "Traceback" not in proc.stderr


# --------------------------------------------------------------------------------------------------
# two tiny models: v1 learns nothing (first champion), v2 learns the sample (promoted)


@pytest.fixture(scope="module")
def served_project(tmp_path_factory: pytest.TempPathFactory):
    with sampled_project(tmp_path_factory, "serve", TINY) as root:
        prepare_data(root)
        train_and_register(root, WEAK)
        out = train_and_register(root)
        assert "v2 (challenger): PROMOTED" in out, out
        yield root


def version_probs(root: Path, version: str) -> np.ndarray:
    """In-process predictions of a registered version: what the server must return when it serves it."""
    import mlflow.pyfunc

    from textops.config import load_params
    from textops.tracking import tracking_uri, use_store

    params = load_params(root / "params.yaml")
    use_store(tracking_uri(root, params))
    model = mlflow.pyfunc.load_model(f"models:/{params.mlflow.registered_model}/{version}")
    return model.predict(pd.DataFrame({"text": TEXTS}))[["prob_negative", "prob_positive"]].to_numpy()


class Server:
    """`textops serve` as a user runs it, stopped with SIGTERM to textops (which must stop its group)."""

    def __init__(self, root: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        exe = Path(sys.executable).with_name("textops")
        self.log = open(root.parent / f"serve-{self.port}.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [str(exe), "serve", "--port", str(self.port)], cwd=root, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def __enter__(self) -> Server:
        try:
            wait_ready(self.url, self.proc, timeout=240)
        except Exception:
            self.__exit__()
            raise
        return self

    def probs(self) -> np.ndarray:
        status, body = post(self.url, {"inputs": TEXTS})
        assert status == 200, body
        return np.array([[p["prob_negative"], p["prob_positive"]] for p in body["predictions"]])

    def __exit__(self, *exc) -> None:
        self.proc.send_signal(signal.SIGTERM)  # to textops only: it must take mlflow and uvicorn down
        try:
            self.proc.wait(timeout=60)
        finally:
            stop_server(self.proc)  # in case it did not
            self.log.close()
        # the port is free again: nothing of the server group is left listening
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", self.port)) != 0, "something still listens after textops serve stopped"


@pytest.mark.slow
def test_server_follows_promotion_and_rollback_across_restarts(served_project: Path):
    root = served_project
    v1, v2 = version_probs(root, "1"), version_probs(root, "2")
    assert not np.allclose(v1, v2, atol=1e-3)  # the two versions are distinguishable
    with Server(root) as server:
        served = server.probs()
    assert np.allclose(served, v2, atol=1e-5)
    textops(root, "model", "rollback")
    with Server(root) as server:
        assert np.allclose(server.probs(), v1, atol=1e-5)
    textops(root, "model", "promote", "2", "--reason", "back to the better model")
    with Server(root) as server:
        assert np.allclose(server.probs(), v2, atol=1e-5)


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
    with Server(served_project) as server:
        expected = server.probs()
        for body in good:
            status, answer = post(server.url, body)
            assert status == 200, (body, answer)
            preds = answer["predictions"]
            assert len(preds) == len(TEXTS)
            assert all(p["label"] in ("negative", "positive") for p in preds)
            probs = np.array([[p["prob_negative"], p["prob_positive"]] for p in preds])
            assert np.allclose(probs.sum(axis=1), 1, atol=1e-5) and np.allclose(probs, expected, atol=1e-5)
        for body in bad:
            status, answer = post(server.url, body)
            assert 400 <= status < 500, (body, status, answer)
            assert isinstance(answer, dict) and answer.get("message"), answer
            assert post(server.url, {"inputs": TEXTS[:1]})[0] == 200  # and it keeps answering
        # longer than max_length: truncated, not an error; an empty string is scored
        status, answer = post(server.url, {"inputs": ["great " * 5000, ""]})
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
