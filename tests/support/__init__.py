"""Helpers for a throwaway textops project, shared by the test suite and the benchmarks: make a project next to
this checkout's sources, run the real `textops` and `dvc` commands in it, start `textops serve` on a free port
and send it load. Not in the wheel: `tests/` is on the tests' path (pyproject's pytest `pythonpath`), and a
benchmark puts it there (`sys.path`) before `from support import ...`.

They need a checkout of the repository: `make_project` copies its params.yaml, dvc.yaml and sources.
"""

from __future__ import annotations

import io
import json
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from textops.runtime.processes import free_port  # noqa: F401 (the tests' and benchmarks' free port too)

REPO = Path(__file__).resolve().parents[2]

# Small enough for two shared CPU cores, learnable enough that the first model passes the floor. Tests that
# need something else say so with an override on top of it (set_params(root, FAST, {...})).
FAST = {
    "sample": {"rows": 1000, "seed": 13},
    "data": {"max_file_mb": 2},
    "validate": {"min_rows": 100, "min_rows_per_class": 20},
    "model": {
        "base": "tiny",
        "max_length": 32,
        "tiny": {"vocab_size": 600, "hidden_size": 32, "num_layers": 1, "num_heads": 2, "intermediate_size": 64},
    },
    "train": {
        "epochs": 3,
        "batch_size": 16,
        "learning_rate": 0.002,
        "save_steps": 25,
        "logging_steps": 5,
        "early_stopping_patience": 0,
    },
    "promotion": {"floor": 0.6},
}

# What the load test and benchmark send: mixed casing, negation, contrast, a non-Latin script.
TEXTS = [
    "the movie was truly wonderful!",
    "the battery was awful.",
    "honestly, the staff was not friendly",
    "这部电影很好看",
    "THE SOUNDTRACK WAS BRILLIANT, BUT THE ENDING WAS DULL",
]


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def make_project(path: Path) -> Path:
    """A textops project in PATH: params.yaml, dvc.yaml and sources layout, git + DVC with a local remote."""
    path.mkdir(parents=True, exist_ok=True)
    for name in ("params.yaml", "dvc.yaml", "prefect.yaml", ".gitignore", "artifacts/.gitignore"):
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / name, path / name)
    # dvc.yaml lists the stage modules as deps; the project needs them at those paths.
    shutil.copytree(REPO / "src", path / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.email", "tests@textops.invalid")
    git(path, "config", "user.name", "textops tests")
    from contextlib import redirect_stdout

    from dvc.repo import Repo

    with redirect_stdout(io.StringIO()):  # "Initialized DVC repository. ..."
        Repo.init(str(path)).close()  # `dvc init`, in this process
    remote = path.parent / f"{path.name}-remote"
    remote.mkdir(exist_ok=True)
    # What `dvc remote add -d local REMOTE` and `dvc config` write, without three more DVC processes; the Vega
    # libraries inline for `dvc plots show`, as in this repository (renders offline).
    shutil.copytree(REPO / ".dvc" / "plots", path / ".dvc" / "plots")
    with open(path / ".dvc" / "config", "a", encoding="utf-8") as config:
        config.write("[core]\n    remote = local\n    autostage = true\n    analytics = false\n")
        config.write(f"[plots]\n    html_template = plots/offline.html\n['remote \"local\"']\n    url = {remote}\n")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "init project")
    return path


def copy_project(source: Path, dest: Path) -> Path:
    """A copy of the project SOURCE at DEST as `cp -a` makes it, with a copy of its DVC remote that it pushes to
    (`.dvc/config.local`, which git ignores): a trained champion in seconds for a test that changes it. The copy's
    MLflow store notices on its first command that it was copied and points at the copy's own artifacts
    (adapters/relocation.relocate_store), as it would for a user's `cp -a`."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cp", "-a", str(source), str(dest)], check=True)
    remote = dest.parent / f"{dest.name}-remote"
    subprocess.run(["cp", "-a", str(source.parent / f"{source.name}-remote"), str(remote)], check=True)
    (dest / ".dvc" / "config.local").write_text(f"['remote \"local\"']\n    url = {remote}\n")
    from textops.adapters.relocation import relocate_store
    from textops.core.config import load_params

    # What the copy's first command would do: a test may look into the store before it runs one.
    relocate_store(dest, load_params(dest / "params.yaml"))
    return dest


def merge(base: dict, update: dict) -> dict:
    """BASE with UPDATE merged in, nested sections key by key."""
    out = dict(base)
    for key, value in update.items():
        out[key] = merge(base.get(key) or {}, value) if isinstance(value, dict) else value
    return out


def set_params(root: Path, *updates: dict, commit: bool = True) -> None:
    """Merge UPDATES into ROOT's params.yaml; with COMMIT, commit it (a clean tree: lineage tags say dirty=false)."""
    path = root / "params.yaml"
    params = yaml.safe_load(path.read_text())
    for update in updates:
        params = merge(params, update)
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    if commit:
        git(root, "commit", "-q", "-m", "test params", "--", "params.yaml")


def textops(
    cwd: Path, *args: str, check: bool = True, timeout: float = 600, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run the real `textops` console script in CWD (with ENV added to this process's environment)."""
    import os

    exe = Path(sys.executable).with_name("textops")
    full = {**os.environ, **env} if env else None
    proc = subprocess.run([str(exe), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=full)
    if check and proc.returncode != 0:
        raise AssertionError(f"textops {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def dvc(root: Path, *args: str, check: bool = False) -> subprocess.CompletedProcess:
    """The real `dvc` CLI in ROOT; with CHECK a failure raises AssertionError with its output."""
    proc = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=root, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"dvc {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def wait_for(check, timeout: float, what: str, interval: float = 1.0):
    """CHECK() until it returns something truthy (returned), or AssertionError after TIMEOUT seconds; an exception
    CHECK raises ends the wait at once, but for an HTTP call that timed out: a server busy on a loaded machine (a
    Prefect server's SQLite writes while a flow runs) has not answered yet, which is not an answer."""
    import httpx
    from tenacity import RetryError, Retrying, retry_if_exception_type, retry_if_result, stop_after_delay, wait_fixed

    not_yet = retry_if_result(lambda value: not value) | retry_if_exception_type(httpx.TimeoutException)
    try:
        return Retrying(retry=not_yet, stop=stop_after_delay(timeout), wait=wait_fixed(interval))(check)
    except RetryError as exc:
        raise AssertionError(f"timed out after {timeout} s waiting for {what}") from exc.last_attempt.exception()


@dataclass
class Served:
    """A running `textops serve`: its URL and port, seconds until it answered, the process and its log."""

    url: str
    port: int
    started: float
    proc: subprocess.Popen
    log: Path

    def get(self, path: str, timeout: float = 30) -> tuple[int, dict[str, str], bytes]:
        """GET URL/PATH: (status, headers in lower case, body); never raises on 4xx/5xx."""
        return request(self.url, "GET", path, timeout=timeout)

    def version(self) -> dict:
        """GET /version, decoded."""
        status, _, body = self.get("/version")
        assert status == 200, body
        return json.loads(body)


@contextmanager
def serving(root: Path, *args: str, timeout: float = 240) -> Iterator[Served]:
    """`textops serve ARGS` on a free port as a user starts it, its output in ROOT/../serve-PORT.log; stopped
    afterwards with SIGTERM to textops, which must take its whole process tree down."""
    from textops.serving.serve import stop_server, wait_ready

    port = free_port()
    path = root.parent / f"serve-{port}.log"
    log = open(path, "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("textops")), "serve", "--port", str(port), *args],
        cwd=root,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        started = wait_ready(url, proc, timeout=timeout)
        yield Served(url, port, started, proc, path)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # to textops only: it must take its whole server down
        try:
            proc.wait(timeout=60)
        finally:
            stop_server(proc)  # in case it did not
            log.close()
    # the port is free again: nothing of the server is left listening
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0, "something still listens after textops serve stopped"


def request(
    url: str,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 60,
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP request on a fresh connection: (status, headers in lower case, body). Never raises on 4xx/5xx."""
    import http.client
    from urllib.parse import urlparse

    parts = urlparse(url)
    assert parts.hostname is not None, f"no host in {url!r}"
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def post_raw(url: str, body: bytes, headers: dict[str, str], timeout: float = 60) -> tuple[int, bytes]:
    """POST BODY to URL/invocations on a fresh connection; (status, response body). Never raises on 4xx/5xx."""
    status, _, answer = request(url, "POST", "/invocations", body, headers, timeout)
    return status, answer


def post_text(conn, text: str) -> tuple:
    """One POST /invocations of TEXT on the kept-alive CONN: (the connection for the next request, status,
    X-Model-Version, the prediction, the problem or None). A dropped connection is a problem too, and a new
    connection to the same server is returned for the next request."""
    import http.client

    status, version, prediction = 0, None, None
    try:
        body, headers = json.dumps({"inputs": [text]}), {"Content-Type": "application/json"}
        conn.request("POST", "/invocations", body=body, headers=headers)
        resp = conn.getresponse()
        payload, status, version = resp.read(), resp.status, resp.getheader("X-Model-Version")
        predictions = json.loads(payload)["predictions"] if status == 200 else []
        prediction = predictions[0] if len(predictions) == 1 else None
        problem = None if prediction else f"{status}: {payload[:200]!r}"
    except Exception as exc:
        conn = http.client.HTTPConnection(conn.host, conn.port, timeout=60)
        problem = f"{type(exc).__name__}: {exc}"
    return conn, status, version, prediction, problem


def load(url: str, texts: list[str], requests: int | None = None, clients: int = 16, until=None) -> dict:
    """POSTs of one text each from CLIENTS threads, each on its own kept-alive connection: REQUESTS in all, or
    until the threading.Event UNTIL is set.

    Returns the count of errors (a non-200 answer or a failed connection), their first examples, every
    request's latency in seconds (for the benchmarks' p50/p99), and every response as a dict: `start`, `end`
    (wall clock, time.time()), `status`, `version` (X-Model-Version), `text` and its `prediction`.
    """
    import http.client
    import itertools
    import threading
    from urllib.parse import urlparse

    parts = urlparse(url)
    host = parts.hostname
    assert host is not None, f"no host in {url!r}"
    errors: list[str] = []
    latencies: list[float] = []
    responses: list[dict] = []
    lock = threading.Lock()
    counter = itertools.count()

    def one(conn: http.client.HTTPConnection, i: int) -> http.client.HTTPConnection:
        text = texts[i % len(texts)]
        start, wall = time.perf_counter(), time.time()
        conn, status, version, prediction, problem = post_text(conn, text)
        elapsed = time.perf_counter() - start
        with lock:
            latencies.append(elapsed)
            responses.append(
                {
                    "start": wall,
                    "end": wall + elapsed,
                    "status": status,
                    "version": version,
                    "text": text,
                    "prediction": prediction,
                }
            )
            if problem:
                errors.append(problem)
        return conn

    def client() -> None:
        conn = http.client.HTTPConnection(host, parts.port, timeout=60)
        while until is None or not until.is_set():
            i = next(counter)
            if requests is not None and i >= requests:
                break
            conn = one(conn, i)
        conn.close()

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"errors": len(errors), "examples": errors[:5], "latencies": latencies, "responses": responses}


@contextmanager
def background_load(url: str, texts: list[str], clients: int = 16) -> Iterator[dict]:
    """`load` from CLIENTS threads for as long as the block runs; the dict it yields is filled with load's result
    when the block ends."""
    import threading

    stop, result = threading.Event(), {}
    runner = threading.Thread(target=lambda: result.update(load(url, texts, clients=clients, until=stop)), daemon=True)
    runner.start()
    try:
        yield result
    finally:
        stop.set()
        runner.join(timeout=120)


def champion_project(root: Path, *updates: dict) -> Path:
    """A new project in ROOT with FAST params (and UPDATES) whose registry has a champion: `textops run` on the
    sample, committed. The sample is ingested as data chosen (`textops sample`), not as the demo `run` ingests into
    an empty project, which the next ingest would replace."""
    make_project(root)
    set_params(root, FAST, *updates)
    textops(root, "sample")
    out = textops(root, "run").stdout
    assert "now the champion" in out, out
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "first data version and model")
    return root
