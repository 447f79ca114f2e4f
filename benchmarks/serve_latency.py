"""Serving figures for the `minilm` model: REST latency and throughput against in-process `predict`.

    python benchmarks/serve_latency.py [--requests 200] [--batches 30] [--base minilm]

Builds a throwaway project (built-in sample, a short fine-tune of model.base so a champion exists),
then measures on the same texts:
- `mlflow models serve` start time (process start until GET /ping answers, model load included);
- p50/p99 latency of POST /invocations with 1 text, over one kept-alive HTTP connection;
- throughput (texts/s) of POST /invocations with 32 texts per request;
- the same two for the loaded pyfunc's `predict` in this process, and the server/in-process ratios.
Prints a Markdown table for BENCHMARKS.md and the raw figures as JSON.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import statistics
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from textops.config import load_params
from textops.predict import load_model
from textops.serve import start_server, stop_server, wait_ready
from textops.testing import make_project, set_params, textops
from textops.tracking import connect


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def timed(fn, n: int) -> list[float]:
    out = []
    for i in range(n):
        start = time.perf_counter()
        fn(i)
        out.append(time.perf_counter() - start)
    return out


def measure_rest(port: int, texts: list[str], requests: int, batches: int) -> tuple[list[float], list[float]]:
    """1-text latencies and 32-text batch times over one kept-alive HTTP connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def call(payload: list[str]) -> None:
        body = json.dumps({"inputs": payload})
        conn.request("POST", "/invocations", body, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        answer = resp.read()
        assert resp.status == 200, answer[:300]

    timed(lambda i: call([texts[i % len(texts)]]), 10)  # warm-up
    one = timed(lambda i: call([texts[i % len(texts)]]), requests)
    batch = timed(lambda i: call(texts[32 * i : 32 * i + 32]), batches)
    conn.close()
    return one, batch


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", default="minilm")
    parser.add_argument("--requests", type=int, default=200, help="1-text requests for the latency figures")
    parser.add_argument("--batches", type=int, default=30, help="32-text requests for the throughput figure")
    parser.add_argument("--starts", type=int, default=3, help="server starts timed")
    parser.add_argument("--port", type=int, default=5391)
    args = parser.parse_args()
    os.environ.pop("MLFLOW_TRACKING_URI", None)

    with tempfile.TemporaryDirectory() as tmp:
        root = make_project(Path(tmp) / "proj")
        os.chdir(root)
        # A short fine-tune: the figures measure inference, not accuracy.
        set_params(
            root,
            {
                "sample": {"rows": 1000},
                "model": {"base": args.base, "max_length": 128},
                "train": {"epochs": 1, "max_train_samples": 128, "batch_size": 16, "save_steps": 1000},
                "promotion": {"floor": 0.0},
            },
        )
        for step in ("sample", "preprocess", "validate", "train", "evaluate", "register"):
            textops(root, step, timeout=3600)
        params = load_params(root / "params.yaml")
        texts = pd.read_parquet(root / params.data.clean_dir / "test.parquet")["text"].astype(str).tolist()
        texts = (texts * (1 + (32 * args.batches) // max(len(texts), 1)))[: max(32 * args.batches, args.requests)]

        session = connect(root, params, experiment=False)
        model = load_model(session, f"models:/{params.mlflow.registered_model}@champion")
        one = lambda i: model.predict(pd.DataFrame({"text": [texts[i % len(texts)]]}))  # noqa: E731
        batch = lambda i: model.predict(pd.DataFrame({"text": texts[32 * i : 32 * i + 32]}))  # noqa: E731
        timed(one, 10)
        local_one = timed(one, args.requests)
        local_batch = timed(batch, args.batches)

        starts = []
        for k in range(args.starts):
            t0 = time.perf_counter()
            proc = start_server(root, params, port=args.port, log=open(Path(tmp) / f"serve{k}.log", "wb"))
            try:
                wait_ready(f"http://127.0.0.1:{args.port}", proc, timeout=600)
                starts.append(time.perf_counter() - t0)
                if k == args.starts - 1:  # measure on the last start
                    rest_one, rest_batch = measure_rest(args.port, texts, args.requests, args.batches)
            finally:
                stop_server(proc)

    figures = {
        "rest_p50_ms": 1000 * percentile(rest_one, 50),
        "rest_p99_ms": 1000 * percentile(rest_one, 99),
        "local_p50_ms": 1000 * percentile(local_one, 50),
        "local_p99_ms": 1000 * percentile(local_one, 99),
        "rest_texts_per_s": 32 * args.batches / sum(rest_batch),
        "local_texts_per_s": 32 * args.batches / sum(local_batch),
        "server_start_s_median": statistics.median(starts),
        "server_start_s_all": starts,
    }
    import torch

    machine = (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}"
    )
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    f = figures
    print(
        f"\n`python benchmarks/serve_latency.py --base {args.base} --requests {args.requests} "
        f"--batches {args.batches}` — {machine}, {date}\n"
    )
    print("| measure | `mlflow models serve` (REST) | in-process `predict` | REST / in-process |")
    print("|---|---|---|---|")
    print(
        f"| 1 text per request, p50 | {f['rest_p50_ms']:.1f} ms | {f['local_p50_ms']:.1f} ms | "
        f"{f['rest_p50_ms'] / f['local_p50_ms']:.2f}x |"
    )
    print(
        f"| 1 text per request, p99 | {f['rest_p99_ms']:.1f} ms | {f['local_p99_ms']:.1f} ms | "
        f"{f['rest_p99_ms'] / f['local_p99_ms']:.2f}x |"
    )
    print(
        f"| 32 texts per request, throughput | {f['rest_texts_per_s']:.0f} texts/s | "
        f"{f['local_texts_per_s']:.0f} texts/s | {f['rest_texts_per_s'] / f['local_texts_per_s']:.2f}x |"
    )
    print(f"| server start (process to /ping 200, median of {args.starts}) | {f['server_start_s_median']:.1f} s | | |")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
