"""What a shadow challenger costs the served answers: `textops serve` with serve.shadow off and on, the same
champion, the challenger a second registered version (a real second model to load and run).

    python benchmarks/serve_shadow.py [--base tiny|minilm] [--requests 300] [--rounds 2] [--gap-ms 0]
        [--clients 1] [--fractions 1,0.25] [--project DIR]

For each round, a server with shadow off, then one with shadow on at each serve.shadow_fraction of FRACTIONS
(alternating, so load from other jobs hits all alike): REQUESTS POST /invocations of one text, shared by CLIENTS
threads, each over its own kept-alive connection, back to back (GAP_MS idle before each, not counted); p50 and p99
of the answer's latency, and how many requests the shadow scored or skipped (by reason, from /metrics). The
shadow scores a sample of the requests (serve.shadow_fraction) after the answer is sent, on its own thread at a
lower CPU priority, and none answered while another request is in flight. Prints a Markdown table and the raw
figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import tests_path  # noqa: F401  (tests/ on sys.path: `support`, shared with the tests)
from serve_latency import Rest, build, percentile, second_version  # benchmarks/ is on sys.path


def shadow_counts(exposed: str) -> dict[str, float]:
    """Texts and requests the shadow scored, and requests it skipped by reason, from /metrics."""
    found: dict[str, float] = {"texts": 0.0, "scored": 0.0}
    for line in exposed.splitlines():
        if line.startswith("textops_shadow_texts_total{"):
            found["texts"] += float(line.rsplit(" ", 1)[1])
        elif line.startswith("textops_shadow_scored_total "):
            found["scored"] = float(line.rsplit(" ", 1)[1])
        elif m := re.match(r'textops_shadow_skipped_total\{reason="(\w+)"\} (\S+)', line):
            found[f"skipped_{m.group(1)}"] = float(m.group(2))
    return found


def client_loop(port: int, n: int, gap_ms: float, latencies: list[float]) -> None:
    rest = Rest(port)
    for i in range(n):
        if gap_ms:
            time.sleep(gap_ms / 1000)
        start = time.perf_counter()
        rest([f"a short review to score, number {i}"])
        latencies.append(time.perf_counter() - start)


def one_server(root: Path, fraction: float | None, requests: int, gap_ms: float, clients: int) -> dict:
    """A server with the shadow off (FRACTION None) or on at serve.shadow_fraction FRACTION, under CLIENTS."""
    from support import serving, wait_for

    shadow = ("-S", "serve.shadow=true", "-S", f"serve.shadow_fraction={fraction}") if fraction is not None else ()
    with serving(root, "-S", "serve.poll_seconds=1", *shadow) as server:
        if fraction is not None:
            wait_for(lambda: server.version().get("shadow"), 300, "the shadow loaded")
        latencies: list[float] = []
        threads = [
            threading.Thread(target=client_loop, args=(server.port, requests // clients, gap_ms, latencies))
            for _ in range(clients)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        _, _, exposed = server.get("/metrics")
    return {
        "p50_ms": 1000 * percentile(latencies, 50),
        "p99_ms": 1000 * percentile(latencies, 99),
        "shadow": shadow_counts(exposed.decode()),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", default="tiny")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--gap-ms", type=float, default=0.0)
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--fractions", default="1,0.25", help="serve.shadow_fraction values, comma-separated")
    parser.add_argument("--project")
    args = parser.parse_args()
    fractions = [float(f) for f in args.fractions.split(",")]
    root = Path(args.project or tempfile.mkdtemp(prefix="textops-shadow-")) / "proj"
    if not (root / "params.yaml").exists():
        build(root, args.base)
    from textops.adapters.tracking import connect
    from textops.core.config import load_params

    params = load_params(root / "params.yaml")
    challenger = second_version(root, params)
    session = connect(root, params, experiment=False)
    session.client.set_registered_model_alias(session.model_name, "challenger", challenger)
    session.client.set_registered_model_alias(session.model_name, "champion", "1")
    keys = ["off", *(f"on {f:g}" for f in fractions)]
    rounds = []
    for _ in range(args.rounds):
        measured = {"off": one_server(root, None, args.requests, args.gap_ms, args.clients)}
        for f in fractions:
            measured[f"on {f:g}"] = one_server(root, f, args.requests, args.gap_ms, args.clients)
        rounds.append(measured)
    summary = {
        "base": args.base,
        "requests": args.requests,
        "clients": args.clients,
        "gap_ms": args.gap_ms,
        "rounds": rounds,
        "p50_ratio_on_off": {k: [r[k]["p50_ms"] / r["off"]["p50_ms"] for r in rounds] for k in keys[1:]},
        "p99_ratio_on_off": {k: [r[k]["p99_ms"] / r["off"]["p99_ms"] for r in rounds] for k in keys[1:]},
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "load": os.getloadavg(),
        "date": datetime.now(timezone.utc).isoformat(timespec="minutes"),
    }
    print(
        "| shadow | p50 ms (per round) | p99 ms (per round) | p99 on / off | shadowed requests |\n|---|---|---|---|---|"
    )
    for key in keys:
        p50 = ", ".join(f"{r[key]['p50_ms']:.2f}" for r in rounds)
        p99 = ", ".join(f"{r[key]['p99_ms']:.2f}" for r in rounds)
        ratio = ", ".join(f"{x:.2f}x" for x in summary["p99_ratio_on_off"][key]) if key != "off" else ""
        scored = ", ".join(f"{r[key]['shadow']['scored']:g}" for r in rounds) if key != "off" else ""
        print(f"| {key} | {p50} | {p99} | {ratio} | {scored} |")
    print(json.dumps(summary, default=float))


if __name__ == "__main__":
    main()
