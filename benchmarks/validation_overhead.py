"""What the Great Expectations gate costs: import, the raw suite on a tiny frame, the clean suites by size.

    python benchmarks/validation_overhead.py [--rows 4000 67349 1000000] [--sst2 ../shared/datasets/sst2]

Cleaned splits are written straight into a temp directory (SST-2 sentences, resampled and made distinct
for sizes above the data set), so only validation is timed. Prints Markdown table rows.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from textops.core.config import Params
from textops.data.validate import validate, validate_raw


def import_time(runs: int = 3) -> float:
    """Median wall time of a fresh interpreter importing great_expectations (minus a bare interpreter)."""

    def run(code: str) -> float:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
        return time.perf_counter() - start

    bare = statistics.median(run("pass") for _ in range(runs))
    return statistics.median(run("import great_expectations") for _ in range(runs)) - bare


def clean_splits(sst: pd.DataFrame, rows: int, root: Path) -> None:
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(sst))[:rows] if rows <= len(sst) else rng.integers(0, len(sst), rows)
    text = sst["sentence"].to_numpy()[idx].astype(str)
    if rows > len(sst):
        text = np.char.add(text, np.char.add(" #", np.arange(rows).astype(str)))
    frame = pd.DataFrame({"text": text, "label": sst["label"].to_numpy()[idx].astype("int64")})
    frame = frame[frame["text"].str.len().between(2, 5000)].drop_duplicates("text")
    split = np.arange(len(frame)) % 10
    clean = root / "artifacts/clean"
    clean.mkdir(parents=True)
    for name, part in (("train", split < 8), ("val", split == 8), ("test", split == 9)):
        frame[part].reset_index(drop=True).to_parquet(clean / f"{name}.parquet", index=False)
    (clean / "labels.json").write_text(json.dumps({"labels": ["negative", "positive"]}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="+", default=[4000, 67349])
    parser.add_argument("--sst2", type=Path, default=Path(__file__).resolve().parents[2] / "shared/datasets/sst2")
    args = parser.parse_args()
    sst = pd.read_csv(args.sst2 / "train.tsv", sep="\t", quoting=3)
    params = Params()

    print(
        f"machine: {platform.machine()}, python {platform.python_version()}, great_expectations import "
        f"(fresh interpreter, median of 3): {import_time():.2f} s"
    )
    print("| call | rows | seconds |\n|---|---:|---:|")
    tiny = pd.DataFrame({"text": [f"a fine text {i}" for i in range(10)], "label": ["pos", "neg"] * 5})
    start = time.perf_counter()
    validate_raw([("tiny", tiny)], params)  # first call in this process: pays GX import + setup
    print(f"| validate_raw, first call in the process (incl. import) | 10 | {time.perf_counter() - start:.2f} |")
    start = time.perf_counter()
    validate_raw([("tiny", tiny)], params)
    print(f"| validate_raw, later call (context + 1 suite) | 10 | {time.perf_counter() - start:.2f} |")
    for rows in args.rows:
        with tempfile.TemporaryDirectory() as tmp:
            clean_splits(sst, rows, Path(tmp))
            start = time.perf_counter()
            summary = validate(Path(tmp), params)
            seconds = time.perf_counter() - start
        what = f"validate_clean: 7 suites, {summary['evaluated']} expectations + Data Docs"
        print(f"| {what} | {rows:,} | {seconds:.2f} |")


if __name__ == "__main__":
    main()
