"""Serving under load: the reliability suite's load (N requests of one text from C concurrent clients) against
`textops serve`, with the latency percentiles and throughput the test does not assert on.

    python benchmarks/serve_load.py [--requests 5000] [--clients 16] [--project DIR]

Without --project it builds a throwaway project with the reliability suite's params (the built-in sample, the
tiny model, `textops run`), so the figures match what tests/reliability/test_serving.py exercises.
Prints a Markdown row for BENCHMARKS.md and the raw figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "reliability"))
from harness import champion_project, free_port, load  # noqa: E402

from textops.serve import stop_server, wait_ready  # noqa: E402

TEXTS = [
    "the movie was truly wonderful!",
    "the battery was awful.",
    "honestly, the staff was not friendly",
    "这部电影很好看",
    "THE SOUNDTRACK WAS BRILLIANT, BUT THE ENDING WAS DULL",
]


def measure(root: Path, requests: int, clients: int) -> dict:
    port = free_port()
    log = open(root.parent / f"serve-{port}.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("textops")), "serve", "--port", str(port)],
        cwd=root, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        started = wait_ready(url, proc, timeout=600)
        load(url, TEXTS, requests=200, clients=clients)  # warm-up
        t0 = time.perf_counter()
        result = load(url, TEXTS, requests=requests, clients=clients)
        wall = time.perf_counter() - t0
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        finally:
            stop_server(proc)
            log.close()
    lat = np.asarray(result["latencies"]) * 1000
    return {
        "requests": requests,
        "clients": clients,
        "errors": result["errors"],
        "p50_ms": float(np.percentile(lat, 50)),
        "p99_ms": float(np.percentile(lat, 99)),
        "max_ms": float(lat.max()),
        "requests_per_s": requests / wall,
        "server_start_s": started,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--project", type=Path, default=None)
    args = parser.parse_args()
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    if args.project:
        figures = measure(args.project.resolve(), args.requests, args.clients)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            figures = measure(champion_project(Path(tmp) / "proj"), args.requests, args.clients)
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs"
    f = figures
    print(
        f"| {f['requests']:,} × 1 text, {f['clients']} clients | {f['errors']} | {f['p50_ms']:.1f} | {f['p99_ms']:.1f} "
        f"| {f['requests_per_s']:.0f} | {machine}, {date} |"
    )
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
