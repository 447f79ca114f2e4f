"""The monitoring statistics (textops.live.drift) on synthetic data: each test sees no drift where the two samples come
from one distribution, and the drift, named by its kind, where they do not."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from textops.live import drift


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def test_ks_shift_sees_a_length_shift_and_not_noise():
    same = drift.ks_shift("input", "length", rng(1).normal(50, 10, 800), rng(2).normal(50, 10, 800), 0.01, 0.15)
    moved = drift.ks_shift("input", "length", rng(1).normal(50, 10, 800), rng(2).normal(80, 10, 800), 0.01, 0.15)
    assert not same["drifted"] and same["p_value"] > 0.01
    assert moved["drifted"] and moved["statistic"] > 0.5 and moved["kind"] == "input"
    assert moved["current"] == pytest.approx(80, abs=2)


def test_ks_shift_needs_an_effect_as_well_as_a_small_p_value():
    # 20,000 rows each: a shift of 0.05 standard deviations is "significant" and means nothing
    tiny = drift.ks_shift("input", "length", rng(1).normal(0, 1, 20000), rng(2).normal(0.05, 1, 20000), 0.01, 0.15)
    assert tiny["p_value"] < 0.01 and not tiny["drifted"]


def test_oov_rate_counts_word_tokens_not_in_the_vocabulary():
    vocab = drift.vocabulary(["the film was great", "The plot was dull"])
    assert drift.oov_rate(vocab, ["the film was superb"]) == pytest.approx(0.25)
    assert drift.oov_rate(vocab, ["THE FILM"]) == 0.0  # case does not matter
    assert drift.oov_rate(vocab, [""]) == 0.0


def test_vocabulary_shift_is_relative_to_the_held_out_baseline():
    words = [f"w{i}" for i in range(200)]
    r = rng(3)
    train = [" ".join(r.choice(words[:150], 6)) for _ in range(500)]
    held_out = [" ".join(r.choice(words, 6)) for _ in range(200)]  # a quarter of its words are unseen: baseline
    same = [" ".join(r.choice(words, 6)) for _ in range(200)]
    foreign = [" ".join(f"x{j}" for j in r.integers(0, 999, 6)) for _ in range(200)]
    assert not drift.vocabulary_shift(train, held_out, same, 0.05)["drifted"]
    shifted = drift.vocabulary_shift(train, held_out, foreign, 0.05)
    assert shifted["drifted"] and shifted["current"] == 1.0 and shifted["reference"] == pytest.approx(0.25, abs=0.05)


def test_domain_classifier_cannot_tell_one_distribution_from_itself():
    auc, p = drift.domain_classifier(rng(4).normal(0, 1, (300, 16)), rng(5).normal(0, 1, (300, 16)), 5, 0)
    assert 0.4 < auc < 0.6 and p > 0.01


def test_domain_classifier_tells_shifted_embeddings_apart():
    moved = rng(5).normal(0, 1, (200, 16))
    moved[:, 3] += 1.5  # one direction of the embedding space moved
    check = drift.embedding_shift(rng(4).normal(0, 1, (400, 16)), moved, 0.01, 0.7, 5, 0)
    assert check["drifted"] and check["statistic"] > 0.8 and check["p_value"] < 1e-6


def test_distribution_shift_sees_changed_shares_and_unseen_classes():
    ref = ["pos"] * 500 + ["neg"] * 500
    assert not drift.distribution_shift("label", "labels", ref, ["pos"] * 103 + ["neg"] * 97, 0.01, 0.1)["drifted"]
    skewed = drift.distribution_shift("label", "labels", ref, ["pos"] * 170 + ["neg"] * 30, 0.01, 0.1)
    assert skewed["drifted"] and skewed["statistic"] == pytest.approx(0.35) and skewed["current"]["pos"] == 0.85
    new_class = drift.distribution_shift("label", "labels", ref, ["pos"] * 60 + ["neg"] * 60 + ["spam"] * 80, 0.01, 0.1)
    assert new_class["drifted"] and new_class["unseen"] == ["spam"]


def test_distribution_shift_of_one_class_on_both_sides_is_no_shift():
    check = drift.distribution_shift("input", "predicted", ["a"] * 50, ["a"] * 40, 0.01, 0.1)
    assert check["p_value"] == 1.0 and not check["drifted"]


def test_performance_decay_against_the_recorded_test_figures():
    truth = ["pos", "neg"] * 100
    proven = {"accuracy": 0.9, "macro_f1": 0.9}
    good = drift.performance_decay(truth, truth[:180] + truth[181:] + ["neg"], proven, 0.1)
    assert [c["drifted"] for c in good] == [False, False]
    flipped = ["neg" if t == "pos" else "pos" for t in truth]
    bad = drift.performance_decay(truth, flipped, proven, 0.1)
    assert [(c["kind"], c["name"], c["drifted"]) for c in bad] == [
        ("performance", "accuracy", True),
        ("performance", "macro_f1", True),
    ]
    assert bad[0]["current"] == 0.0 and bad[0]["statistic"] == pytest.approx(0.9)
    unknown = drift.performance_decay(truth, flipped, {"accuracy": None, "macro_f1": 0.9}, 0.1)
    assert "skipped" in unknown[0] and not unknown[0]["drifted"] and unknown[1]["drifted"]


def test_summarize_names_the_kinds_that_drifted():
    checks = [
        drift.check("input", "a", "t", False),
        drift.check("performance", "b", "t", True),
        drift.check("label", "c", "t", True),
        drift.skipped("input", "d", "no texts"),
    ]
    assert drift.summarize(checks) == {"drift": True, "kinds": ["label", "performance"]}
    assert drift.summarize(checks[:1]) == {"drift": False, "kinds": []}
    with pytest.raises(ValueError):
        drift.check("vibes", "x", "t")


@given(st.lists(st.tuples(st.sampled_from("abcd"), st.sampled_from("abce")), min_size=1, max_size=60))
@settings(max_examples=200, deadline=None)
def test_scores_agree_with_scikit_learn(pairs):
    """drift.scores computes macro-F1 in numpy (status must not import scikit-learn): the same figure."""
    from sklearn.metrics import f1_score

    truth, predicted = (list(x) for x in zip(*pairs, strict=True))
    got = drift.scores(truth, predicted)
    assert got["macro_f1"] == pytest.approx(f1_score(truth, predicted, average="macro", zero_division=0))
    assert got["accuracy"] == pytest.approx(np.mean(np.asarray(truth) == np.asarray(predicted)))
