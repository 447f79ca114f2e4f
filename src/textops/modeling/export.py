"""The ONNX export of a trained classifier: the serving runtime `serve.runtime: onnx` runs it with onnxruntime.

`export_onnx(hf_dir, out_dir)` writes, beside the PyTorch weights of the same logged MLflow model:

- `model.onnx`: the transformer with its classification head, logits out, batch and sequence length dynamic,
  its graph fused by onnxruntime's transformer optimizer (attention, LayerNorm, GELU: fewer, larger kernels);
- `model.int8.onnx`: the same with its weights quantised to int8 (onnxruntime's dynamic quantisation: weights
  int8 on disk, activations quantised per batch at run time), what `serve.quantize: true` serves.

Why not Optimum: `optimum-onnx` 0.1 requires transformers < 4.58 and would downgrade transformers 5; the export
is one `torch.onnx.export` call and two onnxruntime tools, which is all Optimum would run for a BERT classifier.
"""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path

from textops.core.errors import ModelError

FP32 = "model.onnx"
INT8 = "model.int8.onnx"
OPSET = 17
log = logging.getLogger("textops")


def available() -> bool:
    """True when onnx and onnxruntime can be imported (they are dependencies; a trimmed install may lack them)."""
    from importlib.util import find_spec

    return find_spec("onnxruntime") is not None and find_spec("onnx") is not None


def requirements() -> list[str]:
    """What a logged model with ONNX graphs needs besides PyTorch's requirements, pinned to what exported it."""
    from importlib.metadata import version

    return [f"onnxruntime=={version('onnxruntime')}", f"onnx=={version('onnx')}"]


def _logits_module(model):
    """MODEL (a sequence classifier) as a module of positional tensors that returns its logits only."""
    import torch

    class Logits(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids=None):
            extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
            return self.inner(input_ids=input_ids, attention_mask=attention_mask, **extra).logits

    return Logits(model).eval()


def export_onnx(hf_dir: Path, out_dir: Path, texts: list[str] | None = None) -> dict:
    """Export the Hugging Face classifier in HF_DIR to OUT_DIR/model.onnx and OUT_DIR/model.int8.onnx, and check
    the fp32 graph against PyTorch on TEXTS (the validation split's, say).

    Returns what was written, how long each step took and how close the graphs came to PyTorch; ModelError when the
    architecture cannot be exported or its graph does not give PyTorch's probabilities (the caller logs the model
    without ONNX and says so)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(hf_dir, local_files_only=True)
    # The eager attention exports to plain MatMul/Softmax that onnxruntime's optimizer fuses into its Attention op.
    model = AutoModelForSequenceClassification.from_pretrained(
        hf_dir, local_files_only=True, attn_implementation="eager"
    )
    model.eval()
    example = tokenizer(
        ["an example to trace", "a second, longer example to trace the padding"], padding=True, return_tensors="pt"
    )
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in example]
    raw = out_dir / "model.raw.onnx"
    try:
        # The tracer warns about values it records as constants (transformers' mask padding, always 0 for an
        # encoder) and negative indices; `verify` below checks the graph's answers instead of trusting either way.
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", category=UserWarning)
            warnings.simplefilter("ignore", category=torch.jit.TracerWarning)
            torch.onnx.export(
                _logits_module(model),
                tuple(example[n] for n in names),
                str(raw),
                input_names=names,
                output_names=["logits"],
                dynamic_axes={**{n: {0: "batch", 1: "sequence"} for n in names}, "logits": {0: "batch"}},
                opset_version=OPSET,
                dynamo=False,  # the TorchScript exporter: dynamic axes for any sequence length, no onnxscript
            )
    except Exception as exc:  # noqa: BLE001 - any exporter failure means "no ONNX for this architecture"
        raw.unlink(missing_ok=True)
        raise ModelError(f"cannot export {model.config.model_type} to ONNX: {exc}") from exc
    exported = time.perf_counter()
    fp32 = out_dir / FP32
    optimized = optimize(raw, fp32, model.config)
    raw.unlink(missing_ok=True)
    fused = time.perf_counter()
    quantize(fp32, out_dir / INT8)
    quantized = time.perf_counter()
    checked = verify(model, tokenizer, out_dir, texts or ["an example to check", "another, longer example to check"])
    return {
        "inputs": names,
        **checked,
        "optimized": optimized,
        "export_s": round(exported - start, 2),
        "optimize_s": round(fused - exported, 2),
        "quantize_s": round(quantized - fused, 2),
        "fp32_mb": round(fp32.stat().st_size / 2**20, 1),
        "int8_mb": round((out_dir / INT8).stat().st_size / 2**20, 1),
    }


TOLERANCE = 1e-3  # the largest difference in a class probability the fp32 graph may show against PyTorch


def verify(model, tokenizer, out_dir: Path, texts: list[str]) -> dict:
    """The fp32 graph's and the int8 graph's probabilities on TEXTS against PyTorch's: the largest difference and the
    share of equal labels (`fp32_max_diff`, `int8_agreement`, ...). ModelError when fp32 is off by > TOLERANCE:
    an export that traced a branch the texts do not take (a mask built from Python values) would serve nonsense."""
    import numpy as np
    import torch

    from textops.modeling.pyfunc import onnx_predict, onnx_session, predict_texts

    with torch.no_grad():
        reference = predict_texts(model, tokenizer, texts, batch_size=16)
    out = {}
    for name, path in (("fp32", out_dir / FP32), ("int8", out_dir / INT8)):
        probs = onnx_predict(onnx_session(str(path)), tokenizer, texts, batch_size=16)
        out[f"{name}_max_diff"] = float(np.abs(probs - reference).max())
        out[f"{name}_agreement"] = float(np.mean(probs.argmax(1) == reference.argmax(1)))
    if out["fp32_max_diff"] > TOLERANCE:
        raise ModelError(
            f"the ONNX graph's probabilities differ from PyTorch's by up to {out['fp32_max_diff']:.3g} "
            f"on {len(texts)} texts (tolerance {TOLERANCE})"
        )
    return out


def optimize(source: Path, target: Path, config) -> bool:
    """onnxruntime's transformer graph fusions for BERT-like encoders (MiniLM, BERT, the tiny model), written to
    TARGET; other architectures are copied unchanged. True when fused."""
    import shutil

    if config.model_type not in ("bert", "roberta", "xlm-roberta", "distilbert", "electra", "mpnet"):
        shutil.copyfile(source, target)
        return False
    from onnxruntime.transformers.optimizer import optimize_model

    heads = getattr(config, "num_attention_heads", 0) or getattr(config, "n_heads", 0)
    hidden = getattr(config, "hidden_size", 0) or getattr(config, "dim", 0)
    model_type = "bert"  # onnxruntime's fusions for the whole BERT family of encoders
    try:
        optimized = optimize_model(
            str(source), model_type=model_type, num_heads=heads, hidden_size=hidden, opt_level=1, use_gpu=False
        )
        optimized.save_model_to_file(str(target))
        return True
    except Exception as exc:  # noqa: BLE001 - a fusion that fails leaves the exported graph, which is correct
        log.warning("onnxruntime's optimizer failed on the exported model (%s); serving the unfused graph", exc)
        shutil.copyfile(source, target)
        return False


def quantize(source: Path, target: Path) -> None:
    """Dynamic int8 quantisation of SOURCE's weights (activations are quantised per batch at run time)."""
    from onnx import TensorProto
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # The fused graph's com.microsoft ops (Attention, SkipLayerNormalization) defeat ONNX's shape inference, so
    # the quantizer is told what an unknown tensor is: float, as every activation here is.
    # Per channel: a scale per output column keeps 98.4 % of MiniLM's SST-2 dev labels against 97.3 % with one scale
    # per matrix (BENCHMARKS.md, Serving runtimes).
    quantize_dynamic(
        str(source),
        str(target),
        weight_type=QuantType.QInt8,
        per_channel=True,
        extra_options={"DefaultTensorType": TensorProto.FLOAT},
    )
