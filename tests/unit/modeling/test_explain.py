"""Explanations (`textops.modeling.explain`) on a tiny BERT built in memory (random weights, seeded): integrated
gradients is complete (the words' attributions sum to the target logit's difference from the [PAD] baseline),
wordpieces merge back to the words of the text, and the user's mistakes are refused with a message."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import EXPORT_TEXTS

# Captum imports matplotlib, whose first import in a fresh MPLCONFIGDIR runs fc-list to build its font cache: done
# here, at collection, so that no test is blamed for a process a library starts once.
pytest.importorskip("captum.attr")

LABELS = ["neg", "pos"]


@pytest.fixture(scope="module")
def tiny():
    import torch

    from textops.core.config import ModelParams
    from textops.modeling.model import load_base

    torch.manual_seed(0)
    tok, model = load_base(ModelParams(base="tiny", max_length=32), LABELS, EXPORT_TEXTS)
    # At its init (std 0.02) the model answers nearly the same for any text (logit differences ~1e-4), which any
    # sum of small numbers would "explain": larger weights make the words matter (differences ~1).
    with torch.no_grad():
        for weight in (p for p in model.parameters() if p.dim() > 1):
            weight.normal_(0, 0.2)
    return tok, model.eval()


def target_logit(model, tok, text: str, baseline: bool, target: int) -> float:
    """The target class's logit for TEXT, or for its baseline (every token but [CLS]/[SEP] replaced by [PAD])."""
    import torch

    enc = tok(text, return_tensors="pt", return_special_tokens_mask=True)
    ids = enc["input_ids"]
    if baseline:
        ids = ids.masked_fill(~enc["special_tokens_mask"].bool(), tok.pad_token_id)
    with torch.no_grad():
        return float(model(input_ids=ids, attention_mask=enc["attention_mask"]).logits[0, target])


@pytest.mark.parametrize("target", [None, 0])
def test_attributions_sum_to_the_logit_difference(tiny, target):
    from textops.modeling.explain import attribute

    tok, model = tiny
    text = "the plot was not good, really unwatchable film"
    out = attribute(model, tok, LABELS, text, target, steps=32)
    chosen = LABELS.index(out["target"])
    if target is None:
        assert out["target"] == out["label"]  # the predicted class by default
    difference = target_logit(model, tok, text, False, chosen) - target_logit(model, tok, text, True, chosen)
    total = sum(w["attribution"] for w in out["words"])
    assert abs(difference) > 0.1  # a difference worth explaining
    assert abs(total - difference) <= 0.01 * max(1.0, abs(difference))
    assert abs(out["delta"]) <= 0.01 * max(1.0, abs(difference))
    assert out["logit"] - out["baseline_logit"] == pytest.approx(difference, abs=1e-4)
    # wordpieces merged back to the text's own words, with their offsets
    assert [w["word"] for w in out["words"]] == [
        "the",
        "plot",
        "was",
        "not",
        "good",
        ",",
        "really",
        "unwatchable",
        "film",
    ]
    assert all(text[w["start"] : w["end"]] == w["word"] for w in out["words"])


def test_most_confidently_wrong_rows_come_first():
    from textops.modeling.explain import most_confidently_wrong

    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.05, 0.95]])
    assert most_confidently_wrong(probs, np.array([1, 1, 0, 0]), 5) == [3, 0, 2]
    assert most_confidently_wrong(probs, np.array([1, 1, 0, 0]), 1) == [3]
    assert most_confidently_wrong(probs, np.array([0, 1, 1, 1]), 5) == []


def test_unknown_target_and_empty_texts_are_refused(tiny):
    from textops.core.errors import DataError
    from textops.modeling.explain import check_texts, target_index

    assert target_index(LABELS, "pos") == 1 and target_index(LABELS, None) is None
    with pytest.raises(DataError, match="unknown target label 'maybe'.*neg, pos"):
        target_index(LABELS, "maybe")
    with pytest.raises(DataError, match="no texts"):
        check_texts([])
    with pytest.raises(DataError, match=r"\[1\] are empty"):
        check_texts(["fine", "  "])
