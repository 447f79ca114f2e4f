"""What `textops monitor` costs: wall time of the command on files of 1,000 to 100,000 texts.

    python benchmarks/monitor.py [--rows 1000 10000] [--keep DIR | --project EXISTING_CHAMPION_PROJECT]

Builds a throwaway project with a champion (support.champion_project: the built-in sample, the tiny
model, FAST params), writes labelled files of the same generator with another seed (the no-drift case, so every
check runs, performance included), and times `textops monitor FILE --json` as a user runs it: with the default
`monitor.sample_size` (2,000 rows of each side) and with the sample size set to the whole file. Prints Markdown
table rows: rows, sample size, the command's wall time, the monitor's own time (after the file is read:
the champion's data from the DVC cache, the model, encoding both sides, the tests, the report and MLflow run).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import tests_path  # noqa: F401  (tests/ on sys.path: `support`, shared with the tests)
from support import champion_project

from textops.data.sample import make_sample


def timed_monitor(root: Path, path: Path, *overrides: str) -> tuple[float, dict]:
    exe = Path(sys.executable).with_name("textops")
    start = time.perf_counter()
    proc = subprocess.run(
        [str(exe), "monitor", str(path), "--json", *overrides], cwd=root, capture_output=True, text=True, check=True
    )
    return time.perf_counter() - start, json.loads(proc.stdout)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--keep", type=Path, help="build the project here and keep it (default: a temp dir)")
    parser.add_argument("--project", type=Path, help="an existing champion project to use instead of building one")
    args = parser.parse_args()
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    base = args.keep or Path(tempfile.mkdtemp(prefix="textops-bench-monitor-"))
    start = time.perf_counter()
    root = args.project.resolve() if args.project else champion_project(base / "proj")
    print(f"champion project ready in {time.perf_counter() - start:.1f} s at {root}", file=sys.stderr)
    print(
        f"{platform.node()} {platform.machine()} {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )
    print("| texts | rows compared (`monitor.sample_size`) | `textops monitor` wall s | monitor's own s | drift |")
    print("|---:|---:|---:|---:|---|")
    for rows in args.rows:
        path = base / f"new-{rows}.csv"
        make_sample(rows, seed=99).to_csv(path, index=False)
        for size in (None, rows):
            # FAST caps files at 2 MB (the tests' guard); 100,000 texts are 6.6 MB
            overrides = ("-S", "data.max_file_mb=200", *(("-S", f"monitor.sample_size={size}") if size else ()))
            wall, result = timed_monitor(root, path, *overrides)
            compared = f"{result['rows']:,} ({size or 'default 2000'})"
            print(
                f"| {rows:,} | {compared} | {wall:.1f} | {result['seconds']:.1f} | {result['kinds'] or 'none'} |",
                flush=True,
            )
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
