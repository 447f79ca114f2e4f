"""Distillation on SST-2: the MiniLM teacher, its L3 student and the student int8, side by side in one run.

A throwaway project whose cleaned splits are SST-2 (as `train_sst2.py` writes them: train = a seeded subset of
train.tsv, val = 1,000 other train.tsv rows, test = dev.tsv, 872 rows). The real stages run in-process: train,
evaluate and register the MiniLM teacher (promoted by hand when the data validation is not run), then
`lifecycle.distill.distill` (what `textops distill --layers 3` runs), which registers the student. Then the three
(and the teacher int8, for reference) are loaded as the server loads them (`predict.load_model` with serve.runtime
onnx, serve.quantize on or off) and measured in this process: dev accuracy, the p50/p99 latency of one text (dev
texts one at a time, the models taken in turns), texts/s of dev.tsv in batches of serve.batch_size.

    python benchmarks/distill.py --train-samples 4000 --epochs 1

Prints one JSON line with the figures for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tests_path  # noqa: F401, E402  (tests/ on sys.path: `support`, shared with the tests)
from train_sst2 import LABELS, splits  # noqa: E402  (the same SST-2 splits as the training benchmark)


def project(data: dict[str, pd.DataFrame], args) -> Path:
    """A project (git + DVC, as a user's) whose cleaned splits are DATA, with MiniLM params."""
    from support import make_project

    root = make_project(Path(tempfile.mkdtemp(prefix="sst2-distill-")) / "project")
    clean = root / "artifacts" / "clean"
    clean.mkdir(parents=True)
    for name, frame in data.items():
        frame.to_parquet(clean / f"{name}.parquet", index=False)
    (clean / "labels.json").write_text(json.dumps({"labels": LABELS}))
    params = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text())
    params["model"].update(base="minilm", max_length=args.max_length)
    params["train"].update(
        epochs=args.epochs,
        batch_size=32,
        learning_rate=args.lr,
        save_steps=args.save_steps,
        logging_steps=50,
        early_stopping_patience=3,
    )
    params["promotion"].update(beat_baseline=False)
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    return root


def teacher(root: Path, params) -> dict:
    """Train, evaluate and register the MiniLM teacher; make it the champion."""
    from textops.lifecycle.register import register
    from textops.modeling.evaluate import evaluate
    from textops.modeling.train import train
    from textops.registry.registry import promote

    start = time.perf_counter()
    trained = train(root, params)
    train_s = time.perf_counter() - start
    evaluate(root, params)
    registered = register(root, params)
    if not registered["promote"]:  # no validate stage here: the first champion is promoted by hand
        promote(root, params, registered["version"], "benchmark: the teacher")
    return {"version": registered["version"], "train_s": round(train_s, 1), "val_accuracy": trained["val_accuracy"]}


def measured(models: dict, dev: pd.DataFrame, batch_size: int, single: int) -> dict:
    """Dev accuracy and texts/s of a batch, and the p50/p99 ms of one text (SINGLE dev texts, each model in turn)."""
    import numpy as np

    from textops.modeling.predict import predict_batches

    out: dict[str, dict] = {}
    texts, y = dev["text"].tolist(), dev["label"].to_numpy()
    for name, model in models.items():
        predict_batches(model, texts[:64], batch_size)  # warm-up
        start = time.perf_counter()
        names = predict_batches(model, texts, batch_size)["label"].astype(str)
        labels = names.map({label: i for i, label in enumerate(LABELS)}).to_numpy()
        seconds = time.perf_counter() - start
        out[name] = {"accuracy": round(float(np.mean(labels == y)), 4), "texts_per_s": round(len(texts) / seconds, 1)}
    times: dict[str, list[float]] = {name: [] for name in models}
    picked = [texts[i] for i in np.linspace(0, len(texts) - 1, single, dtype=int)]
    for text in picked:
        frame = pd.DataFrame({"text": [text]})
        for name, model in models.items():
            start = time.perf_counter()
            model.predict(frame)
            times[name].append((time.perf_counter() - start) * 1000)
    for name, values in times.items():
        out[name]["p50_ms"] = round(statistics.median(values), 2)
        out[name]["p99_ms"] = round(float(np.percentile(values, 99)), 2)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--train-samples", type=int, default=4000)
    ap.add_argument("--epochs", type=float, default=1)
    ap.add_argument("--max-length", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--save-steps", type=int, default=1000)
    ap.add_argument("--student-epochs", type=float, default=None, help="the student's epochs (default: --epochs)")
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--temperature", type=float, default=2.0)
    ap.add_argument("--single", type=int, default=300, help="dev texts scored one at a time per model")
    args = ap.parse_args()

    import torch

    from textops.adapters.tracking import connect
    from textops.core.config import load_params
    from textops.core.env import set_offline_env
    from textops.lifecycle.distill import distill
    from textops.modeling.predict import load_model

    set_offline_env()
    data = splits(args.train_samples)
    root = project(data, args)
    params = load_params(root / "params.yaml")
    t = teacher(root, params)
    start = time.perf_counter()
    epochs = args.student_epochs or args.epochs
    d = distill(
        root,
        params.model_copy(update={"train": params.train.model_copy(update={"epochs": epochs})}),
        args.layers,
        args.temperature,
    )
    distill_s = time.perf_counter() - start
    session = connect(root, params)
    student = d["registered"]["version"]
    fp32, int8 = params.serve.model_copy(update={"quantize": False}), params.serve.model_copy(update={"quantize": True})
    uri = f"models:/{session.model_name}/{{}}"
    models = {
        "teacher": load_model(session, uri.format(t["version"]), fp32),
        "student": load_model(session, uri.format(student), fp32),
        "student_int8": load_model(session, uri.format(student), int8),
        "teacher_int8": load_model(session, uri.format(t["version"]), int8),
    }
    figures = measured(models, data["test"], params.serve.batch_size, args.single)
    s = d["student"]
    result = {
        "figures": figures,
        "teacher": t,
        "student": {
            "version": student,
            "layers": s["mapping"],
            "texts": s["texts"],
            "val_accuracy": s["val_accuracy"],
            "train_s": s.get("train_runtime_s"),
            "distill_s": round(distill_s, 1),
            "latency_in_distill": d["latency"],
            "decision": d["registered"]["reason"],
            "promoted": d["registered"]["promote"],
        },
        "speedup_p50": round(figures["teacher"]["p50_ms"] / figures["student"]["p50_ms"], 2),
        "speedup_p50_int8": round(figures["teacher"]["p50_ms"] / figures["student_int8"]["p50_ms"], 2),
        "train_rows": len(data["train"]),
        "test_rows": len(data["test"]),
        "args": vars(args),
        "machine": platform.machine(),
        "threads": torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
