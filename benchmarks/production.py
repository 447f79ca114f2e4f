"""Production-shape figures for BENCHMARKS.md ("Production shape").

1. Pipeline and no-op retrain: `textops run` (the training-pipeline flow) on the same data and params, with
   (a) the defaults: a SQLite MLflow store and Prefect's temporary in-process server, and (b) an MLflow server and
   a Prefect server, both on PostgreSQL, all on this machine; then `textops run` again ("nothing to retrain").
   Each in a fresh project; the servers' start-up is reported on its own.
2. Registry operations per second from 4 concurrent clients (processes), against the MLflow server on PostgreSQL
   and against the SQLite store of (1): reads (the champion alias's version) and writes (a tag on a version).
3. DDP: `textops train` in one process against `torchrun --standalone --nproc_per_node=2` (gloo on the CPU), same
   data and params: wall time, Trainer's samples/s and the test metrics of `textops evaluate`.

Usage: python benchmarks/production.py [--rows 2000] [--epochs 1] [--ops 200] [--ddp-rows 4000] [--skip ddp]
Prints Markdown tables; paste them into BENCHMARKS.md with the command, machine and date.
"""

from __future__ import annotations

import argparse
import datetime
import json
import multiprocessing
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import tests_path  # noqa: F401  (tests/ on sys.path: `support`, shared with the tests)
from support import FAST, make_project, set_params
from support.postgres import postgres
from support.servers import mlflow_server, prefect_server

BIN = Path(sys.executable).parent


def env_for(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "PREFECT_API_URL", "PREFECT_HOME")}
    return {**env, "OMP_NUM_THREADS": env.get("OMP_NUM_THREADS", "1"), **extra}


def timed(argv: list[str], cwd: Path, env: dict) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return wall, proc.stdout


def project(path: Path, rows: int, epochs: int) -> Path:
    root = make_project(path)
    set_params(
        root,
        FAST,
        {
            "sample": {"rows": rows},
            "train": {"epochs": epochs, "batch_size": 32, "save_steps": 1000},
            "promotion": {"floor": 0.0, "beat_baseline": False},
        },
    )
    return root


def pipeline_twice(root: Path, env: dict) -> tuple[float, float]:
    """(`textops run` wall, then the no-op `textops run` wall)."""
    first, out = timed([str(BIN / "textops"), "run"], root, env)
    assert "now the champion" in out, out
    noop, out = timed([str(BIN / "textops"), "run"], root, env)
    assert "nothing to retrain" in out, out
    return first, noop


# --------------------------------------------------------------------------------------------------
# registry operations


def _client_loop(uri: str, name: str, version: str, kind: str, ops: int, barrier, out) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(uri, uri)
    client.get_model_version_by_alias(name, "champion")  # connect and warm up outside the clock
    errors = 0
    barrier.wait()
    start = time.perf_counter()
    for i in range(ops):
        try:
            if kind == "read":
                client.get_model_version_by_alias(name, "champion")
            else:
                client.set_model_version_tag(name, version, f"bench.{os.getpid()}", str(i))
        except Exception:
            errors += 1
    out.put((time.perf_counter() - start, errors))


def registry_ops(uri: str, name: str, kind: str, clients: int, ops: int) -> tuple[float, int]:
    """(operations per second over all CLIENTS processes, errors)."""
    from mlflow import MlflowClient

    version = str(MlflowClient(uri, uri).get_model_version_by_alias(name, "champion").version)
    ctx = multiprocessing.get_context("spawn")
    barrier, out = ctx.Barrier(clients), ctx.Queue()
    procs = [
        ctx.Process(target=_client_loop, args=(uri, name, version, kind, ops, barrier, out)) for _ in range(clients)
    ]
    for p in procs:
        p.start()
    results = [out.get(timeout=1800) for _ in procs]
    for p in procs:
        p.join()
    slowest = max(r[0] for r in results)
    return clients * ops / slowest, sum(r[1] for r in results)


# --------------------------------------------------------------------------------------------------
# DDP


def ddp(work: Path, rows: int, epochs: int) -> list[dict]:
    root = make_project(work / "ddp")
    set_params(
        root,
        {"sample": {"rows": rows}, "train": {"epochs": epochs, "save_steps": 100000, "early_stopping_patience": 0}},
    )
    env = env_for()
    for stage in ("sample", "preprocess", "validate"):
        timed([str(BIN / "textops"), stage], root, env)
    cases = [
        ("1 process, 1 thread", [sys.executable], env),
        ("1 process, 2 threads", [sys.executable], {**env, "OMP_NUM_THREADS": "2"}),
        ("torchrun, 2 processes × 1 thread (gloo)", [str(BIN / "torchrun"), "--standalone", "--nproc_per_node=2"], env),
    ]
    rows_out = []
    for label, launcher, case_env in cases:
        shutil.rmtree(root / "artifacts/checkpoints", ignore_errors=True)
        wall, _ = timed([*launcher, "-m", "textops", "train"], root, case_env)
        timed([str(BIN / "textops"), "evaluate"], root, env)
        train = json.loads((root / "metrics/train.json").read_text())
        test = json.loads((root / "metrics/eval.json").read_text())
        rows_out.append(
            {
                "case": label,
                "wall": wall,
                "train_s": train["train_runtime_s"],
                "sps": train["train_samples_per_second"],
                "steps": train["global_step"],
                "accuracy": test["accuracy"],
                "macro_f1": test["macro_f1"],
            }
        )
    return rows_out


# --------------------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=2000)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--ops", type=int, default=200, help="registry operations per client")
    ap.add_argument("--ddp-rows", type=int, default=4000)
    ap.add_argument("--ddp-epochs", type=int, default=2)
    ap.add_argument("--skip", nargs="*", default=[], choices=["pipeline", "registry", "ddp"])
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="textops-bench-prod-"))
    print(
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.machine()}, "
        f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; work dir {work}\n"
    )
    try:
        if "pipeline" not in args.skip or "registry" not in args.skip:
            local = project(work / "sqlite", args.rows, args.epochs)
            local_times = pipeline_twice(local, env_for())
            with postgres() as pg, pg.database("mlflow") as mdb, pg.database("prefect") as pdb:
                start = time.perf_counter()
                with mlflow_server(mdb.url("postgresql+psycopg2"), work / "artifacts", work, workers=2) as ml:
                    ml_start = time.perf_counter() - start
                    start = time.perf_counter()
                    with prefect_server(pdb.url("postgresql+asyncpg"), work) as ps:
                        ps_start = time.perf_counter() - start
                        remote = project(work / "servers", args.rows, args.epochs)
                        env = env_for(
                            MLFLOW_TRACKING_URI=ml.url,
                            PREFECT_API_URL=ps.url,
                            PREFECT_HOME=str(work / "client-prefect"),
                        )
                        server_times = pipeline_twice(remote, env)
                        print("| measure | SQLite + in-process Prefect | PostgreSQL-backed MLflow + Prefect servers |")
                        print("|---|---:|---:|")
                        print(f"| `textops run` (whole pipeline) | {local_times[0]:.1f} s | {server_times[0]:.1f} s |")
                        print(
                            f"| no-op `textops run` (nothing to retrain) | {local_times[1]:.1f} s | "
                            f"{server_times[1]:.1f} s |"
                        )
                        print(
                            f"| server start-up (not in the rows above) | – | MLflow {ml_start:.1f} s, "
                            f"Prefect {ps_start:.1f} s |\n"
                        )
                        if "registry" not in args.skip:
                            registry_table(local, ml.url, args.ops)
        if "ddp" not in args.skip:
            print(
                "| training | wall (process) | Trainer train_runtime | samples/s | steps | test accuracy | "
                "test macro-F1 |"
            )
            print("|---|---:|---:|---:|---:|---:|---:|")
            for r in ddp(work, args.ddp_rows, args.ddp_epochs):
                print(
                    f"| {r['case']} | {r['wall']:.1f} s | {r['train_s']:.1f} s | {r['sps']:.1f} | {r['steps']} | "
                    f"{r['accuracy']:.4f} | {r['macro_f1']:.4f} |"
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def registry_table(local: Path, server_url: str, ops: int) -> None:
    from textops.adapters.tracking import tracking_uri
    from textops.core.config import load_params

    name = load_params(local / "params.yaml").mlflow.registered_model
    sqlite = tracking_uri(local, load_params(local / "params.yaml"))
    print("| registry operation | clients | SQLite store ops/s (errors) | MLflow server on PostgreSQL ops/s (errors) |")
    print("|---|---:|---:|---:|")
    for kind, label in (("read", "read: champion alias → version"), ("write", "write: a tag on a version")):
        for clients in (1, 4):
            a = registry_ops(sqlite, name, kind, clients, ops)
            b = registry_ops(server_url, name, kind, clients, ops)
            print(f"| {label} | {clients} | {a[0]:.0f} ({a[1]}) | {b[0]:.0f} ({b[1]}) |")
    print()


if __name__ == "__main__":
    main()
