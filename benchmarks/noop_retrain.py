"""The no-op retrain: `textops run` when data and params equal the champion's ("nothing to retrain").

Builds a throwaway project (`support`, tests/support: FAST params, the sample) with one `textops run`, then times, each
in a fresh interpreter: `textops run` again (the CLI's whole no-op path), the quick check alone
(`noop.quick_nothing_to_retrain`, the SQLite store read directly) and MLflow's check alone
(`registry.noop.nothing_to_retrain`, what the CLI falls back to), and lists what the no-op imports. Prints one JSON
line.

    OMP_NUM_THREADS=1 python benchmarks/noop_retrain.py --repeats 5
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
from support import FAST, make_project, set_params, textops

CHECK = (
    "import sys, time; from pathlib import Path; start = time.perf_counter()\n"
    "from textops.core.config import load_params\n"
    "from textops.{module} import {function}\n"
    "message = {function}(Path.cwd(), load_params('params.yaml'))\n"
    "print(time.perf_counter() - start, bool(message), sorted(m for m in ('mlflow', 'prefect', 'torch', 'dvc') "
    "if m in sys.modules))\n"
)


def timed(cmd: list[str], root: Path) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True, check=True)
    return time.perf_counter() - start, proc.stdout


def check(root: Path, module: str, function: str) -> dict:
    """One check in a fresh interpreter: its seconds (imports included), its answer, the heavy modules it loaded."""
    _, out = timed([sys.executable, "-c", CHECK.format(module=module, function=function)], root)
    seconds, unchanged, heavy = out.strip().split(" ", 2)
    return {"s": round(float(seconds), 3), "nothing_to_retrain": unchanged == "True", "heavy_imports": heavy}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="textops-noop-") as tmp:
        print(json.dumps(measure(make_project(Path(tmp) / "proj"), args.repeats)))
    return 0


def measure(root: Path, repeats: int) -> dict:
    set_params(root, FAST)
    first = textops(root, "run").stdout
    assert "now the champion" in first, first
    exe = str(Path(sys.executable).with_name("textops"))
    runs = []
    for _ in range(repeats):
        seconds, out = timed([exe, "run"], root)
        assert "nothing to retrain" in out, out
        runs.append(round(seconds, 2))
    help_s = [round(timed([exe, "--help"], root)[0], 2) for _ in range(repeats)]
    return {
        "benchmark": "noop-retrain",
        "textops_run_s": runs,
        "textops_run_median_s": statistics.median(runs),
        "textops_help_median_s": statistics.median(help_s),
        "quick_check": check(root, "registry.noop", "quick_nothing_to_retrain"),
        "mlflow_check": check(root, "registry.registry", "nothing_to_retrain"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "load_average": os.getloadavg()[0],
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


if __name__ == "__main__":
    sys.exit(main())
