"""Serving under load: the reliability suite's load (N requests of one text from C concurrent clients) against
`textops serve`, with the latency percentiles and throughput the test does not assert on.

    python benchmarks/serve_load.py [--requests 5000] [--clients 16] [--workers 1] [--project DIR]

Without --project it builds a throwaway project with the reliability suite's params (the built-in sample, the
tiny model, `textops run`), so the figures match what tests/reliability/test_serving.py exercises.
Prints a Markdown row for BENCHMARKS.md and the raw figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import tests_path  # noqa: F401  (tests/ on sys.path: `support`, shared with the tests)
from support import TEXTS, champion_project, load, serving


def measure(root: Path, requests: int, clients: int, workers: int) -> dict:
    with serving(root, "--workers", str(workers), timeout=600) as server:
        load(server.url, TEXTS, requests=200, clients=clients)  # warm-up
        t0 = time.perf_counter()
        result = load(server.url, TEXTS, requests=requests, clients=clients)
        wall = time.perf_counter() - t0
    lat = np.asarray(result["latencies"]) * 1000
    return {
        "requests": requests,
        "clients": clients,
        "workers": workers,
        "errors": result["errors"],
        "p50_ms": float(np.percentile(lat, 50)),
        "p99_ms": float(np.percentile(lat, 99)),
        "max_ms": float(lat.max()),
        "requests_per_s": requests / wall,
        "server_start_s": server.started,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--project", type=Path, default=None)
    args = parser.parse_args()
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    if args.project:
        figures = measure(args.project.resolve(), args.requests, args.clients, args.workers)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            figures = measure(champion_project(Path(tmp) / "proj"), args.requests, args.clients, args.workers)
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs"
    f = figures
    print(
        f"| {f['requests']:,} × 1 text, {f['clients']} clients, {f['workers']} worker(s) | {f['errors']} "
        f"| {f['p50_ms']:.1f} | {f['p99_ms']:.1f} "
        f"| {f['requests_per_s']:.0f} | {machine}, {date} |"
    )
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
