"""The MLflow pyfunc model: texts in, label name and every class's probability out.

It wraps the saved Hugging Face directory (logged as the artifact `hf`), so `mlflow.pyfunc.load_model`
and `mlflow models serve` work offline with no access to this project's files.
"""

from __future__ import annotations

import mlflow.pyfunc
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

HF_ARTIFACT = "hf"


def _bad_input(message: str) -> MlflowException:
    # INVALID_PARAMETER_VALUE makes the scoring server answer 400 with this message, not 500.
    return MlflowException(message, error_code=INVALID_PARAMETER_VALUE)


def as_texts(model_input) -> list[str]:
    """The texts of a DataFrame with a `text` column, a list of strings or a Series; else a 400 error."""
    if isinstance(model_input, pd.DataFrame):
        if "text" not in model_input.columns:
            raise _bad_input(f"input needs a 'text' column; got columns {list(model_input.columns)}")
        values = model_input["text"].tolist()
    elif isinstance(model_input, pd.Series):
        values = model_input.tolist()
    elif isinstance(model_input, (list, tuple)):
        values = list(model_input)
    elif isinstance(model_input, str):
        values = [model_input]
    else:
        raise _bad_input(
            f"input must be a DataFrame with a 'text' column or a list of strings, not {type(model_input).__name__}"
        )
    bad = [i for i, v in enumerate(values) if not isinstance(v, str)]
    if bad:
        raise _bad_input(f"every text must be a string; rows {bad[:10]} are not (e.g. {values[bad[0]]!r})")
    if not values:  # an empty request is a client mistake: say so (400) rather than answer []
        raise _bad_input("no texts to classify: send at least one string")
    return values


def predict_texts(model, tokenizer, texts: list[str], batch_size: int = 64, max_length: int | None = None):
    """Class probabilities (numpy, rows x classes) for TEXTS, in batches, without gradients."""
    import numpy as np
    import torch

    device = next(model.parameters()).device
    out = []
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(
                texts[start : start + batch_size],
                truncation=True,
                max_length=max_length or tokenizer.model_max_length,
                padding=True,
                return_tensors="pt",
            ).to(device)
            logits = model(**batch).logits.float()
            out.append(torch.softmax(logits, dim=-1).cpu().numpy())
    n_classes = model.config.num_labels
    return np.concatenate(out) if out else np.zeros((0, n_classes), dtype=np.float32)


def to_frame(probs, labels: list[str]) -> pd.DataFrame:
    """The output contract: `label` (the top class name) and `prob_<name>` per class."""
    frame = pd.DataFrame({"label": [labels[i] for i in probs.argmax(axis=1)] if len(probs) else []}, dtype=object)
    for i, name in enumerate(labels):
        frame[f"prob_{name}"] = probs[:, i].astype("float64")
    return frame


class TextClassifier(mlflow.pyfunc.PythonModel):
    """A transformers sequence classifier as an MLflow pyfunc."""

    def load_context(self, context) -> None:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        path = context.artifacts[HF_ARTIFACT]
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.model = AutoModelForSequenceClassification.from_pretrained(path, local_files_only=True)
        self.model.to("cuda" if torch.cuda.is_available() else "cpu").eval()
        self.labels = [self.model.config.id2label[i] for i in range(self.model.config.num_labels)]

    def predict(self, context, model_input, params: dict | None = None) -> pd.DataFrame:
        texts = as_texts(model_input)
        return to_frame(predict_texts(self.model, self.tokenizer, texts), self.labels)
