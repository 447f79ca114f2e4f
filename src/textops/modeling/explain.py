"""Why the model answered as it did: per-word attributions for one class (the predicted one unless asked for
another), used by `textops explain`, `POST /explain` and the run report's most confidently wrong test rows.

For a transformers classifier: Captum's layer integrated gradients on the word embeddings. The baseline is the
same sequence with every token but [CLS]/[SEP] replaced by [PAD] (position and segment embeddings are the
model's own, so only the words differ). Integrated gradients is complete: the attributions of all tokens sum to
logit(text) - logit(baseline) of the target class, up to the integral's approximation error, which Captum
returns as the convergence delta; every explanation carries it. [CLS]/[SEP] are equal in text and baseline, so
their attribution is exactly 0 and leaving them out changes no sum. Wordpieces are summed back to the words the
tokenizer split the text into (a fast tokenizer's word ids and character offsets).

Other model kinds plug in through `EXPLAINERS` (the pyfunc's class name -> a function with the signature of
`explain_transformer`). The tfidf family is the same pyfunc class with a linear scorer: `explain_linear`,
coefficient x TF-IDF value per n-gram, exact (`delta` 0).
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from textops.core.errors import DataError, ModelError

METHOD = "layer_integrated_gradients"
# Captum's default Gauss-Legendre rule: 32 points leave a delta well under 1 % of the logit difference on the
# models textops trains (tests/unit/modeling/test_explain.py holds it to a tolerance).
DEFAULT_STEPS = 32
_LOAD_LOCK = threading.Lock()


def target_index(labels: list[str], target: str | None) -> int | None:
    """The index of the class TARGET names (None: the predicted class); DataError for a label the model lacks."""
    if target is None:
        return None
    names = [str(label) for label in labels]
    if str(target) not in names:
        shown = ", ".join(names[:20]) + (" ..." if len(names) > 20 else "")
        raise DataError(
            f"unknown target label {str(target)[:100]!r}: this model's labels are {shown}. Leave the target out to "
            "explain the predicted class."
        )
    return names.index(str(target))


def check_texts(texts: list[str]) -> None:
    """DataError for no texts or an empty one: there is nothing to attribute."""
    if not texts:
        raise DataError("no texts to explain: give at least one")
    empty = [i for i, text in enumerate(texts) if not text.strip()]
    if empty:
        raise DataError(f"text(s) {empty[:10]} are empty: there are no words to attribute the answer to")


def explain(model, texts: list[str], target: str | None = None, steps: int = DEFAULT_STEPS) -> list[dict]:
    """Per-word attributions of a loaded model (a pyfunc, or its python model) for TEXTS, towards class TARGET
    (a label name; None: each text's predicted class). One dict per text (see `explain_transformer`)."""
    python_model = model.unwrap_python_model() if hasattr(model, "unwrap_python_model") else model
    if getattr(python_model, "hf_path", None) is None:
        from textops.modeling.pyfunc import HF_ARTIFACT

        # A model logged before pyfunc kept `hf_path`: its weights' folder from MLflow's wrapper, which holds the
        # load context (a private attribute: without it, explaining_copy says what to do).
        context = getattr(getattr(model, "_model_impl", None), "context", None)
        artifacts = getattr(context, "artifacts", None) or {}
        if HF_ARTIFACT in artifacts:
            python_model.hf_path = artifacts[HF_ARTIFACT]
    explainer = EXPLAINERS.get(type(python_model).__name__)
    if explainer is None:
        raise ModelError(f"textops cannot explain a {type(python_model).__name__} model (no explainer for its kind)")
    check_texts(texts)
    return explainer(python_model, texts, target, steps)


def explain_version(
    root, params, texts: list[str], version: str | None = None, target: str | None = None, steps: int | None = None
) -> dict:
    """`textops explain`: the champion (or VERSION) loaded with PyTorch, its explanations of TEXTS towards TARGET
    (None: each text's predicted class) with STEPS (None: serve.explain_steps); `model` names it."""
    from textops.adapters.tracking import connect
    from textops.modeling.predict import load_model, registered_uri

    check_texts(texts)
    uri = registered_uri(params, version)
    model = load_model(connect(root, params, experiment=False), uri)  # no serve params: PyTorch
    python_model = model.unwrap_python_model()
    if getattr(python_model, "model", None) is not None:
        python_model.explain_model = python_model.model  # nothing else predicts with it in this process
    used = steps or params.serve.explain_steps
    return {"model": uri, "steps": used, "explanations": explain(model, texts, target, used)}


def explain_text_classifier(python_model, texts: list[str], target: str | None, steps: int) -> list[dict]:
    """The pyfunc (`pyfunc.TextClassifier`): a tfidf model's exact linear attributions, else integrated gradients."""
    if getattr(python_model, "scorer", None) is not None:
        from textops.modeling.explain_linear import explain_tfidf

        return explain_tfidf(python_model.scorer, texts, target_index(python_model.labels, target))
    return explain_transformer(python_model, texts, target, steps)


def explain_transformer(python_model, texts: list[str], target: str | None, steps: int) -> list[dict]:
    """The transformers pyfunc: integrated gradients on its own PyTorch copy."""
    index = target_index(python_model.labels, target)
    network = explaining_copy(python_model)
    return [attribute(network, python_model.tokenizer, python_model.labels, text, index, steps) for text in texts]


def explaining_copy(python_model):
    """A PyTorch copy of the model kept for explanations, loaded on first use from the logged weights (ONNX may be
    what serves). Never the model that answers /invocations: Captum hooks the embedding layer while it runs, and a
    prediction in another thread would pass through the hook."""
    with _LOAD_LOCK:
        cached = getattr(python_model, "explain_model", None)
        if cached is None:
            path = getattr(python_model, "hf_path", None)
            if path is None:
                raise ModelError(
                    "this model was logged by an older textops that does not record where its PyTorch weights are; "
                    "register a new version to explain it"
                )
            import torch
            from transformers import AutoModelForSequenceClassification

            cached = AutoModelForSequenceClassification.from_pretrained(path, local_files_only=True).eval()
            cached.to("cuda" if torch.cuda.is_available() else "cpu")  # where pyfunc puts a PyTorch-served model
            python_model.explain_model = cached
        return cached


def attribute(model, tokenizer, labels: list[str], text: str, target: int | None, steps: int) -> dict:
    """Layer integrated gradients of MODEL's logit for class TARGET (None: the predicted class) on TEXT: `words`
    (word, start, end, attribution), `label` (the predicted class), `target`, `prob` (of the predicted class),
    `logit` and `baseline_logit` (of the target), `delta` (sum of attributions minus their difference)."""
    import torch
    from captum.attr import LayerIntegratedGradients

    from textops.modeling.pyfunc import CHARS_PER_TOKEN, label_values

    device = next(model.parameters()).device
    max_length = min(tokenizer.model_max_length, model.config.max_position_embeddings)
    text = text[: max_length * CHARS_PER_TOKEN]
    enc = tokenizer(text, truncation=True, max_length=max_length, return_tensors="pt", return_special_tokens_mask=True)
    ids, mask = enc["input_ids"].to(device), enc["attention_mask"].to(device)
    special = enc["special_tokens_mask"].to(device).bool()
    baseline = ids.masked_fill(~special, tokenizer.pad_token_id or 0)

    def forward(input_ids, attention_mask):
        return model(input_ids=input_ids, attention_mask=attention_mask).logits

    model.eval()
    with torch.no_grad():
        logits, base_logits = forward(torch.cat([ids, baseline]), torch.cat([mask, mask])).float()
    chosen = int(logits.argmax()) if target is None else target
    lig = LayerIntegratedGradients(forward, model.get_input_embeddings())
    attributions, delta = lig.attribute(
        ids,
        baselines=baseline,
        target=chosen,
        additional_forward_args=(mask,),
        n_steps=steps,
        internal_batch_size=steps,
        return_convergence_delta=True,
    )
    per_token = attributions.sum(dim=-1)[0].detach().double().cpu().numpy()
    values = label_values(labels)
    predicted = int(logits.argmax())
    return {
        "label": values[predicted],
        "target": values[chosen],
        "prob": float(torch.softmax(logits, dim=-1)[predicted]),
        "logit": float(logits[chosen]),
        "baseline_logit": float(base_logits[chosen]),
        "delta": float(delta.reshape(-1)[0]),
        "method": METHOD,
        "steps": steps,
        "words": merge_words(text, enc, per_token, tokenizer),
    }


def merge_words(text: str, enc, per_token: np.ndarray, tokenizer) -> list[dict]:
    """Token attributions summed per word (start, end: character offsets in TEXT) where the tokenizer gives word
    ids (a fast tokenizer); else one entry per token, without offsets. Special tokens are left out (0 each)."""
    if not getattr(enc, "is_fast", False):
        tokens = tokenizer.convert_ids_to_tokens(enc["input_ids"][0].tolist())
        special = enc["special_tokens_mask"][0].tolist()
        return [
            {"word": token, "start": None, "end": None, "attribution": float(value)}
            for token, value, is_special in zip(tokens, per_token, special, strict=True)
            if not is_special
        ]
    words: dict[int, dict[str, Any]] = {}
    for position, word in enumerate(enc.word_ids(0)):
        if word is None:
            continue
        span = enc.token_to_chars(0, position)
        entry = words.setdefault(word, {"start": span.start, "end": span.end, "attribution": 0.0})
        entry["end"] = span.end
        entry["attribution"] += float(per_token[position])
    return [{"word": text[w["start"] : w["end"]], **w} for w in words.values()]


def most_confidently_wrong(probs: np.ndarray, labels: np.ndarray, n: int) -> list[int]:
    """The rows (indices) of at most N misclassified rows, the most confident answer first."""
    wrong = np.flatnonzero(probs.argmax(axis=1) != labels)
    order = np.argsort(-probs[wrong].max(axis=1), kind="stable")
    return [int(i) for i in wrong[order][:n]]


def explain_errors(model, tokenizer, names: list[str], texts: list[str], labels, probs, n: int, steps: int):
    """The N most confidently wrong rows of a scored split, each explained towards the class the model (wrongly)
    gave it: `text`, `label` (the true one) and the explanation's fields. For the run report."""
    values = [str(v) for v in names]
    rows = []
    for i in most_confidently_wrong(probs, np.asarray(labels), n):
        if tokenizer is None:  # MODEL is a tfidf scorer
            from textops.modeling.explain_linear import explain_tfidf

            found = explain_tfidf(model, [texts[i]], None)[0]
        else:
            found = attribute(model, tokenizer, values, texts[i], None, steps)
        rows.append({"text": texts[i], "true_label": values[int(labels[i])], **found})
    return rows


EXPLAINERS = {"TextClassifier": explain_text_classifier}
