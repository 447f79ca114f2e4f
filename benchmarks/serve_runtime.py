"""The serving runtimes side by side on one trained model: PyTorch, ONNX (fp32) and ONNX with int8 weights.

The model directory (a Hugging Face classifier as the train stage saves it, e.g. artifacts/model/hf of a
`benchmarks/train_sst2.py minilm` project) is exported as the train stage exports it
(`textops.modeling.export`), saved as
the pyfunc textops logs (`mlflow.pyfunc.save_model` of `textops/modeling/pyfunc.py` with its model_config), and loaded
three times with `mlflow.pyfunc.load_model(..., model_config=...)`: each runtime answers through the same
`predict` a server calls. For each: p50/p99 of one short text per call, texts/s at 32 texts per call, and
accuracy on SST-2's dev set with the share of labels equal to PyTorch's.

    OMP_NUM_THREADS=1 python benchmarks/serve_runtime.py --hf-dir /tmp/sst2-minilm-XXXX/project/artifacts/model/hf

Prints one JSON line with the figures for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd
from train_sst2 import LABELS, read  # benchmarks/ is on sys.path when this script runs

SHORT = "a gripping, beautifully acted film"


def timed(model, texts: list[str], calls: int) -> list[float]:
    out = []
    frame = pd.DataFrame({"text": texts})
    for _ in range(calls):
        start = time.perf_counter()
        model.predict(frame)
        out.append(time.perf_counter() - start)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hf-dir", type=Path, required=True)
    ap.add_argument("--calls", type=int, default=300, help="single-text calls per runtime")
    ap.add_argument("--batches", type=int, default=20, help="32-text calls per runtime")
    args = ap.parse_args()

    import mlflow.pyfunc

    from textops.core.env import set_offline_env, usable_cpus
    from textops.modeling import export, pyfunc

    set_offline_env()
    omp = os.environ.get("OMP_NUM_THREADS", "")
    threads = int(omp) if omp.isdigit() else usable_cpus()
    work = Path(tempfile.mkdtemp(prefix="serve-runtime-"))
    report = export.export_onnx(args.hf_dir, work / "onnx")
    saved = work / "model"
    mlflow.pyfunc.save_model(
        saved,
        python_model=pyfunc.__file__,
        artifacts={pyfunc.HF_ARTIFACT: str(args.hf_dir), pyfunc.ONNX_ARTIFACT: str(work / "onnx")},
        model_config=dict(pyfunc.DEFAULT_CONFIG),
    )
    dev = read("dev.tsv")
    results, torch_pred = {}, None
    for name, config in [
        ("torch", {"runtime": "torch", "quantize": False}),
        ("onnx", {"runtime": "onnx", "quantize": False}),
        ("onnx-int8", {"runtime": "onnx", "quantize": True}),
    ]:
        start = time.perf_counter()
        model = mlflow.pyfunc.load_model(str(saved), model_config={**config, "threads": threads})
        load_s = time.perf_counter() - start
        assert model.unwrap_python_model().runtime == name, model.unwrap_python_model().runtime
        timed(model, [SHORT], 20)  # warm
        one = sorted(timed(model, [SHORT], args.calls))
        batch = timed(model, dev["text"].head(32).tolist(), args.batches)
        out = model.predict(pd.DataFrame({"text": dev["text"].tolist()}))
        pred = out["label"].to_numpy()
        truth = dev["label"].map(dict(enumerate(LABELS))).to_numpy()  # the model predicts the names in labels.json
        accuracy = float((pred.astype(str) == truth).mean())
        torch_pred = pred if torch_pred is None else torch_pred
        results[name] = {
            "load_s": round(load_s, 2),
            "p50_ms": round(1000 * statistics.median(one), 2),
            "p99_ms": round(1000 * one[int(0.99 * (len(one) - 1))], 2),
            "texts_per_s_at_32": round(32 * len(batch) / sum(batch), 1),
            "dev_accuracy": round(accuracy, 4),
            "same_label_as_torch": round(float((pred == torch_pred).mean()), 4),
        }
    base = results["torch"]["p50_ms"]
    for r in results.values():
        r["p50_vs_torch"] = round(r["p50_ms"] / base, 3)
    print(
        json.dumps(
            {
                "export": report,
                "runtimes": results,
                "threads": threads,
                "dev_rows": len(dev),
                "machine": platform.machine(),
                "cpus": os.cpu_count(),
                "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            }
        )
    )


if __name__ == "__main__":
    main()
