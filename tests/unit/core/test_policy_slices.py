"""The per-slice promotion rule (policy.compare_slices, policy.decide's `slices`), with real arrays: a challenger
that wins overall but loses significantly on one slice of the same test rows is held, and the decision names it."""

from __future__ import annotations

import numpy as np

from textops.core.config import PromotionParams
from textops.core.policy import compare_slices, decide, mcnemar, score

POLICY = PromotionParams(primary_metric="accuracy", min_delta=0.01, max_p_value=0.05, floor=0.6, min_slice_rows=30)


def rows(n_fr: int, fr_lost: int, en_won: int, n_en: int = 340):
    """Labels, challenger and champion predictions, and the language slices: on N_EN English rows the champion is
    wrong on EN_WON the challenger gets right; on N_FR French rows the challenger is wrong on FR_LOST the champion
    gets right."""
    y = np.array(["pos", "neg"] * ((n_en + n_fr) // 2) + ["pos"] * ((n_en + n_fr) % 2), dtype=object)
    flip = {"pos": "neg", "neg": "pos"}
    new, old = y.copy(), y.copy()
    old[:en_won] = [flip[v] for v in y[:en_won]]
    new[n_en : n_en + fr_lost] = [flip[v] for v in y[n_en : n_en + fr_lost]]
    language = np.array(["en"] * n_en + ["fr"] * n_fr, dtype=object)
    return y, new, old, {"language": language}


def decision(y, new, old, slices, policy=POLICY):
    paired = mcnemar(y, new, old)
    compared = compare_slices(policy, y, new, old, slices)
    return decide(policy, score(y, new, "accuracy"), score(y, old, "accuracy"), paired.p_value, slices=compared)


def test_a_challenger_that_wins_overall_but_loses_a_slice_is_held_and_the_slice_named():
    y, new, old, slices = rows(n_fr=60, fr_lost=20, en_won=100)
    assert score(y, new, "accuracy") > score(y, old, "accuracy") + POLICY.min_delta
    assert mcnemar(y, new, old).p_value < POLICY.max_p_value  # it beats the champion overall, significantly
    d = decision(y, new, old, slices)
    assert not d.promote
    assert "language=fr (60 rows)" in d.reason and "McNemar p=" in d.reason
    assert "beats champion" in d.reason  # what it won is still said
    assert "language=en" not in d.reason


def test_without_the_losing_slice_the_same_challenger_is_promoted():
    y, new, old, slices = rows(n_fr=60, fr_lost=0, en_won=100)
    assert decision(y, new, old, slices).promote
    y, new, old, slices = rows(n_fr=60, fr_lost=2, en_won=100)  # behind on the slice, but not significantly
    compared = compare_slices(POLICY, y, new, old, slices)
    fr = next(s for s in compared if s.name == "language=fr")
    assert fr.paired.c == 2 and fr.paired.b == 0 and fr.paired.p_value >= POLICY.max_p_value
    assert decision(y, new, old, slices).promote


def test_a_slice_below_min_slice_rows_proves_nothing_either_way():
    y, new, old, slices = rows(n_fr=20, fr_lost=12, en_won=100)
    assert mcnemar(y[-20:], new[-20:], old[-20:]).p_value < POLICY.max_p_value  # significant on its own...
    compared = compare_slices(POLICY, y, new, old, slices)
    assert [s.name for s in compared] == ["language=en"]  # ...but too small to be compared
    assert decision(y, new, old, slices).promote
    smaller = POLICY.model_copy(update={"min_slice_rows": 10})
    held = decision(y, new, old, slices, smaller)
    assert not held.promote and "language=fr (20 rows)" in held.reason


def test_the_slice_rule_never_speaks_for_a_first_champion_or_a_refused_one():
    y, new, old, slices = rows(n_fr=60, fr_lost=20, en_won=100)
    compared = compare_slices(POLICY, y, new, old, slices)
    assert decide(POLICY, 0.9, slices=compared).promote  # no champion: the floor decides
    refused = decide(POLICY, 0.7, 0.8, 0.001, slices=compared)
    assert not refused.promote and "language=fr" not in refused.reason  # the first refusing rule speaks
