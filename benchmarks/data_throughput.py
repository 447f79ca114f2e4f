"""Ingest, preprocess and validate throughput on 1M rows (SST-2 resampled), and `textops --help` start-up time.

    python benchmarks/data_throughput.py --rows 1000000 [--sst2 ../shared/datasets/sst2]

Works in a throwaway project under a temp directory; prints a Markdown table row per step.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import tests_path  # noqa: F401  (tests/ on sys.path: `support`, shared with the tests)
from support import make_project

from textops.core.config import load_params
from textops.data.preprocess import preprocess
from textops.data.validate import validate
from textops.lifecycle.ingest import ingest


def help_time(runs: int = 10) -> float:
    exe = Path(sys.executable).with_name("textops")
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([str(exe), "--help"], check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--sst2", type=Path, default=Path(__file__).resolve().parents[2] / "shared/datasets/sst2")
    args = parser.parse_args()

    sst = pd.read_csv(args.sst2 / "train.tsv", sep="\t", quoting=3)
    rng = np.random.default_rng(0)
    idx = rng.integers(0, len(sst), args.rows)
    # Resampled with replacement, each row made distinct so that all of them travel the whole way
    # (dedupe would otherwise leave only the 67k originals).
    frame = pd.DataFrame(
        {
            "sentence": sst["sentence"].to_numpy()[idx] + " #" + np.arange(args.rows).astype(str),
            "label": sst["label"].to_numpy()[idx],
        }
    )
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        root = make_project(Path(tmp) / "proj")
        src = Path(tmp) / "sst2-1m.tsv"
        frame.to_csv(src, sep="\t", index=False)
        params = load_params(root / "params.yaml")
        more = Path(tmp) / "more.tsv"  # a typical later batch: 1% more rows, through the gate
        extra = frame.sample(n=max(args.rows // 100, 1), random_state=1)
        extra.assign(sentence=extra["sentence"] + " (more)").to_csv(more, sep="\t", index=False)
        for name, step in [
            (
                "ingest (read TSV, raw suite, write batch, dvc add)",
                lambda: ingest([src], root, params, text_column="sentence", label_column="label", gate=False),
            ),
            ("preprocess (clean, dedupe, split, write Parquet)", lambda: preprocess(root, params)),
            ("validate (Great Expectations, cleaned suites + Data Docs)", lambda: validate(root, params)),
            (
                "ingest 1% more rows with --gate (clean suites on all the data first)",
                lambda: ingest([more], root, params, text_column="sentence", label_column="label", gate=True),
            ),
        ]:
            start = time.perf_counter()
            step()
            seconds = time.perf_counter() - start
            results.append((name, seconds))
    print(
        f"machine: {platform.machine()} {platform.processor() or ''}, python {platform.python_version()}, "
        f"{args.rows:,} rows"
    )
    print("| step | seconds | rows/s |\n|---|---:|---:|")
    for name, seconds in results:
        print(f"| {name} | {seconds:.1f} | {args.rows / seconds:,.0f} |")
    total = sum(s for _, s in results[1:3])
    print(f"| preprocess + validate | {total:.1f} | {args.rows / total:,.0f} |")
    print(f"\n`textops --help`, median of 10 runs: {help_time():.3f} s")


if __name__ == "__main__":
    main()
