"""`textops tune`: one trial at a time against two at once, and what one trial costs against a plain training.

    python benchmarks/ray_tune.py [--trials 6] [--rows 4000] [--base tiny|minilm] [--project DIR]

Builds a throwaway project on the built-in sample (ROWS rows, cleaned and validated), times `textops train` once
(the same training a trial runs, outside Ray), then `textops tune` with the same space, seed and trial count at
tune.max_concurrent 1 and 2 (one CPU a trial, a local Ray), each the wall time of the whole command (Ray's start,
the workers' imports, MLflow). Prints a Markdown table and JSON with the best val macro-F1 of each search.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import tests_path  # noqa: F401  (tests/ on sys.path: `support`, shared with the tests)

SPACE = "{learning_rate: {loguniform: [1.0e-4, 3.0e-3]}, epochs: {int: [1, 3]}, batch_size: {choice: [16, 32]}}"


def timed(root: Path, *args: str) -> tuple[float, str]:
    from support import textops

    start = time.monotonic()
    out = textops(root, *args, timeout=7200).stdout
    return time.monotonic() - start, out


def main() -> None:
    from support import make_project, set_params, textops

    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--rows", type=int, default=4000)
    parser.add_argument("--base", default="tiny")
    parser.add_argument("--project")
    args = parser.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    root = Path(args.project or tempfile.mkdtemp(prefix="textops-tune-bench-")) / "proj"
    if not (root / "params.yaml").exists():
        make_project(root)
        set_params(root, {"sample": {"rows": args.rows}, "model": {"base": args.base}, "train": {"threads": 1}})
        for step in ("sample", "preprocess", "validate"):
            textops(root, step, timeout=3600)
    out: dict = {"train_1_thread_s": timed(root, "train")[0]}
    for concurrent in (1, 2):
        seconds, text = timed(
            root,
            "tune",
            "-S",
            f"tune.trials={args.trials}",
            "-S",
            f"tune.max_concurrent={concurrent}",
            "-S",
            "tune.cpus_per_trial=1",
            "-S",
            f"tune.space={SPACE}",
        )
        best = re.search(r"best val macro_f1 ([0-9.]+)", text)
        out[f"tune_{concurrent}_at_once_s"] = seconds
        out[f"tune_{concurrent}_at_once_best"] = float(best.group(1)) if best else None
    machine = f"{platform.machine()}, {os.cpu_count()} cores"
    out.update(
        trials=args.trials,
        rows=args.rows,
        base=args.base,
        machine=machine,
        load=os.getloadavg(),
        date=datetime.now(timezone.utc).isoformat(timespec="minutes"),
    )
    one = out["tune_1_at_once_s"]
    print("| how | wall s | per trial s | best val macro-F1 | vs one at a time |\n|---|---|---|---|---|")
    print(f"| one `textops train` (1 thread) | {out['train_1_thread_s']:.1f} | | | |")
    for concurrent in (1, 2):
        s = out[f"tune_{concurrent}_at_once_s"]
        print(
            f"| tune, {concurrent} at once | {s:.1f} | {s / args.trials:.1f} | "
            f"{out[f'tune_{concurrent}_at_once_best']} | {one / s:.2f}x |"
        )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
