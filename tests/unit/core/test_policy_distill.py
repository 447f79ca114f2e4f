"""promotion.max_distill_drop: a distilled student may give up a bounded share of the metric for latency."""

from __future__ import annotations

from textops.core.config import PromotionParams
from textops.core.policy import Guard, Latency, decide

POLICY = PromotionParams(primary_metric="macro_f1", max_p_value=0.05, floor=0.6)  # drop 0.01, speedup 1.5


def test_a_student_within_the_drop_and_fast_enough_is_promoted_naming_its_figures():
    d = decide(POLICY, 0.905, 0.912, p_value=0.5, latency=Latency(student_ms=2.0, teacher_ms=4.0))
    assert d.promote
    for figure in ("0.9050", "0.9120", "0.0070", "2.00 ms", "4.00 ms", "2.00x", "max_distill_drop 0.01", "1.5"):
        assert figure in d.reason, figure


def test_a_student_that_loses_too_much_or_is_not_fast_enough_gets_the_usual_rules():
    too_much = decide(POLICY, 0.89, 0.912, p_value=0.01, latency=Latency(student_ms=1.0, teacher_ms=4.0))
    assert not too_much.promote
    assert "does not beat the champion" in too_much.reason and "4.00x" in too_much.reason
    slow = decide(POLICY, 0.91, 0.912, p_value=0.5, latency=Latency(student_ms=3.0, teacher_ms=4.0))
    assert not slow.promote and "1.33x" in slow.reason and "min_distill_speedup 1.5" in slow.reason
    # without a latency (not a student) the same figures are refused, as before
    assert not decide(POLICY, 0.905, 0.912, p_value=0.5).promote
    # a student that beats the champion outright is promoted whatever its speed
    better = decide(POLICY, 0.95, 0.90, p_value=0.001, latency=Latency(student_ms=4.0, teacher_ms=4.0))
    assert better.promote and "beats champion" in better.reason


def test_the_bounds_are_the_policys_and_the_other_rules_still_hold():
    strict = PromotionParams(max_distill_drop=0.0, min_distill_speedup=3.0)
    fast = Latency(student_ms=1.0, teacher_ms=2.5)
    assert not decide(strict, 0.905, 0.912, latency=fast).promote
    assert decide(strict, 0.912, 0.912, latency=Latency(student_ms=1.0, teacher_ms=3.0)).promote
    assert not decide(POLICY, 0.905, 0.912, validation_ok=False, latency=fast).promote
    guard = Guard("the champion's own test rows", 100, challenger_metric=0.80, champion_metric=0.90)
    held = decide(POLICY, 0.905, 0.912, guards=[guard], latency=fast)
    assert not held.promote and "own test rows" in held.reason
    assert not decide(POLICY, 0.905, 0.912, baseline_metric=0.95, latency=fast).promote
    assert Latency(student_ms=0.0, teacher_ms=1.0).speedup == 0.0
