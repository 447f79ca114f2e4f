"""Serving figures: `textops serve` (REST) against in-process `predict` on the same texts, and the hot swap.

    python benchmarks/serve_latency.py [--base minilm] [--requests 300] [--batches 30] [--rounds 3] [--project DIR]

Builds a throwaway project (built-in sample, a short fine-tune of model.base so a champion exists, and a second
registered version: a copy of the first's artifacts, a real second load), then measures in one run:
- `textops serve` start time (process start until GET /ping answers, model load included);
- p50/p99 latency of POST /invocations with 1 text over one kept-alive HTTP connection, and of the loaded pyfunc's
  `predict` in this process, back to back and idle 1 ms before each call (the 1 ms not counted); ROUNDS
  alternating blocks of each, so load from other jobs hits both alike;
- throughput (texts/s) with 32 texts per request, the same way;
- the swap: CLIENTS clients send 1-text requests all along while the champion moves twice, once picked up by the
  poll (serve.poll_seconds=2) and once by POST /reload: the time from the alias move to the first answer from
  the new version, the load + warm-up time the server reports, errors, and latency p99 during each swap against the
  steady state before it.
Both sides run with OMP_NUM_THREADS (default 1, --threads). Prints a Markdown table and the raw figures as JSON.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import tests_path  # noqa: F401  (tests/ on sys.path: `support`, shared with the tests)


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def timed(fn, n: int) -> list[float]:
    out = []
    for i in range(n):
        start = time.perf_counter()
        fn(i)
        out.append(time.perf_counter() - start)
    return out


class Rest:
    """POST /invocations over one kept-alive connection (opened again for each block of measurements: the
    server closes a connection idle for 5 s, uvicorn's default, while the in-process block runs)."""

    def __init__(self, port: int):
        self.port = port
        self.reconnect()

    def reconnect(self) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        self(["warm the new connection"])

    def __call__(self, texts: list[str]) -> None:
        self.conn.request("POST", "/invocations", json.dumps({"inputs": texts}), {"Content-Type": "application/json"})
        resp = self.conn.getresponse()
        answer = resp.read()
        assert resp.status == 200, answer[:300]


def build(root: Path, base: str) -> None:
    from support import make_project, set_params, textops

    make_project(root)
    # A short fine-tune: the figures measure inference, not accuracy.
    set_params(
        root,
        {
            "sample": {"rows": 1000},
            "model": {"base": base, "max_length": 128},
            "train": {"epochs": 1, "max_train_samples": 128, "batch_size": 16, "save_steps": 1000},
            "promotion": {"floor": 0.0, "beat_baseline": False},
        },
    )
    for step in ("sample", "preprocess", "validate", "train", "evaluate", "register"):
        textops(root, step, timeout=3600)


def second_version(root: Path, params) -> str:
    """Register a copy of v1's artifacts as a new version (a real second load for the swap); an existing v2."""
    import mlflow.artifacts

    from textops.adapters.tracking import connect

    session = connect(root, params, experiment=False)
    name = session.model_name
    if len(session.client.search_model_versions(f"name='{name}'")) > 1:
        return "2"
    with session.active():
        path = mlflow.artifacts.download_artifacts(f"models:/{name}/1", dst_path=str(root / "artifacts" / "copy"))
    run_id = session.client.get_model_version(name, "1").run_id
    return str(session.client.create_model_version(name, source=str(Path(path).resolve()), run_id=run_id).version)


def steady_and_swaps(root: Path, params, server, texts: list[str], clients: int, version: str) -> dict:
    """Load from CLIENTS clients while the champion moves to VERSION (poll) and back to v1 (POST /reload). The
    alias is moved in this process with `textops.registry.promote` (what `textops model promote` runs), so the
    time of the move is known to the millisecond."""
    from support import background_load, request, wait_for

    from textops.registry.registry import promote

    marks = []
    with background_load(server.url, texts, clients=clients) as result:
        time.sleep(10)
        for target, how in ((version, "poll"), ("1", "reload")):
            before = time.time()
            promote(root, params, target, "benchmark")
            moved = time.time()
            if how == "reload":
                status, _, body = request(server.url, "POST", "/reload", timeout=300)
                assert status == 200, body
            else:
                wait_for(lambda t=target: server.version()["model_version"] == t, 300, "the swap", interval=0.05)
            marks.append(
                {
                    "how": how,
                    "target": target,
                    "before": before,
                    "moved": moved,
                    "load_seconds": server.version()["load_seconds"],
                }
            )
            time.sleep(10)
    out = {"errors": result["errors"], "requests": len(result["responses"])}
    responses = result["responses"]
    for m in marks:
        first = min(r["start"] for r in responses if r["version"] == m["target"] and r["start"] >= m["before"])
        swapped = max(first, m["before"])
        steady = [r["end"] - r["start"] for r in responses if m["before"] - 10 <= r["start"] < m["before"]]
        during = [r["end"] - r["start"] for r in responses if m["before"] <= r["start"] <= swapped + 1]
        out[m["how"]] = {
            "alias_move_to_new_answers_s": swapped - m["before"],
            "load_and_warm_s": m["load_seconds"],
            "steady_p50_ms": 1000 * percentile(steady, 50),
            "steady_p99_ms": 1000 * percentile(steady, 99),
            "during_swap_p99_ms": 1000 * percentile(during, 99),
            "during_swap_requests": len(during),
        }
    return out


def measure(args, root: Path) -> dict:
    import pandas as pd
    from support import serving

    from textops.adapters.tracking import connect
    from textops.core.config import load_params
    from textops.modeling.predict import load_model

    params = load_params(root / "params.yaml")
    load_before = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    texts = pd.read_parquet(root / params.data.clean_dir / "test.parquet")["text"].astype(str).tolist()
    texts = (texts * (1 + (32 * args.batches) // max(len(texts), 1)))[: max(32 * args.batches, args.requests)]
    version = second_version(root, params)
    model = load_model(connect(root, params, experiment=False), f"models:/{params.mlflow.registered_model}/1")
    local = lambda batch: model.predict(pd.DataFrame({"text": batch}))  # noqa: E731
    figures: dict = {
        "local_one": [],
        "rest_one": [],
        "local_batch": [],
        "rest_batch": [],
        "starts": [],
        "local_paused_one": [],
        "load_before": load_before,
    }
    for _ in range(args.starts - 1):  # start times; the last start is the one measured below
        with serving(root, "-S", "serve.poll_seconds=3600", timeout=600) as server:
            figures["starts"].append(server.started)
    with serving(root, "-S", "serve.poll_seconds=2", timeout=600) as server:
        figures["starts"].append(server.started)
        rest = Rest(server.port)
        for call in (local, rest):
            timed(lambda i, c=call: c([texts[i % len(texts)]]), 20)  # warm-up
        for _ in range(args.rounds):
            n = args.requests // args.rounds
            for name, call in (("local", local), ("rest", rest)):
                if call is rest:
                    rest.reconnect()
                figures[f"{name}_one"] += timed(lambda i, c=call: c([texts[i % len(texts)]]), n)
                figures[f"{name}_batch"] += timed(lambda i, c=call: c(texts[32 * i : 32 * i + 32]), args.batches)
            # in-process again, idle 1 ms before each call as a server is between requests: on a shared VM a core
            # that idles is handed to other work, and the next call starts with cold caches
            figures["local_paused_one"] += timed(lambda i: (time.sleep(0.001), local([texts[i % len(texts)]])), n)
        figures["swap"] = steady_and_swaps(root, params, server, texts[:200], args.clients, version)
    return figures


def report(args, figures: dict) -> None:
    import torch

    f = {
        "rest_p50_ms": 1000 * percentile(figures["rest_one"], 50),
        "rest_p99_ms": 1000 * percentile(figures["rest_one"], 99),
        "local_p50_ms": 1000 * percentile(figures["local_one"], 50),
        "local_p99_ms": 1000 * percentile(figures["local_one"], 99),
        "local_paused_p50_ms": 1000 * (percentile(figures["local_paused_one"], 50) - 0.001),
        "local_paused_p99_ms": 1000 * (percentile(figures["local_paused_one"], 99) - 0.001),
        "rest_texts_per_s": 32 * len(figures["rest_batch"]) / sum(figures["rest_batch"]),
        "local_texts_per_s": 32 * len(figures["local_batch"]) / sum(figures["local_batch"]),
        "server_start_s": figures["starts"],
        "swap": figures["swap"],
    }
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    machine = (
        f"{platform.machine()}, {os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}, load average "
        f"{figures['load_before']} before the measurements, {load} after"
    )
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(
        f"\n`python benchmarks/serve_latency.py --base {args.base} --requests {args.requests} --batches "
        f"{args.batches} --rounds {args.rounds} --clients {args.clients}` — {machine}, {date}\n"
    )
    print("| measure | `textops serve` (REST) | in-process `predict` | REST / in-process |")
    print("|---|---|---|---|")
    for label, key in (("1 text per request, p50", "p50_ms"), ("1 text per request, p99", "p99_ms")):
        rest, local = f[f"rest_{key}"], f[f"local_{key}"]
        print(f"| {label} | {rest:.1f} ms | {local:.1f} ms | {rest / local:.2f}x |")
    for q in ("p50", "p99"):
        rest, local = f[f"rest_{q}_ms"], f[f"local_paused_{q}_ms"]
        print(
            f"| 1 text, {q}, in-process idle 1 ms before each call | {rest:.1f} ms | {local:.1f} ms | "
            f"{rest / local:.2f}x |"
        )
    rest, local = f["rest_texts_per_s"], f["local_texts_per_s"]
    print(f"| 32 texts per request, throughput | {rest:.0f} texts/s | {local:.0f} texts/s | {rest / local:.2f}x |")
    starts = ", ".join(f"{s:.1f}" for s in f["server_start_s"])
    print(f"| server start (process to /ping 200; {starts} s) | {np.median(f['server_start_s']):.1f} s | | |")
    swap = f["swap"]
    print(
        f"\nSwap under load ({args.clients} clients, 1 text each; {swap['requests']} requests, "
        f"{swap['errors']} errors)\n"
    )
    print(
        "| picked up by | alias move → answers from the new version | load + warm-up | p99 steady | p99 during swap |"
    )
    print("|---|---|---|---|---|")
    for how in ("poll", "reload"):
        s = swap[how]
        print(
            f"| {how} | {s['alias_move_to_new_answers_s']:.2f} s | {s['load_and_warm_s']:.2f} s | "
            f"{s['steady_p99_ms']:.1f} ms | {s['during_swap_p99_ms']:.1f} ms ({s['during_swap_requests']} req.) |"
        )
    print(json.dumps(f, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", default="minilm")
    parser.add_argument("--requests", type=int, default=300, help="1-text requests for the latency figures")
    parser.add_argument("--batches", type=int, default=30, help="32-text requests per round for the throughput")
    parser.add_argument("--rounds", type=int, default=3, help="alternating blocks of REST and in-process")
    parser.add_argument("--starts", type=int, default=3, help="server starts timed")
    parser.add_argument("--clients", type=int, default=4, help="clients sending requests during the swaps")
    parser.add_argument("--threads", default="1", help="OMP_NUM_THREADS for both sides")
    parser.add_argument("--project", type=Path, default=None, help="build the project here, or reuse it")
    args = parser.parse_args()
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    os.environ["OMP_NUM_THREADS"] = args.threads  # before torch is imported, here and in the server
    from textops.core.env import set_offline_env

    set_offline_env()
    if args.project is not None:
        root = args.project.resolve()
        if not (root / "params.yaml").exists():
            build(root, args.base)
        report(args, measure(args, root))
        return
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "proj"
        build(root, args.base)
        report(args, measure(args, root))


if __name__ == "__main__":
    main()
