"""The ONNX export of a classifier (`textops.modeling.export`): the fp32 graph gives PyTorch's probabilities, the
int8 graph exists and nearly agrees, any batch size and sequence length. The pyfunc's runtimes (MLflow's
save_model runs a child interpreter) are tests/integration/test_pyfunc_runtimes.py."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import EXPORT_TEXTS as TEXTS
from helpers import tiny_classifier


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory):
    """A tiny classifier saved as the train stage saves it (random weights: the export, not the model, is tested)."""
    return tiny_classifier(tmp_path_factory.mktemp("model") / "hf")


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
