"""The registry commands' wall time: `textops status` and `textops model list` (read from the project's SQLite
store directly, `registry.sqlstore`, when sure) and `textops model promote` (a write: MLflow's client), each
in a fresh interpreter, with whether MLflow was imported. Prints one JSON line.

Builds a throwaway project (`support`, tests/support: FAST params, the sample, one `textops run`) unless --project names
one with a champion. To compare two checkouts on the same store, run it twice with --project, PYTHONPATH set to
each checkout's src/:

    OMP_NUM_THREADS=1 python benchmarks/registry_commands.py --repeats 5 [--project PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import tests_path  # noqa: F401  (tests/ on sys.path: `support`, shared with the tests)

COMMANDS = {"status": ["status"], "model_list": ["model", "list"]}


def timed(args: list[str], root: Path) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, *args], cwd=root, capture_output=True, text=True, check=True)
    return time.perf_counter() - start, proc


def imports_mlflow(cmd: list[str], root: Path) -> bool:
    _, proc = timed(["-X", "importtime", "-m", "textops", *cmd], root)
    return any(line.rsplit("|", 1)[-1].strip().startswith("mlflow") for line in proc.stderr.splitlines())


def measure(root: Path, repeats: int, version: str) -> dict:
    commands = {**COMMANDS, "model_promote": ["model", "promote", version, "--reason", "benchmark"]}
    out: dict = {"benchmark": "registry-commands", "textops": str(Path(__import__("textops").__file__).parent)}
    for name, cmd in commands.items():
        runs = [round(timed(["-m", "textops", *cmd], root)[0], 2) for _ in range(repeats)]
        out[name] = {"s": runs, "median_s": statistics.median(runs), "imports_mlflow": imports_mlflow(cmd, root)}
    return out | {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "load_average": os.getloadavg()[0],
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--project", type=Path, help="A project with a champion (default: a throwaway one).")
    parser.add_argument("--version", default="1", help="The version `model promote` promotes (default 1).")
    args = parser.parse_args()
    if args.project:
        print(json.dumps(measure(args.project.resolve(), args.repeats, args.version)))
        return 0
    from support import FAST, make_project, set_params, textops

    with tempfile.TemporaryDirectory(prefix="textops-registry-") as tmp:
        root = make_project(Path(tmp) / "proj")
        set_params(root, FAST)
        assert "now the champion" in textops(root, "run").stdout
        print(json.dumps(measure(root, args.repeats, args.version)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
