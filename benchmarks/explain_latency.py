"""POST /explain against POST /invocations: one text per request, on the same champion and the same server.

    python benchmarks/explain_latency.py [--requests 30] [--rounds 3] [--steps 32] [--project DIR]

Without --project it builds a throwaway project like the reliability suite's (the built-in sample, the tiny model,
`textops run`). One `textops serve` (serve.runtime as in params: ONNX by default, so /explain loads its PyTorch
copy on the first call, which is timed apart as `first_explain_s`); then ROUNDS alternating blocks of REQUESTS
requests of each route over one kept-alive connection, so that load from other jobs hits both alike; and a block
of /invocations while another client sends /explain back to back (`/invocations while explaining`: what an
explanation costs the answers beside it). Prints a Markdown row for BENCHMARKS.md and the raw figures as JSON.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import tests_path  # noqa: F401  (tests/ on sys.path: `support`, shared with the tests)
from support import champion_project, serving

TEXT = "a wonderful film, although the second half drags on far too long"


def timed_calls(port: int, path: str, n: int) -> list[float]:
    """Seconds of N requests of TEXT to PATH over one kept-alive connection (each must answer 200)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    body = json.dumps({"inputs": [TEXT]})
    out = []
    for _ in range(n):
        start = time.perf_counter()
        conn.request("POST", path, body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        answer = response.read()
        out.append(time.perf_counter() - start)
        assert response.status == 200, answer[:300]
    conn.close()
    return out


def while_explaining(port: int, n: int) -> list[float]:
    """N /invocations timed while another client keeps /explain busy."""
    done = threading.Event()

    def explainer() -> None:
        while not done.is_set():
            timed_calls(port, "/explain", 1)

    thread = threading.Thread(target=explainer)
    thread.start()
    time.sleep(0.5)
    try:
        return timed_calls(port, "/invocations", n)
    finally:
        done.set()
        thread.join()


def measure(root: Path, requests: int, rounds: int, steps: int) -> dict:
    with serving(root, "-S", f"serve.explain_steps={steps}", timeout=600) as server:
        start = time.perf_counter()
        timed_calls(server.port, "/explain", 1)
        first = time.perf_counter() - start
        times: dict[str, list[float]] = {"/invocations": [], "/explain": []}
        for _ in range(rounds):
            for path in ("/invocations", "/explain"):
                times[path] += timed_calls(server.port, path, requests)
        times["/invocations while explaining"] = while_explaining(server.port, requests * rounds)
    figures = {
        path: {"p50_ms": float(np.percentile(t, 50)) * 1000, "p95_ms": float(np.percentile(t, 95)) * 1000}
        for path, t in times.items()
    }
    return {"requests": requests * rounds, "steps": steps, "first_explain_s": first, **figures}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=32)
    parser.add_argument("--project", type=Path, default=None)
    args = parser.parse_args()
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    if args.project:
        figures = measure(args.project.resolve(), args.requests, args.rounds, args.steps)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            figures = measure(champion_project(Path(tmp) / "proj"), args.requests, args.rounds, args.steps)
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    load = os.getloadavg()
    f, e, i, b = figures, figures["/explain"], figures["/invocations"], figures["/invocations while explaining"]
    print(
        f"| {f['requests']} × 1 text, {f['steps']} steps | {e['p50_ms']:.0f} | {e['p95_ms']:.0f} | {i['p50_ms']:.1f} "
        f"| {i['p95_ms']:.1f} | {b['p50_ms']:.1f} | {b['p95_ms']:.1f} | {f['first_explain_s']:.1f} s "
        f"| {platform.machine()}, {os.cpu_count()} CPUs, load {load[0]:.1f}, {date} |"
    )
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
