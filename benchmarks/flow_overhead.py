"""Orchestration figures for BENCHMARKS.md ("Orchestration").

1. Overhead: the `training-pipeline` flow (in-process, temporary Prefect server) against the bare stage functions
   called in a plain script, on the same data and params, in one run; each in a fresh interpreter and a fresh
   MLflow store. The flow's fixed start-up (import prefect + start the temporary server + an empty flow run) is
   measured on its own in a fresh PREFECT_HOME and reported separately.
2. No-op retrain ("nothing to retrain"): `textops run` wall time in-process, and against a running
   `prefect server start`.
3. The README's main command on a fresh clone: `git clone` + `textops run` with the repository's params.yaml
   (the virtualenv is already installed; its install time is not counted).

Usage: python benchmarks/flow_overhead.py [--rows 2000] [--epochs 1] [--skip-clone]
Prints a Markdown table; paste it into BENCHMARKS.md with the command, machine and date.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import tests_path  # noqa: F401  (tests/ on sys.path: `support`, shared with the tests)
import yaml
from support import REPO, make_project

BIN = Path(sys.executable).parent
ENV = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
for key in ("PREFECT_API_URL", "PREFECT_HOME", "MLFLOW_TRACKING_URI"):
    ENV.pop(key, None)

BARE = """
import sys, time
t0 = time.perf_counter()
from pathlib import Path
from textops.core.env import set_offline_env
set_offline_env()
from textops.core.config import load_params
from textops.data.preprocess import preprocess
from textops.data.validate import validate
from textops.modeling.train import train
from textops.modeling.evaluate import evaluate
from textops.lifecycle.register import register
root = Path('.').resolve(); p = load_params('params.yaml')
preprocess(root, p); validate(root, p); train(root, p); evaluate(root, p); register(root, p)
print('WALL', time.perf_counter() - t0)
"""

FLOW = """
import sys, time
t0 = time.perf_counter()
from pathlib import Path
from textops.flows import configure_prefect
configure_prefect(Path('.').resolve())
from textops.flows.pipeline import training_pipeline
s = training_pipeline(project_dir='.', skip_unchanged=False, return_state=True)
assert s.is_completed(), s
print('WALL', time.perf_counter() - t0)
"""

EMPTY_FLOW = """
import time
t0 = time.perf_counter()
from prefect import flow
@flow
def empty():
    return 1
assert empty() == 1
print('WALL', time.perf_counter() - t0)
"""


def timed(cmd: list[str], cwd: Path, env: dict | None = None) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env or ENV, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:3])} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return wall, proc.stdout


def inner(out: str) -> float:
    return float([line for line in out.splitlines() if line.startswith("WALL ")][-1].split()[1])


def project(base: Path, name: str, update: dict) -> Path:
    root = make_project(base / name)
    params = yaml.safe_load((root / "params.yaml").read_text())
    for section, values in update.items():
        params.setdefault(section, {}).update(values)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    subprocess.run(["git", "commit", "-qam", "bench params"], cwd=root, check=True)
    timed([str(BIN / "textops"), "sample"], root)
    return root


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=2000)
    ap.add_argument("--epochs", type=float, default=1)
    ap.add_argument("--skip-clone", action="store_true")
    args = ap.parse_args()
    # a champion whatever the model scores: the figures are times
    update = {
        "sample": {"rows": args.rows},
        "train": {"epochs": args.epochs},
        "promotion": {"floor": 0.0, "beat_baseline": False},
    }
    rows = []
    with tempfile.TemporaryDirectory(prefix="textops-bench-") as tmp:
        base = Path(tmp)
        bare_root, flow_root = project(base, "bare", update), project(base, "flow", update)

        fixed, _ = timed(
            [sys.executable, "-c", EMPTY_FLOW],
            base,
            {
                **ENV,
                "PREFECT_HOME": str(base / "empty-home"),
                "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
            },
        )
        bare, out_bare = timed([sys.executable, "-c", BARE], bare_root)
        flow, out_flow = timed([sys.executable, "-c", FLOW], flow_root)
        rows += [
            ("bare stage functions, plain script (process wall)", bare),
            ("`training-pipeline` flow, in-process (process wall)", flow),
            ("Prefect fixed start-up: import + temporary server + empty flow, fresh home", fixed),
            ("ratio flow / bare", flow / bare),
            ("ratio (flow - fixed start-up) / bare", (flow - fixed) / bare),
        ]

        noop_local, out = timed([str(BIN / "textops"), "run"], flow_root)
        assert "nothing to retrain" in out, out
        rows.append(("no-op `textops run`, in-process (process wall)", noop_local))

        port = free_port()
        home = base / "server-home"
        server = subprocess.Popen(
            [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env={**ENV, "PREFECT_HOME": str(home)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            for _ in range(360):
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2)
                    break
                except OSError:
                    time.sleep(0.5)
            env = {**ENV, "PREFECT_API_URL": f"http://127.0.0.1:{port}/api", "PREFECT_HOME": str(home)}
            timed([str(BIN / "textops"), "run"], flow_root, env)  # first contact creates the concurrency limit
            noop_server, out = timed([str(BIN / "textops"), "run"], flow_root, env)
            assert "nothing to retrain" in out, out
            rows.append(("no-op `textops run`, against a running server (process wall)", noop_server))
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)

        if not args.skip_clone:
            clone = base / "clone"
            subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
            t0 = time.perf_counter()
            timed([str(BIN / "textops"), "run"], clone)
            rows.append(
                ("README main command on a fresh clone: `textops run` (repo params.yaml)", time.perf_counter() - t0)
            )
        shutil.rmtree(base, ignore_errors=True)

    print(
        f"\n{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.platform()}, "
        f"{os.cpu_count()} CPUs; rows={args.rows} epochs={args.epochs}\n"
    )
    print("| measurement | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value:.3f} |" if name.startswith("ratio") else f"| {name} | {value:.1f} s |")


if __name__ == "__main__":
    main()
