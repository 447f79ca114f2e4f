"""The MLflow model a training logs: `textops/modeling/pyfunc.py` as code, the Hugging Face weights and, where the
architecture exports, its ONNX graphs (`textops.modeling.export`), with explicit requirements and the serving runtime as
its model_config."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from textops.core.config import ServeParams
from textops.core.errors import ModelError


def pip_requirements() -> list[str]:
    """Explicit requirements: MLflow's inference would add torchvision, which breaks loading here."""
    import mlflow
    import pandas
    import tokenizers
    import torch
    import transformers

    return [
        f"mlflow=={mlflow.__version__}",
        f"torch=={torch.__version__.split('+')[0]}",
        f"transformers=={transformers.__version__}",
        f"tokenizers=={tokenizers.__version__}",
        f"pandas=={pandas.__version__}",
    ]


def log_model(hf_dir: Path, labels: list[str], texts: list[str], serve: ServeParams):
    """Log the saved model as the pyfunc at artifact path `model`, with a signature and input example, and its ONNX
    graphs (fp32 and int8, `textops.modeling.export`) beside the PyTorch weights when the architecture exports. Its
    model_config is SERVE's runtime, what `mlflow models serve` runs; textops' own loads pass theirs. TEXTS (the
    validation split's) check the ONNX graphs against PyTorch; three typical ones are the input example."""
    import mlflow
    import numpy as np
    import pandas as pd
    from mlflow.models import infer_signature

    from textops.modeling import export, pyfunc
    from textops.modeling.predict import runtime_config

    artifacts = {pyfunc.HF_ARTIFACT: str(hf_dir)}
    requirements = pip_requirements()
    # The graphs live in MLflow only (a temporary directory here): artifacts/model, a DVC output, keeps PyTorch's.
    with tempfile.TemporaryDirectory(prefix="textops-onnx-") as onnx_dir:
        if export.available():
            try:
                report = export.export_onnx(hf_dir, Path(onnx_dir), texts)
                artifacts[pyfunc.ONNX_ARTIFACT] = onnx_dir
                requirements += export.requirements()
                mlflow.log_metrics({f"onnx_{k}": float(v) for k, v in report.items() if isinstance(v, float)})
            except ModelError as exc:
                logging.getLogger("textops").warning("%s; the model is logged for PyTorch only", exc)
        example = pd.DataFrame({"text": texts[len(texts) // 2 :][:3] or ["an example"]})
        output = pyfunc.to_frame(np.full((1, len(labels)), 1 / len(labels)), labels)  # int labels stay ints
        config = {**runtime_config(serve), "threads": 0}  # 0: onnxruntime's default where `mlflow models serve` runs
        return mlflow.pyfunc.log_model(
            name="model",
            # Models from code: the model is pyfunc.py itself, so loading it unpickles nothing.
            python_model=pyfunc.__file__,
            artifacts=artifacts,
            model_config=config,
            signature=infer_signature(example, output),
            input_example=example,
            pip_requirements=requirements,
        )


def log_tfidf_model(tfidf_dir: Path, labels: list[str], texts: list[str]):
    """Log the tfidf family's model (`pyfunc.TfidfScorer`'s files in TFIDF_DIR) as the same pyfunc, artifact path
    `model`: scikit-learn runs it whatever serve.runtime says, so it needs neither torch nor transformers.

    Not ONNX: skl2onnx's TfidfVectorizer converter does not take the `char_wb` analyzer the baseline picks for
    unspaced scripts, and the sparse model scores a request in well under a millisecond a text anyway."""
    import mlflow
    import numpy as np
    import pandas as pd
    import scipy
    import sklearn
    from mlflow.models import infer_signature

    from textops.modeling import pyfunc

    example = pd.DataFrame({"text": texts[:3] or ["an example"]})
    output = pyfunc.to_frame(np.full((1, len(labels)), 1 / len(labels)), labels)
    requirements = [
        f"mlflow=={mlflow.__version__}",
        f"scikit-learn=={sklearn.__version__}",
        f"scipy=={scipy.__version__}",
        f"numpy=={np.__version__}",
        f"pandas=={pd.__version__}",
    ]
    return mlflow.pyfunc.log_model(
        name="model",
        python_model=pyfunc.__file__,
        artifacts={pyfunc.TFIDF_ARTIFACT: str(tfidf_dir)},
        model_config=dict(pyfunc.DEFAULT_CONFIG),
        signature=infer_signature(example, output),
        input_example=example,
        pip_requirements=requirements,
    )
