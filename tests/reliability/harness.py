"""Helpers of the reliability suite: snapshots of everything that must not change, the registry's state,
free ports, and running a command until a file appears and then SIGKILL-ing it.

(Not a conftest.py: a second conftest module would shadow tests/conftest.py for `from conftest import`.)
"""

from __future__ import annotations

import hashlib
import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from conftest import REPO, git, make_project, sampled_project, set_params, textops  # noqa: E402, F401

# Small enough for two shared CPU cores; the sample is learnable, so the first model passes the floor.
FAST = {
    "sample": {"rows": 1000, "seed": 13},
    "data": {"max_file_mb": 2},
    "validate": {"min_rows": 100, "min_rows_per_class": 20},
    "model": {
        "max_length": 32,
        "tiny": {"vocab_size": 600, "hidden_size": 32, "num_layers": 1, "num_heads": 2, "intermediate_size": 64},
    },
    "train": {"epochs": 3, "batch_size": 16, "learning_rate": 0.002, "save_steps": 25, "logging_steps": 5,
              "early_stopping_patience": 0},
    "promotion": {"floor": 0.6},
}


# Secret-looking environment values: the champion project is built with them set; none may be written anywhere.
SECRETS = {
    "AWS_SECRET_ACCESS_KEY": "aws-secret-7f3c9a1e5b",
    "MLFLOW_TRACKING_PASSWORD": "mlflow-password-2d8e4b",
    "HF_TOKEN": "hf_token_9c1a7e3f5d",
    "GITHUB_TOKEN": "ghp_token_4b6d8f0a2c",
    "DATABASE_PASSWORD": "db-password-6e2a9c4f",
    "OPENAI_API_KEY": "sk-apikey-1f5b3d7e9a",
}


def digest(*paths: Path) -> dict[str, str]:
    """sha256 of every file under PATHS (a missing path contributes nothing), keyed by path."""
    out = {}
    for base in paths:
        if base.is_file():
            files = [base]
        else:
            files = sorted(p for p in base.rglob("*") if p.is_file()) if base.exists() else []
        for f in files:
            out[str(f)] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


def data_state(root: Path) -> dict[str, str]:
    """data/, data.dvc and the DVC cache: what a refused input must leave byte-identical."""
    return digest(root / "data", root / "data.dvc", root / ".dvc" / "cache")


def registry_state(root: Path) -> dict:
    """Every registered version with its decision tag, the aliases and the champion history."""
    from mlflow import MlflowClient

    from textops.config import load_params
    from textops.tracking import tracking_uri

    params = load_params(root / "params.yaml")
    uri = tracking_uri(root, params)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    name = params.mlflow.registered_model
    versions = client.search_model_versions(f"name='{name}'")
    model = client.get_registered_model(name) if versions else None
    return {
        "versions": sorted(
            (str(v.version), v.run_id, v.tags.get("textops.decision")) for v in versions
        ),
        "aliases": {k: str(v) for k, v in sorted(model.aliases.items())} if model else {},
        "history": json.loads(model.tags.get("textops.champion_history", "[]")) if model else [],
    }


def run_status(root: Path, run_id: str) -> str:
    from mlflow import MlflowClient

    from textops.config import load_params
    from textops.tracking import tracking_uri

    return MlflowClient(tracking_uri(root, load_params(root / "params.yaml"))).get_run(run_id).info.status


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def textops_python(cwd: Path, code: str, *args: str) -> subprocess.Popen:
    """Start `textops ARGS` in a fresh interpreter after running CODE (fault injection: CODE can wrap a library
    function so that the process SIGKILLs itself at an exact point). Output goes to cwd/../proc-<pid>.log."""
    script = (
        "import os, signal, sys\n"
        "def die():\n    os.kill(os.getpid(), signal.SIGKILL)\n"
        f"{code}\n"
        "from textops.cli import app\n"
        f"sys.exit(app({list(args)!r}, standalone_mode=True))\n"
    )
    log = open(Path(cwd).parent / f"proc-{time.monotonic_ns()}.log", "w")  # noqa: SIM115
    return subprocess.Popen([sys.executable, "-c", script], cwd=cwd, stdout=log, stderr=subprocess.STDOUT)


def killed(proc: subprocess.Popen, timeout: float = 600) -> bool:
    """Wait for PROC; True when it died of SIGKILL."""
    proc.wait(timeout=timeout)
    return proc.returncode == -signal.SIGKILL


def dvc(root: Path, *args: str) -> subprocess.CompletedProcess:
    """The real `dvc` CLI in ROOT (not checked: callers assert on its output)."""
    return subprocess.run([sys.executable, "-m", "dvc", *args], cwd=root, capture_output=True, text=True)


def two_sample_files(tmp_path: Path) -> Path:
    """A new project in TMP_PATH/proj with FAST params, and two labelled files of the built-in sample next to it
    (v1.csv: 1,000 rows, seed 13; v2.csv: 300 rows, seed 99), not ingested."""
    root = make_project(tmp_path / "proj")
    set_params(root, FAST)
    textops(root, "sample", "--no-ingest", "--output", str(tmp_path / "v1.csv"))
    set_params(root, {"sample": {"seed": 99, "rows": 300}})
    textops(root, "sample", "--no-ingest", "--output", str(tmp_path / "v2.csv"))
    return root


def champion_project(root: Path) -> Path:
    """A new project in ROOT with FAST params whose registry has a champion: `textops run` on the sample."""
    make_project(root)
    set_params(root, FAST)
    out = textops(root, "run").stdout
    assert "now the champion" in out, out
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "first data version and model")
    return root


# --------------------------------------------------------------------------------------------------
# HTTP against the scoring server

# What the load test and benchmark send: mixed casing, negation, contrast, a non-Latin script.
TEXTS = [
    "the movie was truly wonderful!",
    "the battery was awful.",
    "honestly, the staff was not friendly",
    "这部电影很好看",
    "THE SOUNDTRACK WAS BRILLIANT, BUT THE ENDING WAS DULL",
]


@contextmanager
def serving(root: Path, timeout: float = 240) -> Iterator[tuple[str, int, float]]:
    """`textops serve` on a free port as a user starts it: yields (url, port, seconds until it answered);
    stopped afterwards with SIGTERM to textops, which must take its whole process group down."""
    from textops.serve import stop_server, wait_ready

    port = free_port()
    log = open(root.parent / f"serve-{port}.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("textops")), "serve", "--port", str(port)],
        cwd=root, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        started = wait_ready(url, proc, timeout=timeout)
        yield url, port, started
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        finally:
            stop_server(proc)
            log.close()


def post(url: str, body: bytes, headers: dict[str, str], timeout: float = 60) -> tuple[int, bytes]:
    """POST BODY to URL/invocations on a fresh connection; (status, response body). Never raises on 4xx/5xx."""
    import http.client
    from urllib.parse import urlparse

    parts = urlparse(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        conn.request("POST", "/invocations", body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def load(url: str, texts: list[str], requests: int, clients: int) -> dict:
    """REQUESTS POSTs of one text each from CLIENTS threads, each on its own kept-alive connection.

    Returns the count of errors (a non-200 answer or a failed connection), their first examples, and every
    request's latency in seconds (for the benchmark's p50/p99).
    """
    import http.client
    import threading
    from concurrent.futures import ThreadPoolExecutor
    from urllib.parse import urlparse

    parts = urlparse(url)
    local = threading.local()
    errors: list[str] = []
    latencies: list[float] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        if not hasattr(local, "conn"):
            local.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        body = json.dumps({"inputs": [texts[i % len(texts)]]})
        start = time.perf_counter()
        try:
            local.conn.request("POST", "/invocations", body=body, headers={"Content-Type": "application/json"})
            resp = local.conn.getresponse()
            payload = resp.read()
            ok = resp.status == 200 and len(json.loads(payload)["predictions"]) == 1
            problem = None if ok else f"{resp.status}: {payload[:200]!r}"
        except Exception as exc:  # a dropped connection is an error too; reconnect for the next request
            local.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
            problem = f"{type(exc).__name__}: {exc}"
        elapsed = time.perf_counter() - start
        with lock:
            latencies.append(elapsed)
            if problem:
                errors.append(problem)

    with ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(one, range(requests)))
    return {"errors": len(errors), "examples": errors[:5], "latencies": latencies}


def listening_addresses(port: int) -> set[str]:
    """Local IPv4/IPv6 addresses with a socket LISTENing on PORT (from /proc/net/tcp*)."""
    import ipaddress

    found = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local_addr, state = line.split()[1], line.split()[3]
            address, port_hex = local_addr.split(":")
            if state != "0A" or int(port_hex, 16) != port:  # 0A = LISTEN
                continue
            raw = bytes.fromhex(address)
            if width == 8:
                found.add(str(ipaddress.IPv4Address(raw[::-1])))
            else:  # four little-endian 32-bit words
                words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
                found.add(str(ipaddress.IPv6Address(words)))
    return found
