"""The promotion policy and McNemar's test, pure: no MLflow, no files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from textops.core.config import PromotionParams
from textops.core.errors import RegistryError
from textops.core.policy import (
    Guard,
    champion_stack,
    decide,
    expected_accuracy,
    mcnemar,
    rollback_target,
    score,
    stronger_model_advice,
)

POLICY = PromotionParams(primary_metric="macro_f1", min_delta=0.01, max_p_value=0.05, floor=0.6)


# --------------------------------------------------------------------------------------------------
# McNemar


def test_mcnemar_counts_discordant_pairs_and_matches_binomial():
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0])
    new = np.array([1, 1, 1, 1, 0, 0, 1, 0])  # wrong on row 6
    old = np.array([0, 0, 1, 1, 0, 1, 0, 0])  # wrong on rows 0, 1, 5
    r = mcnemar(y, new, old)
    assert (r.b, r.c) == (3, 1)
    # two-sided exact binomial: P(X<=1 or X>=3 | n=4, p=.5) = (1+4+4+1)/16
    assert r.p_value == pytest.approx(10 / 16)


def test_mcnemar_identical_models_p_is_one():
    y = np.array([0, 1, 0, 1])
    assert mcnemar(y, y, y).p_value == 1.0
    assert mcnemar(y, 1 - y, 1 - y).p_value == 1.0  # equally wrong everywhere: no evidence either way


def test_mcnemar_many_one_sided_wins_is_significant():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    new = y.copy()
    old = y.copy()
    old[:40] = 1 - old[:40]  # the champion is wrong on 40 rows the challenger gets right
    r = mcnemar(y, new, old)
    assert (r.b, r.c) == (40, 0)
    assert r.p_value < 1e-10


def test_mcnemar_works_on_label_names_and_rejects_unequal_lengths():
    assert mcnemar(["a", "b"], ["a", "a"], ["b", "b"]).b == 1
    with pytest.raises(ValueError, match="equal lengths"):
        mcnemar([0, 1], [0], [0, 1])


def test_score_metrics():
    y = ["neg", "neg", "pos", "pos"]
    p = ["neg", "pos", "pos", "pos"]
    assert score(y, p, "accuracy") == pytest.approx(0.75)
    assert score(y, p, "macro_f1") == pytest.approx((2 / 3 + 0.8) / 2)


# --------------------------------------------------------------------------------------------------
# the decision


def test_first_model_promoted_only_above_floor():
    assert decide(POLICY, 0.7).promote
    d = decide(POLICY, 0.5)
    assert not d.promote and "floor" in d.reason


def test_failed_or_skipped_validation_never_promotes():
    for champion in (None, 0.5):
        d = decide(POLICY, 0.99, champion, 1e-9, validation_ok=False)
        assert not d.promote and "validation" in d.reason


def test_must_promote_when_better_by_min_delta_and_significant():
    d = decide(POLICY, 0.90, 0.80, 0.001)
    assert d.promote and "beats" in d.reason


@pytest.mark.parametrize(
    ("new", "old", "p", "why"),
    [
        (0.805, 0.80, 0.001, "below promotion.min_delta 0.01"),  # better, significant, but below min_delta
        (0.80, 0.80, 0.001, "does not beat the champion"),  # a tie never promotes
        (0.70, 0.80, 0.001, "does not beat the champion"),  # worse
        (0.90, 0.80, 0.20, "not significant"),  # better by a lot on few rows: p too large
        (0.90, 0.80, 0.05, "not significant"),  # p must be strictly below the threshold
        (0.90, 0.80, None, "not significant"),
    ],
)
def test_must_not_promote(new, old, p, why):
    d = decide(POLICY, new, old, p)
    assert not d.promote
    assert why in d.reason


def test_zero_min_delta_still_needs_a_strict_win():
    policy = PromotionParams(min_delta=0.0, max_p_value=0.05, floor=0.0)
    tie = decide(policy, 0.8, 0.8, 0.0)
    assert not tie.promote and "at least 0.0" not in tie.reason  # no "does not beat it by at least 0.0"
    assert decide(policy, 0.8001, 0.8, 0.01).promote


def test_a_win_on_new_data_that_regresses_on_the_champions_rows_is_not_promoted():
    proven = Guard("the champion's test rows", 400, challenger_metric=0.71, champion_metric=0.89)
    d = decide(POLICY, 0.95, 0.80, 1e-6, guards=[proven])
    assert not d.promote and "the champion's test rows (400 rows)" in d.reason
    assert "0.7100 vs champion 0.8900" in d.reason
    within = Guard("the champion's test rows", 400, challenger_metric=0.885, champion_metric=0.89)
    assert decide(POLICY, 0.95, 0.80, 1e-6, guards=[within]).promote  # max_regression 0.01 allows noise


def test_a_guard_with_its_own_tolerance_is_judged_by_it():
    probe = "the champion's test texts with '#ad' appended (answers kept)"
    kept = Guard(probe, 300, challenger_metric=0.93, champion_metric=0.99, tolerance=0.1)
    assert decide(POLICY, 0.95, 0.80, 1e-6, guards=[kept]).promote  # within 0.1, though beyond max_regression
    flipped = Guard(probe, 300, challenger_metric=0.41, champion_metric=0.99, tolerance=0.1)
    d = decide(POLICY, 0.95, 0.80, 1e-6, guards=[flipped])
    assert not d.promote and "'#ad' appended" in d.reason and "its tolerance 0.1" in d.reason


def test_a_hold_is_for_a_person_whatever_the_metrics():
    d = decide(POLICY, 0.99, 0.50, 1e-9, hold="trained on data v3 was rolled back from")
    assert not d.promote and d.reason == "trained on data v3 was rolled back from"


def test_a_model_that_loses_to_the_baseline_is_never_promoted():
    first = decide(POLICY, 0.78, baseline_metric=0.81, advice=stronger_model_advice("tiny"))
    assert not first.promote
    assert "0.7800" in first.reason and "0.8100" in first.reason and "-S model.base=minilm" in first.reason
    # it beats the champion, significantly, yet a bag-of-words model does better on the same rows
    later = decide(POLICY, 0.80, 0.70, 1e-6, baseline_metric=0.85)
    assert not later.promote and "baseline" in later.reason
    assert decide(POLICY, 0.80, 0.70, 1e-6, baseline_metric=0.79).promote
    assert decide(POLICY, 0.81, baseline_metric=0.81).promote  # a tie does not lose
    assert decide(POLICY, 0.78).promote  # no baseline figure (evaluate.baseline off): the rule has nothing to say


def test_the_advice_after_losing_to_the_baseline_fits_the_model_that_lost():
    """Suggesting minilm to a model that was minilm helps nobody; nor does it help data its vocabulary cannot read."""
    assert "model.base=minilm" in stronger_model_advice("tiny", unknown_share=0.0)
    pretrained = stronger_model_advice("minilm", unknown_share=0.01)
    assert "model.base=minilm" not in pretrained and "train.epochs" in pretrained
    unreadable = stronger_model_advice("tiny", unknown_share=0.646)
    assert "model.base=minilm" not in unreadable and "65%" in unreadable and "multilingual" in unreadable
    assert "-S model.base=tiny" in stronger_model_advice("minilm", unknown_share=0.64)  # minilm chosen by hand
    assert "model.max_length" in stronger_model_advice("minilm", 0.0, truncated_share=0.4)
    assert "model.max_length" not in stronger_model_advice("minilm", 0.0, truncated_share=0.05)
    reason = decide(POLICY, 0.7, baseline_metric=0.8, advice=pretrained).reason
    assert "Try more epochs" in reason and "model.base=minilm" not in reason


def test_baseline_rule_can_be_turned_off_or_given_a_margin():
    off = PromotionParams(floor=0.6, beat_baseline=False)
    assert decide(off, 0.78, baseline_metric=0.81).promote
    margin = PromotionParams(floor=0.6, baseline_margin=0.02)
    assert decide(margin, 0.795, baseline_metric=0.81).promote
    lost = decide(margin, 0.785, baseline_metric=0.81)
    assert not lost.promote and "baseline_margin 0.02" in lost.reason


def test_the_baseline_speaks_only_for_a_model_every_other_rule_would_promote():
    assert decide(POLICY, 0.7, baseline_metric=0.9, hold="rolled back from").reason == "rolled back from"
    assert "validation" in decide(POLICY, 0.7, baseline_metric=0.9, validation_ok=False).reason
    assert "floor" in decide(POLICY, 0.5, baseline_metric=0.9).reason
    assert "does not beat the champion" in decide(POLICY, 0.7, 0.75, 0.01, baseline_metric=0.9).reason


# --------------------------------------------------------------------------------------------------
# history replay for rollback


def h(*entries):
    return [{"version": v, "kind": k} for v, k in entries]


def test_rollback_goes_back_one_champion_at_a_time():
    history = h(("1", "auto"), ("2", "auto"), ("3", "auto"))
    assert rollback_target(history, "3") == "2"
    history += h(("2", "rollback"))
    assert champion_stack(history) == ["1", "2"]
    assert rollback_target(history, "2") == "1"  # not back to 3
    history += h(("1", "rollback"))
    with pytest.raises(RegistryError, match="nothing to roll back"):
        rollback_target(history, "1")


def test_manual_promotion_and_rollback_to_unknown_version_push():
    history = h(("1", "auto"), ("4", "manual"), ("2", "rollback"))
    assert champion_stack(history) == ["1", "4", "2"]
    assert rollback_target(history, "2") == "4"


def test_rollback_when_alias_was_moved_outside_textops():
    assert rollback_target(h(("1", "auto")), "5") == "1"


def test_no_history_no_rollback():
    with pytest.raises(RegistryError):
        rollback_target([], "1")
    assert json.dumps(champion_stack([])) == "[]"


def test_the_champion_expects_what_its_calibrated_confidence_says():
    # A model right 90 % of the time on its test split while 95 % sure on average is overconfident by 0.95/0.90.
    unsure = np.full(200, 0.6)
    assert expected_accuracy(unsure, 0.90, 0.95) == pytest.approx(0.6 * 0.90 / 0.95)
    # So a queue of texts it was unsure of (about 57 % expected) passes a 0.25 drop at 0.55 right ...
    assert 0.55 >= expected_accuracy(unsure, 0.90, 0.95) - 0.25
    # ... while a batch it is sure of and gets wrong (flipped labels) does not.
    assert 0.10 < expected_accuracy(np.full(200, 0.97), 0.90, 0.95) - 0.25
    # Never more than its test accuracy; no recorded test confidence (an older champion): confidence as it is.
    assert expected_accuracy(np.full(50, 1.0), 0.80, 0.70) == 0.80
    assert expected_accuracy(np.full(50, 0.7), 0.90, None) == pytest.approx(0.7)
    assert expected_accuracy([], 0.9, 0.9) == 0.9
