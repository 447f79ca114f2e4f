"""The split leak of phrase-level data: SST-2's train.tsv (every phrase of its parse trees, 67,349 rows) through the
preprocess stage's `clean_and_split`, split by text and by containment (`data.split.by`). Prints one JSON line per
way: rows per split, val/test texts inside train texts, the wall time of the whole clean-and-split, and what the
leak does to a test figure: the evaluation's TF-IDF baseline fitted on that train split, scored on that test split
and on SST-2's dev.tsv (872 whole sentences no train phrase comes from).

    python benchmarks/split_leak.py
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time

from train_sst2 import SST2  # benchmarks/ is on sys.path when this script runs


def baseline_accuracy(splits: dict, dev) -> dict:
    """The TF-IDF baseline fitted on the train split: its accuracy on the test split and on dev.tsv."""
    import numpy as np

    from textops.modeling.baseline import fit_predict

    train, test = splits["train"], splits["test"]
    texts = test["text"].tolist() + dev["sentence"].tolist()
    probs, _ = fit_predict(train["text"].tolist(), train["label"].to_numpy(), texts, 2)
    pred = probs.argmax(axis=1)
    dev_labels = dev["label"].astype(int).to_numpy()  # labels.json orders 0, 1 as ids 0, 1
    return {
        "baseline_test_accuracy": round(float(np.mean(pred[: len(test)] == test["label"].to_numpy())), 4),
        "baseline_dev_accuracy": round(float(np.mean(pred[len(test) :] == dev_labels)), 4),
    }


def main() -> int:
    if not (SST2 / "train.tsv").is_file():
        print(f"SST-2 not found: {SST2} needs train.tsv; skipped.")
        return 0
    import pandas as pd

    from textops.core.config import Params
    from textops.data.preprocess import clean_and_split

    frame = pd.read_csv(SST2 / "train.tsv", sep="\t", dtype=str, keep_default_na=False, quoting=3)
    frame = frame.rename(columns={"sentence": "text"})
    dev = pd.read_csv(SST2 / "dev.tsv", sep="\t", dtype=str, keep_default_na=False, quoting=3)
    for way in ("text", "containment"):
        params = Params.model_validate({"data": {"split": {"by": way}}})
        start = time.perf_counter()
        splits, _, stats = clean_and_split(frame, params)
        seconds = time.perf_counter() - start
        print(
            json.dumps(
                {
                    "benchmark": "split-leak-sst2",
                    "split_by": way,
                    "rows_in": len(frame),
                    "splits": stats["splits"],
                    "leak": stats["leak"],
                    "clean_and_split_s": round(seconds, 2),
                    **baseline_accuracy(splits, dev),
                    "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
                    "load_average": os.getloadavg()[0],
                    "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                }
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
