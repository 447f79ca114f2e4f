"""The evaluation's baseline (`textops.baseline`: TF-IDF + logistic regression, as `evaluate` fits it) on SST-2.

The same rows as benchmarks/train_sst2.py: train = a seeded subset of train.tsv (all 66,349 rows left after
holding out 1,000 for val, or --train-samples of them), test = dev.tsv (872 rows; SST-2's test labels are not
public); so its figures sit beside the `tiny` and `minilm` rows of BENCHMARKS.md. Prints one JSON line.

    OMP_NUM_THREADS=1 python benchmarks/baseline.py
    OMP_NUM_THREADS=1 python benchmarks/baseline.py --train-samples 30000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

from train_sst2 import SST2, splits  # benchmarks/ is on sys.path when this script runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-samples", type=int, default=None, help="the first N of the seeded train rows")
    parser.add_argument("--max-features", type=int, default=100_000, help="evaluate.baseline_max_features")
    args = parser.parse_args()
    if not (SST2 / "train.tsv").is_file() or not (SST2 / "dev.tsv").is_file():
        print(f"SST-2 not found: {SST2} needs train.tsv and dev.tsv (sentence<TAB>label); skipped.")
        return 0

    from sklearn.metrics import accuracy_score, f1_score

    from textops.modeling.baseline import fit_predict

    data = splits(args.train_samples)
    train, test = data["train"], data["test"]
    start = time.perf_counter()
    probs, info = fit_predict(
        train["text"].tolist(), train["label"].to_numpy(), test["text"].tolist(), 2, args.max_features
    )
    wall = time.perf_counter() - start
    pred, y = probs.argmax(axis=1), test["label"].to_numpy()
    print(
        json.dumps(
            {
                "benchmark": "baseline-sst2",
                **info,
                "fit_and_score_s": round(wall, 2),
                "dev_accuracy": round(float(accuracy_score(y, pred)), 4),
                "dev_macro_f1": round(float(f1_score(y, pred, average="macro")), 4),
                "dev_rows": len(test),
                "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
                "omp_threads": os.environ.get("OMP_NUM_THREADS"),
                "load_average": os.getloadavg()[0],
                "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
