"""What a shadow challenger costs the served answers: `textops serve` with serve.shadow off and on, the same
champion, the challenger a second registered version (a real second model to load and run).

    python benchmarks/serve_shadow.py [--base tiny|minilm] [--requests 300] [--rounds 2] [--gap-ms 0] [--project DIR]

For each round, a server with shadow off, then one with shadow on (alternating, so load from other jobs hits both
alike): REQUESTS POST /invocations of one text over one kept-alive connection, back to back (GAP_MS idle before
each, not counted); p50 and p99 of the answer's latency. With shadow on, the shadow scores each request after its
answer is sent, on its own thread at a lower CPU priority, so back to back it competes with the next answer for
the CPU: the figure is the cost on a busy server. Prints a Markdown table and the raw figures as JSON.
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

from serve_latency import Rest, build, percentile, second_version  # benchmarks/ is on sys.path


def one_server(root: Path, shadow: bool, requests: int, gap_ms: float) -> dict:
    from textops.testing import serving, wait_for

    with serving(root, "-S", f"serve.shadow={str(shadow).lower()}", "-S", "serve.poll_seconds=1") as server:
        if shadow:
            wait_for(lambda: server.version().get("shadow"), 300, "the shadow loaded")
        rest = Rest(server.port)
        latencies = []
        for i in range(requests):
            if gap_ms:
                time.sleep(gap_ms / 1000)
            start = time.perf_counter()
            rest([f"a short review to score, number {i}"])
            latencies.append(time.perf_counter() - start)
        _, _, exposed = server.get("/metrics")
    shadowed = sum(
        float(line.rsplit(" ", 1)[1])
        for line in exposed.decode().splitlines()
        if line.startswith("textops_shadow_texts_total{")
    )
    return {
        "p50_ms": 1000 * percentile(latencies, 50),
        "p99_ms": 1000 * percentile(latencies, 99),
        "shadowed_texts": shadowed,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", default="tiny")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--gap-ms", type=float, default=0.0)
    parser.add_argument("--project")
    args = parser.parse_args()
    root = Path(args.project or tempfile.mkdtemp(prefix="textops-shadow-")) / "proj"
    if not (root / "params.yaml").exists():
        build(root, args.base)
    from textops.core.config import load_params
    from textops.core.tracking import connect

    params = load_params(root / "params.yaml")
    challenger = second_version(root, params)
    session = connect(root, params, experiment=False)
    session.client.set_registered_model_alias(session.model_name, "challenger", challenger)
    session.client.set_registered_model_alias(session.model_name, "champion", "1")
    rounds = [
        {
            "off": one_server(root, False, args.requests, args.gap_ms),
            "on": one_server(root, True, args.requests, args.gap_ms),
        }
        for _ in range(args.rounds)
    ]
    summary = {
        "base": args.base,
        "requests": args.requests,
        "gap_ms": args.gap_ms,
        "rounds": rounds,
        "p50_ratio_on_off": [r["on"]["p50_ms"] / r["off"]["p50_ms"] for r in rounds],
        "p99_ratio_on_off": [r["on"]["p99_ms"] / r["off"]["p99_ms"] for r in rounds],
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "load": os.getloadavg(),
        "date": datetime.now(timezone.utc).isoformat(timespec="minutes"),
    }
    print("| shadow | p50 ms (per round) | p99 ms (per round) |\n|---|---|---|")
    for key in ("off", "on"):
        p50 = ", ".join(f"{r[key]['p50_ms']:.2f}" for r in rounds)
        p99 = ", ".join(f"{r[key]['p99_ms']:.2f}" for r in rounds)
        print(f"| {key} | {p50} | {p99} |")
    print(json.dumps(summary, default=float))


if __name__ == "__main__":
    main()
