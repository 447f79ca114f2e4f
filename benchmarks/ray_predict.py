"""Batch scoring in-process against Ray (`textops predict --engine ray`), in one run on the same texts and model.

    python benchmarks/ray_predict.py [--rows 20000] [--base tiny|minilm] [--project DIR]

Builds a throwaway project with a champion (the built-in sample; a short fine-tune of model.base), writes ROWS
texts of SST-2's train.tsv (or the built-in sample's generator where SST-2 is absent) to a CSV, then times:
- `textops predict` in this process's way (one process, serve.runtime);
- `--engine ray` on a local Ray started by the command, 1 actor, then 2 actors (one CPU each);
- `--engine ray --address` on a cluster of two nodes of one CPU each plus the head's CPU for the reads
  (`ray start` processes on 127.0.0.1), 2 actors.
Each is the wall time of the whole command (Ray's start, the actors' model loads and the writing included), and
the labels of each Ray run are checked against the in-process ones. Prints a Markdown table and JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import tests_path  # noqa: F401  (tests/ on sys.path: `support`, shared with the tests)


def texts(rows: int) -> list[str]:
    from train_sst2 import SST2  # benchmarks/ is on sys.path

    if (SST2 / "train.tsv").exists():
        return pd.read_csv(SST2 / "train.tsv", sep="\t", quoting=3)["sentence"].astype(str).head(rows).tolist()
    from textops.data.sample import make_sample

    return make_sample(rows, 7)["text"].tolist()


def timed(root: Path, *args: str) -> float:
    from support import textops

    start = time.monotonic()
    textops(root, "predict", *args, timeout=7200)
    return time.monotonic() - start


def two_nodes(temp: str) -> tuple[str, list]:
    ray = str(Path(sys.executable).with_name("ray"))
    from support import free_port, wait_for

    port = free_port()
    common = ["--block", "--disable-usage-stats", "--node-ip-address", "127.0.0.1"]
    procs = [
        subprocess.Popen(
            [
                ray,
                "start",
                "--head",
                "--port",
                str(port),
                "--num-cpus",
                "1",
                "--temp-dir",
                temp,
                "--include-dashboard=false",
                *common,
            ],
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    ]

    def listening() -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    wait_for(listening, 300, "the Ray head")
    procs.append(
        subprocess.Popen(
            [ray, "start", "--address", f"127.0.0.1:{port}", "--num-cpus", "2", *common],
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    )
    address = f"127.0.0.1:{port}"

    def two_alive() -> bool:
        code = f"import ray; ray.init(address={address!r}); print(sum(n['Alive'] for n in ray.nodes()))"
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
        return proc.returncode == 0 and proc.stdout.strip().splitlines()[-1:] == ["2"]

    wait_for(two_alive, 300, "two Ray nodes", interval=3)
    return address, procs


def main() -> None:
    from serve_latency import build

    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--base", default="tiny")
    parser.add_argument("--project")
    args = parser.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    root = Path(args.project or tempfile.mkdtemp(prefix="textops-ray-bench-")) / "proj"
    if not (root / "params.yaml").exists():
        build(root, args.base)
    source = root.parent / "texts.csv"
    pd.DataFrame({"text": texts(args.rows)}).to_csv(source, index=False)
    out = {"in_process_s": timed(root, str(source), "-o", str(root.parent / "local.csv"))}
    for actors in (1, 2):
        out[f"ray_local_{actors}_actor_s"] = timed(
            root,
            str(source),
            "-o",
            str(root.parent / f"ray{actors}.csv"),
            "--engine",
            "ray",
            "-S",
            f"ray.actors={actors}",
        )
    temp = tempfile.mkdtemp(prefix="rayb", dir="/tmp")
    address, procs = two_nodes(temp)
    try:
        out["ray_two_nodes_2_actors_s"] = timed(
            root,
            str(source),
            "-o",
            str(root.parent / "ray_nodes.csv"),
            "--engine",
            "ray",
            "--address",
            address,
            "-S",
            "ray.actors=2",
        )
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            proc.wait(timeout=120)
    local = pd.read_csv(root.parent / "local.csv")["label"]
    for name in ("ray1", "ray2", "ray_nodes"):
        assert pd.read_csv(root.parent / f"{name}.csv")["label"].equals(local), f"{name}: labels differ"
    out.update(
        rows=args.rows,
        base=args.base,
        machine=f"{platform.machine()}, {os.cpu_count()} cores",
        load=os.getloadavg(),
        date=datetime.now(timezone.utc).isoformat(timespec="minutes"),
    )
    base = out["in_process_s"]
    print("| how | wall s | texts/s | vs in-process |\n|---|---|---|---|")
    for key in ("in_process_s", "ray_local_1_actor_s", "ray_local_2_actor_s", "ray_two_nodes_2_actors_s"):
        print(f"| {key[:-2]} | {out[key]:.1f} | {args.rows / out[key]:.0f} | {out[key] / base:.2f} |")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
