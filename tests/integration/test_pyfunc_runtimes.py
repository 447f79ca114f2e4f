"""The pyfunc's runtimes: a model loaded with `runtime: onnx` answers through onnxruntime with PyTorch's labels, and
a model that has no graph falls back to PyTorch and says so. An integration test: MLflow's save_model infers the
requirements in a child interpreter. The export itself is tests/unit/modeling/test_export.py."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from helpers import EXPORT_TEXTS as TEXTS
from helpers import tiny_classifier


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory):
    """A tiny classifier saved as the train stage saves it (random weights: the export, not the model, is tested)."""
    return tiny_classifier(tmp_path_factory.mktemp("model") / "hf")


def test_the_pyfunc_serves_the_runtime_it_is_loaded_with(hf_dir, tmp_path, caplog):
    import mlflow.pyfunc

    from textops.modeling import export, pyfunc

    export.export_onnx(hf_dir, tmp_path / "onnx", TEXTS)
    with_graph, without = tmp_path / "with", tmp_path / "without"
    artifacts = {pyfunc.HF_ARTIFACT: str(hf_dir)}
    mlflow.pyfunc.save_model(
        with_graph,
        python_model=pyfunc.__file__,
        model_config=dict(pyfunc.DEFAULT_CONFIG),
        artifacts={**artifacts, pyfunc.ONNX_ARTIFACT: str(tmp_path / "onnx")},
    )
    mlflow.pyfunc.save_model(
        without, python_model=pyfunc.__file__, model_config=dict(pyfunc.DEFAULT_CONFIG), artifacts=artifacts
    )
    frame = pd.DataFrame({"text": TEXTS})
    answers = {}
    for name, path, config in [
        ("torch", with_graph, {"runtime": "torch"}),
        ("onnx", with_graph, {"runtime": "onnx"}),
        ("onnx-int8", with_graph, {"runtime": "onnx", "quantize": True}),
    ]:
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
