"""How long the temporary Prefect server of an in-process `textops run` takes to answer, in a new project (a fresh
database: Prefect's migrations) and with the migrated template textops keeps in the user's cache.

    python benchmarks/prefect_start.py [--repeats 3]

Each round starts the server three ways, each in a new PREFECT_HOME: a fresh database with no template, a fresh
database seeded from the template, and the same home again (an existing project's second run).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from textops.core.env import set_offline_env


def start(home: Path, log: Path) -> float:
    from textops.runtime.prefect_server import temporary_server

    began = time.perf_counter()
    with temporary_server(home, log):
        return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    set_offline_env()
    times: dict[str, list[float]] = {"fresh, no template": [], "fresh, from the template": [], "existing": []}
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        for i in range(args.repeats):
            os.environ["XDG_CACHE_HOME"] = str(base / f"cache-{i}")  # no template yet
            times["fresh, no template"].append(start(base / f"a{i}", base / "log"))  # saves the template
            times["fresh, from the template"].append(start(base / f"b{i}", base / "log"))
            times["existing"].append(start(base / f"b{i}", base / "log"))
    for name, values in times.items():
        print(f"{name:<26} median {statistics.median(values):6.1f} s   runs {', '.join(f'{v:.1f}' for v in values)}")


if __name__ == "__main__":
    main()
