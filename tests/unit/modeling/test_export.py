"""The ONNX export of a classifier (`textops.export`) and the pyfunc's runtimes: the fp32 graph gives PyTorch's
probabilities, the int8 graph exists and nearly agrees, a model loaded with `runtime: onnx` answers through
onnxruntime with PyTorch's labels, and a model that has no graph falls back to PyTorch and says so."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from textops.core.config import ModelParams
from textops.modeling.model import load_base

TEXTS = [f"the {w} was {'not ' * (i % 2)}good, really {w}" for i, w in enumerate(["film", "plot", "cast"] * 12)]


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory):
    """A tiny classifier saved as the train stage saves it (random weights: the export, not the model, is tested)."""
    import torch

    torch.manual_seed(0)
    tok, model = load_base(ModelParams(base="tiny", max_length=32), ["neg", "pos"], TEXTS)
    path = tmp_path_factory.mktemp("model") / "hf"
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def test_export_writes_fp32_and_int8_graphs_that_match_pytorch(hf_dir, tmp_path):
    from textops.modeling import export
    from textops.modeling.pyfunc import onnx_predict, onnx_session

    report = export.export_onnx(hf_dir, tmp_path / "onnx", TEXTS)
    assert (tmp_path / "onnx" / export.FP32).is_file() and (tmp_path / "onnx" / export.INT8).is_file()
    assert report["optimized"] is True  # onnxruntime fused the BERT graph
    assert report["fp32_max_diff"] < export.TOLERANCE and report["fp32_agreement"] == 1.0
    assert 0.0 <= report["int8_agreement"] <= 1.0 and report["int8_mb"] < report["fp32_mb"]
    # any batch size and sequence length: the axes are dynamic
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(hf_dir)
    session = onnx_session(str(tmp_path / "onnx" / export.FP32))
    one = onnx_predict(session, tok, ["a single long text " * 5])
    many = onnx_predict(session, tok, TEXTS, batch_size=7)
    assert one.shape == (1, 2) and many.shape == (len(TEXTS), 2)
    np.testing.assert_allclose(many.sum(axis=1), 1.0, atol=1e-5)


def test_the_pyfunc_serves_the_runtime_it_is_loaded_with(hf_dir, tmp_path, caplog):
    import mlflow.pyfunc

    from textops.modeling import export, pyfunc

    export.export_onnx(hf_dir, tmp_path / "onnx", TEXTS)
    with_graph, without = tmp_path / "with", tmp_path / "without"
    artifacts = {pyfunc.HF_ARTIFACT: str(hf_dir)}
    mlflow.pyfunc.save_model(with_graph, python_model=pyfunc.__file__, model_config=dict(pyfunc.DEFAULT_CONFIG),
                             artifacts={**artifacts, pyfunc.ONNX_ARTIFACT: str(tmp_path / "onnx")})  # fmt: skip
    mlflow.pyfunc.save_model(without, python_model=pyfunc.__file__, model_config=dict(pyfunc.DEFAULT_CONFIG),
                             artifacts=artifacts)  # fmt: skip
    frame = pd.DataFrame({"text": TEXTS})
    answers = {}
    for name, path, config in [("torch", with_graph, {"runtime": "torch"}),
                               ("onnx", with_graph, {"runtime": "onnx"}),
                               ("onnx-int8", with_graph, {"runtime": "onnx", "quantize": True})]:  # fmt: skip
        model = mlflow.pyfunc.load_model(str(path), model_config=config)
        assert model.unwrap_python_model().runtime == name
        answers[name] = model.predict(frame)
    assert list(answers["onnx"].columns) == list(answers["torch"].columns) == ["label", "prob_neg", "prob_pos"]
    assert (answers["onnx"]["label"] == answers["torch"]["label"]).all()
    np.testing.assert_allclose(answers["onnx"]["prob_pos"], answers["torch"]["prob_pos"], atol=1e-3)
    with caplog.at_level(logging.WARNING):
        fallback = mlflow.pyfunc.load_model(str(without), model_config={"runtime": "onnx"})
    assert fallback.unwrap_python_model().runtime == "torch"
    assert "has no ONNX graph" in caplog.text
    assert (fallback.predict(frame)["label"] == answers["torch"]["label"]).all()
