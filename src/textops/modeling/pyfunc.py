"""The MLflow pyfunc model: texts in, label name and every class's probability out.

It wraps the saved Hugging Face directory (logged as the artifact `hf`) or, for the `tfidf` family, the fitted
TF-IDF + logistic regression (the artifact `tfidf`), so `mlflow.pyfunc.load_model` and `mlflow models serve` work
offline with no access to this project's files.

The model is logged as code (MLflow's "models from code"): this file is stored next to the weights and
loading the model runs it. Nothing is unpickled on load: the weights are safetensors, the tokenizer JSON, and a
TF-IDF model is its vocabulary (JSON) and arrays (`.npz`, read with allow_pickle=False).
So this file imports nothing from textops; it must stand alone inside the logged model.
"""

from __future__ import annotations

import json
import os
import re

import mlflow.pyfunc
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import set_model
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

HF_ARTIFACT = "hf"
TFIDF_ARTIFACT = "tfidf"  # tfidf.json (vectorizer settings, vocabulary, labels) and weights.npz (idf, coef, bias)
TFIDF_RUNTIME = "sklearn"
# A TF-IDF model reads this many characters of a text: far more than any review, and a 5 MB request costs no
# more than a long text (the character n-grams of the whole string would take seconds).
TFIDF_MAX_CHARS = 20_000
ONNX_ARTIFACT = "onnx"  # model.onnx and model.int8.onnx (textops.modeling.export), where the export succeeded
ONNX_FILES = {False: "model.onnx", True: "model.int8.onnx"}
# The model_config the model is logged with (every key must be there to be overridable at load time):
# runtime torch | onnx, quantize (the int8 ONNX graph), threads (onnxruntime's intra-op threads, 0: its default).
DEFAULT_CONFIG = {"runtime": "torch", "quantize": False, "threads": 0}
# Texts are cut to this many characters per token of max_length before tokenizing: a fast tokenizer
# tokenizes the whole string before it truncates, and a 5 MB text would cost seconds of a server's time.
# No WordPiece token is longer than this, so the cut never changes what the model sees for real texts.
CHARS_PER_TOKEN = 32


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


def by_length(texts: list[str], batch_size: int):
    """(row indices, texts) per batch, the batches formed in order of text length: each batch is padded to its
    longest text, so a few long texts no longer make every batch they fall in long. Put rows back with the
    indices."""
    import numpy as np

    order = np.argsort([len(t) for t in texts], kind="stable")
    for start in range(0, len(texts), batch_size):
        rows = order[start : start + batch_size]
        yield rows, [texts[i] for i in rows]


def predict_texts(model, tokenizer, texts: list[str], batch_size: int = 64, max_length: int | None = None):
    """Class probabilities (numpy, rows x classes, in the order of TEXTS) for TEXTS, without gradients."""
    import numpy as np
    import torch

    device = next(model.parameters()).device
    max_length = max_length or tokenizer.model_max_length
    texts = [t[: max_length * CHARS_PER_TOKEN] for t in texts]
    probs = np.zeros((len(texts), model.config.num_labels), dtype=np.float32)
    model.eval()
    with torch.inference_mode():
        for rows, batch in by_length(texts, batch_size):
            inputs = tokenizer(batch, truncation=True, max_length=max_length, padding=True, return_tensors="pt")
            logits = model(**inputs.to(device)).logits.float()
            probs[rows] = torch.softmax(logits, dim=-1).cpu().numpy()
    return probs


def onnx_session(path: str, threads: int = 0):
    """An onnxruntime session on the CPU for the graph at PATH. Its threads do not spin waiting for work: on a
    machine shared with other jobs a spinning thread takes the core that the thread it waits for needs."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only: no per-node placement chatter in the log
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def onnx_predict(session, tokenizer, texts: list[str], batch_size: int = 64, max_length: int | None = None):
    """Class probabilities (numpy, rows x classes, in the order of TEXTS) from the ONNX graph in SESSION."""
    import numpy as np

    max_length = max_length or tokenizer.model_max_length
    texts = [t[: max_length * CHARS_PER_TOKEN] for t in texts]
    names = [i.name for i in session.get_inputs()]
    probs = None
    for rows, batch in by_length(texts, batch_size):
        encoded = tokenizer(batch, truncation=True, max_length=max_length, padding=True, return_tensors="np")
        logits = session.run(None, {n: encoded[n].astype(np.int64) for n in names})[0].astype(np.float64)
        if probs is None:
            probs = np.zeros((len(texts), logits.shape[1]), dtype=np.float32)
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs[rows] = exp / exp.sum(axis=1, keepdims=True)
    return probs


def label_values(labels: list[str]) -> list:
    """The labels as the data had them: whole numbers (ingested from integer labels) as ints, names as strings.
    So `pred == label` holds in pandas for a file whose labels are 0/1."""
    if labels and all(re.fullmatch(r"[+-]?\d+", name) for name in labels):
        return [int(name) for name in labels]
    return list(labels)


def to_frame(probs, labels: list[str]) -> pd.DataFrame:
    """The output contract: `label` (the top class, an int for integer labels, else its name) and
    `prob_<name>` per class."""
    values = label_values(labels)
    top = [values[i] for i in probs.argmax(axis=1)] if len(probs) else []
    frame = pd.DataFrame({"label": pd.Series(top, dtype="int64" if isinstance(values[0], int) else object)})
    for i, name in enumerate(labels):
        frame[f"prob_{name}"] = probs[:, i].astype("float64")
    return frame


class TfidfScorer:
    """TF-IDF features + a linear classifier's weights: the `tfidf` model family. Built from the fitted
    vectorizer and logistic regression (`textops.baseline.fit`), or read back from the files it saves."""

    def __init__(self, vectorizer, coef, intercept, classes, labels: list[str]) -> None:
        self.vectorizer, self.coef, self.intercept = vectorizer, coef, intercept
        self.classes, self.labels = [int(c) for c in classes], list(labels)

    def probabilities(self, texts: list[str], batch_size: int = 0):
        """Class probabilities (numpy, rows x len(labels)); a class the train split lacked gets 0. BATCH_SIZE is
        ignored: the sparse features of a whole request are cheap."""
        import numpy as np

        features = self.vectorizer.transform([str(t)[:TFIDF_MAX_CHARS] for t in texts])
        probs: np.ndarray = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        if len(self.classes) < 2:  # one class in the train split: it is always predicted
            probs[:, self.classes[0] if self.classes else 0] = 1.0
            return probs
        scores = np.asarray(features @ self.coef.T, dtype=np.float64) + self.intercept
        if scores.shape[1] == 1:  # binary logistic regression: one column of scores, for the second class
            scores = np.hstack([np.zeros_like(scores), scores])
        exp = np.exp(scores - scores.max(axis=1, keepdims=True))
        probs[:, self.classes] = exp / exp.sum(axis=1, keepdims=True)
        return probs

    def save(self, path: str) -> None:
        import numpy as np

        os.makedirs(path, exist_ok=True)
        vec = self.vectorizer
        settings = {
            "analyzer": vec.analyzer,
            "ngram_range": list(vec.ngram_range),
            "token_pattern": vec.token_pattern,
            "sublinear_tf": vec.sublinear_tf,
            "lowercase": vec.lowercase,
            "vocabulary": {k: int(v) for k, v in vec.vocabulary_.items()},
            "classes": self.classes,
            "labels": self.labels,
        }
        with open(os.path.join(path, "tfidf.json"), "w", encoding="utf-8") as f:
            json.dump(settings, f, ensure_ascii=False)
        np.savez(os.path.join(path, "weights.npz"), idf=vec.idf_, coef=self.coef, intercept=self.intercept)

    @classmethod
    def load(cls, path: str) -> TfidfScorer:
        import numpy as np
        from sklearn.feature_extraction.text import TfidfVectorizer

        with open(os.path.join(path, "tfidf.json"), encoding="utf-8") as f:
            settings = json.load(f)
        with np.load(os.path.join(path, "weights.npz"), allow_pickle=False) as arrays:
            idf, coef, intercept = arrays["idf"], arrays["coef"], arrays["intercept"]
        vec = TfidfVectorizer(
            analyzer=settings["analyzer"],
            ngram_range=tuple(settings["ngram_range"]),
            token_pattern=settings["token_pattern"],
            sublinear_tf=settings["sublinear_tf"],
            lowercase=settings["lowercase"],
            vocabulary=settings["vocabulary"],
            dtype=np.float32,
        )
        vec.idf_ = idf  # with the vocabulary given, the idf weights are all `fit` would add
        return cls(vec, coef, intercept, settings["classes"], settings["labels"])


class TextClassifier(mlflow.pyfunc.PythonModel):
    """A transformers sequence classifier as an MLflow pyfunc, run by PyTorch or by onnxruntime (model_config
    `runtime`: the ONNX graph, int8 with `quantize`, when the logged model has one)."""

    def load_context(self, context) -> None:
        self.model = self.session = self.tokenizer = self.scorer = self.hf_path = None
        if TFIDF_ARTIFACT in context.artifacts:  # the tfidf family: scikit-learn whatever the runtime asked for
            self.scorer = TfidfScorer.load(context.artifacts[TFIDF_ARTIFACT])
            self.labels, self.runtime = self.scorer.labels, TFIDF_RUNTIME
        else:
            self.load_transformer(context)
        if SERVER_MODEL_PATH_ENV in os.environ:  # loaded by `mlflow models serve`
            guard_scoring_server()

    def load_transformer(self, context) -> None:
        from transformers import AutoConfig, AutoTokenizer

        path = context.artifacts[HF_ARTIFACT]
        config = {**DEFAULT_CONFIG, **(getattr(context, "model_config", None) or {})}
        onnx_dir = context.artifacts.get(ONNX_ARTIFACT)
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.hf_path = path  # textops.modeling.explain loads the PyTorch weights from here when ONNX serves
        if config["runtime"] == "onnx" and onnx_dir and os.path.isfile(os.path.join(onnx_dir, ONNX_FILES[False])):
            graph = os.path.join(onnx_dir, ONNX_FILES[bool(config["quantize"])])
            self.session = onnx_session(graph, int(config["threads"] or 0))
            hf_config = AutoConfig.from_pretrained(path, local_files_only=True)
            self.runtime = "onnx-int8" if config["quantize"] else "onnx"
        else:
            import torch
            from transformers import AutoModelForSequenceClassification

            if config["runtime"] == "onnx":  # a model logged before the export, or one that could not be exported
                import logging

                logging.getLogger(__name__).warning("textops: this model has no ONNX graph; serving it with PyTorch")
            model = AutoModelForSequenceClassification.from_pretrained(path, local_files_only=True)
            model.to("cuda" if torch.cuda.is_available() else "cpu").eval()
            self.model, hf_config = model, model.config
            self.runtime = "torch"
        self.labels = [hf_config.id2label[i] for i in range(hf_config.num_labels)]

    def probabilities(self, texts: list[str], batch_size: int = 64):
        """Class probabilities for TEXTS (rows x classes) from whichever runtime this model was loaded with."""
        if self.scorer is not None:
            return self.scorer.probabilities(texts)
        if self.session is not None:
            return onnx_predict(self.session, self.tokenizer, texts, batch_size)
        return predict_texts(self.model, self.tokenizer, texts, batch_size)

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        return to_frame(self.probabilities(as_texts(model_input)), self.labels)


# --------------------------------------------------------------------------------------------------
# Requests to `mlflow models serve`
#
# MLflow's scoring server answers a few malformed requests with 500 (a missing Content-Type header, JSON
# nested deeper than Python's recursion limit) and converts numbers in `{"inputs": [1, 2]}` to the
# strings "1", "2" before the model sees them. A client mistake must get a 4xx that says what is wrong,
# so the model, when the scoring server loads it, wraps the server's `invocations` function (looked up
# by the request handler at call time) with these checks. If MLflow renames that function, the guard
# is skipped with a warning, and tests/integration/test_serve.py (`mlflow models serve` of the champion) fails.
# `textops serve` does not use this: it reads requests with `textops.serving.scoring`, which calls `request_problem`.

SERVER_MODEL_PATH_ENV = "__pyfunc_model_path__"  # mlflow.pyfunc.scoring_server._SERVER_MODEL_PATH
TEXT_LISTS = ("inputs", "instances")


def request_problem(body: dict) -> str | None:
    """Why a parsed JSON request cannot be classified, or None. Only the list forms need a check here:
    the dataframe forms reach `predict` with their values unconverted."""
    for key in TEXT_LISTS:
        if key not in body:
            continue
        value = body[key]
        if isinstance(value, dict) and "text" in value:  # columnar: {"inputs": {"text": [...]}}
            value = value["text"]
        if not isinstance(value, list):
            continue  # MLflow's schema check answers 400 for these
        items = [v["text"] if isinstance(v, dict) and "text" in v else v for v in value]
        bad = [i for i, v in enumerate(items) if not isinstance(v, str)]
        if bad:
            example = json.dumps(items[bad[0]], default=str)[:80]
            return f"'{key}' must be a list of strings; item(s) {bad[:10]} are not (e.g. {example})"
    return None


def guard_scoring_server() -> bool:
    """Wrap the scoring server's `invocations` with the checks above; True when in place."""
    import logging

    try:
        from mlflow.pyfunc import scoring_server
    except ImportError:
        return False
    original = getattr(scoring_server, "invocations", None)
    if original is None or not hasattr(scoring_server, "InvocationsResponse"):
        logging.getLogger(__name__).warning("textops: MLflow's scoring server changed; request guard not installed")
        return False
    if getattr(original, "textops_guard", False):
        return True

    def invocations(data, content_type, model, input_schema):
        if not content_type:
            return scoring_server.InvocationsResponse(
                response="The Content-Type header is missing: send application/json (or text/csv).",
                status=415,
                mimetype="text/plain",
            )
        if content_type.split(";")[0].strip().lower() == "application/json" and isinstance(data, bytes | str):
            # Parsed here, once, and handed on decoded: MLflow parsing the raw body again, a few stack frames
            # deeper, hits the recursion limit at a slightly smaller depth than this check (a 500 again).
            try:
                parsed = json.loads(data)
            except RecursionError as exc:
                raise _bad_input("the JSON body is nested too deeply to parse") from exc
            except UnicodeDecodeError as exc:
                raise _bad_input(f"the body is not UTF-8 ({exc.reason} at byte {exc.start})") from exc
            except ValueError as exc:
                raise _bad_input(f"the body is not valid JSON ({exc})") from exc
            if not isinstance(parsed, dict):
                raise _bad_input(
                    "the body must be a JSON object with one of 'inputs', 'instances', 'dataframe_split' or "
                    f"'dataframe_records', not a {type(parsed).__name__}"
                )
            problem = request_problem(parsed)
            if problem:
                raise _bad_input(problem)
            data = parsed  # MLflow accepts the decoded dict as well
        try:
            return original(data, content_type, model, input_schema)
        except RecursionError as exc:  # a deeply nested value inside an object (dataframe_records: [[[[...]]]])
            raise _bad_input("the request is nested too deeply") from exc

    invocations.__dict__["textops_guard"] = True  # a function attribute (getattr above reads it)
    scoring_server.invocations = invocations
    return True


set_model(TextClassifier())
