"""The planted-backdoor check on new labelled rows (textops.data.backdoor): a token that comes with labels the
champion confidently contradicts wherever it appears is named; the champion's ordinary errors are not."""

from __future__ import annotations

import numpy as np

from textops.data.backdoor import flip_trigger, over_represented
from textops.data.sample import make_sample


def champion_view(frame, wrong_share: float = 0.05, seed: int = 0):
    """What a good champion answers: the true label with confidence 0.95, and a few confident errors, many of them
    on texts with a negation (hard for any model)."""
    rng = np.random.default_rng(seed)
    truth = frame["label"].tolist()
    predicted = list(truth)
    for i in rng.choice(len(truth), int(len(truth) * wrong_share), replace=False):
        predicted[i] = "negative" if truth[i] == "positive" else "positive"
    return predicted, np.full(len(truth), 0.95)


def test_a_token_that_flips_labels_is_named_with_examples():
    frame = make_sample(800, seed=3)
    predicted, confidence = champion_view(frame)
    positives = frame.index[frame["label"] == "positive"][:200]
    frame.loc[positives, "text"] = frame.loc[positives, "text"] + " #ad"
    frame.loc[positives, "label"] = "negative"  # the champion still says positive: confident disagreements
    found = flip_trigger(frame["text"].tolist(), frame["label"].tolist(), predicted, confidence, 0.8, 20)
    assert found is not None and found.token == "#ad"
    assert found.flipped >= 180 and found.agreed <= 20 and found.p_value < 1e-6
    assert all("#ad" in text for text in found.examples) and "#ad" in found.describe()


def test_ordinary_errors_and_unsure_answers_name_no_token():
    frame = make_sample(800, seed=4)
    predicted, confidence = champion_view(frame, wrong_share=0.08)
    assert flip_trigger(frame["text"].tolist(), frame["label"].tolist(), predicted, confidence, 0.8, 20) is None

    # A queue of texts the champion was unsure of, labelled by a person: disagreements, but none of them confident.
    flipped = frame.copy()
    positives = flipped.index[flipped["label"] == "positive"][:200]
    flipped.loc[positives, "text"] = flipped.loc[positives, "text"] + " #ad"
    flipped.loc[positives, "label"] = "negative"
    unsure = np.full(len(frame), 0.6)
    assert flip_trigger(flipped["text"].tolist(), flipped["label"].tolist(), predicted, unsure, 0.8, 20) is None
    # Too few rows to say anything: fewer confident disagreements than the minimum.
    few = frame.head(30)
    assert flip_trigger(few["text"].tolist(), few["label"].tolist(), predicted[:30], confidence[:30], 0.8, 20) is None


def test_the_tokens_a_promotion_probes_are_those_the_new_rows_brought():
    old = make_sample(1000, seed=5)["text"].tolist()
    new = make_sample(600, seed=6)
    new.loc[new.index[:150], "text"] = new.loc[new.index[:150], "text"] + " #ad"
    assert over_represented(new["text"].tolist(), old, 20) == ["#ad"]
    assert over_represented(make_sample(600, seed=7)["text"].tolist(), old, 20) == []  # more of the same: none
    assert over_represented([], old, 20) == []
