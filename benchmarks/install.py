"""Where the install time goes: a fresh virtualenv, then each step of the README's install timed on its own (the
venv, torch's CPU build, the default `pip install -e .`, then the test extras), with the virtualenv's size after
each, the packages each step added, and every package pip built from a source distribution (no wheel). Prints
one JSON line.

    python benchmarks/install.py [--keep DIR]

The pip cache is off (`--no-cache-dir`), so each run downloads (here: from the machine's package mirror) and
unpacks as a first install does.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def size_mb(path: Path) -> float:
    return round(sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink()) / 2**20, 1)


def packages(python: Path) -> set[str]:
    out = subprocess.run([str(python), "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True)
    return {line.split("==")[0].lower() for line in out.stdout.splitlines() if "==" in line}


def step(name: str, cmd: list[str], venv: Path, python: Path, before: set[str]) -> tuple[dict, set[str]]:
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if proc.returncode:
        sys.exit(f"{name} failed: {proc.stderr[-2000:]}")
    wall = time.monotonic() - t0
    after = packages(python) if python.exists() else set()
    built = sorted(set(re.findall(r"Building wheel for (\S+)", proc.stdout + proc.stderr)) - {"textops"})
    return {
        "step": name,
        "wall_s": round(wall, 1),
        "venv_mb": size_mb(venv),
        "packages_added": len(after - before),
        "built_from_source": built,
    }, after


def main() -> None:
    keep = sys.argv[sys.argv.index("--keep") + 1] if "--keep" in sys.argv else None
    base = Path(keep or tempfile.mkdtemp(prefix="textops-install-"))
    venv = base / ".venv"
    python = venv / "bin" / "python"
    pip = [str(python), "-m", "pip", "install", "--no-cache-dir", "-v"]
    steps, have = [], set()
    plan = [
        ("venv", [sys.executable, "-m", "venv", str(venv)]),
        ("torch (CPU build)", [*pip, "torch==2.13.0"]),
        ("pip install -e . (the default run)", [*pip, "-e", "."]),
        ("pip install -e '.[dev]' (the tests' extras on top)", [*pip, "-e", ".[dev]"]),
    ]
    try:
        for name, cmd in plan:
            result, have = step(name, cmd, venv, python, have)
            steps.append(result)
            print(json.dumps(result), file=sys.stderr, flush=True)
    finally:
        if not keep:
            shutil.rmtree(base, ignore_errors=True)
    print(
        json.dumps(
            {
                "steps": steps,
                "total_s": round(sum(s["wall_s"] for s in steps), 1),
                "machine": f"{platform.machine()}, {os.cpu_count()} cores",
                "load": os.getloadavg()[0],
                "date": time.strftime("%Y-%m-%d"),
                "python": platform.python_version(),
            }
        )
    )


if __name__ == "__main__":
    main()
