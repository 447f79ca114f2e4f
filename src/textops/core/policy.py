"""The promotion policy, pure: no MLflow, no files. The registry and the register stage apply it.

Policy (params.promotion):
- a new version always gets the alias `challenger`;
- the first version becomes `champion` when its primary metric reaches `floor`;
- a later one replaces the champion only when, on the *same* test rows, it beats the champion by at least
  `min_delta` (and by more than zero) AND McNemar's exact test on the paired predictions gives p < `max_p_value`;
- a failed or skipped data validation never promotes;
- no version is promoted that loses to the champion on a slice of the test split (`compare_slices`: a length
  quartile, a language, a group) of at least `min_slice_rows` rows: McNemar p < `max_p_value` with the champion
  right more often there;
- a distilled student (`textops distill`) passes the comparison with the champion when it is at most
  `max_distill_drop` below it and its p50 latency of one text is `min_distill_speedup` times lower (`distilled`);
- with `beat_baseline`, no version is promoted whose primary metric is more than `baseline_margin` below the
  TF-IDF + logistic regression baseline's on the same test split (`textops.baseline`).

Every champion change (automatic, manual, rollback) is one entry of a history; `champion_stack` replays it,
and `rollback_target` reads the previous champion from it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TypedDict

import numpy as np

from textops.core.config import MAX_UNKNOWN_SHARE, PromotionParams
from textops.core.errors import RegistryError


@dataclass(frozen=True)
class McNemar:
    """Paired comparison on the same rows: b = only the challenger right, c = only the champion right."""

    b: int
    c: int
    p_value: float


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str
    challenger_metric: float
    champion_metric: float | None = None
    p_value: float | None = None


class _Figures(TypedDict):
    """Decision's figures, passed as keywords."""

    challenger_metric: float
    champion_metric: float | None
    p_value: float | None


def mcnemar(y_true, pred_challenger, pred_champion) -> McNemar:
    """McNemar's exact test (two-sided binomial test on the discordant pairs).

    The exact test, not the chi-square approximation: test splits here can be small and the number of
    discordant pairs tiny. With no discordant pair the models agree everywhere and p = 1.
    """
    from scipy.stats import binomtest

    y, a, b_ = (np.asarray(x) for x in (y_true, pred_challenger, pred_champion))
    if not (len(y) == len(a) == len(b_)):
        raise ValueError(f"paired predictions need equal lengths, got {len(y)}, {len(a)}, {len(b_)}")
    right_a, right_b = a == y, b_ == y
    b = int(np.sum(right_a & ~right_b))
    c = int(np.sum(~right_a & right_b))
    p = 1.0 if b + c == 0 else float(binomtest(b, b + c, 0.5, alternative="two-sided").pvalue)
    return McNemar(b=b, c=c, p_value=p)


def score(y_true, y_pred, metric: str) -> float:
    """The primary metric, computed the same way for challenger and champion."""
    from sklearn.metrics import accuracy_score, f1_score

    if metric == "accuracy":
        return float(accuracy_score(y_true, y_pred))
    return float(f1_score(y_true, y_pred, average="macro", zero_division=0))


@dataclass(frozen=True)
class Guard:
    """Rows the champion was proven on (its own test rows, a pinned reference set): the challenger may not score
    more than `max_regression` below the champion on them, whatever it scores on its own test split."""

    name: str
    rows: int
    challenger_metric: float
    champion_metric: float
    tolerance: float | None = None  # how far below the challenger may be: promotion.max_regression unless set


@dataclass(frozen=True)
class SliceComparison:
    """Both models on the rows of one slice of the same test split (`kind=value`, e.g. `language=fr`)."""

    name: str
    rows: int
    challenger_metric: float
    champion_metric: float
    paired: McNemar

    def loses(self, max_p_value: float) -> bool:
        """The champion is right significantly more often than the challenger on these rows."""
        return self.paired.c > self.paired.b and self.paired.p_value < max_p_value


def compare_slices(policy: PromotionParams, y_true, pred_challenger, pred_champion, slices: dict) -> list:
    """A SliceComparison for each slice (SLICES: {kind: each row's slice}) with at least `min_slice_rows` rows;
    smaller slices prove nothing either way and are left out (the evaluation still reports them)."""
    y, new, old = (np.asarray(x) for x in (y_true, pred_challenger, pred_champion))
    out = []
    for kind, values in slices.items():
        values = np.asarray(values, dtype=object)
        for value in sorted(set(values.tolist())):
            rows = values == value
            if rows.sum() < policy.min_slice_rows:
                continue
            out.append(
                SliceComparison(
                    f"{kind}={value}",
                    int(rows.sum()),
                    challenger_metric=score(y[rows], new[rows], policy.primary_metric),
                    champion_metric=score(y[rows], old[rows], policy.primary_metric),
                    paired=mcnemar(y[rows], new[rows], old[rows]),
                )
            )
    return out


def decide(
    policy: PromotionParams,
    challenger_metric: float,
    champion_metric: float | None = None,
    p_value: float | None = None,
    validation_ok: bool = True,
    guards: tuple[Guard, ...] | list[Guard] = (),
    hold: str | None = None,
    baseline_metric: float | None = None,
    advice: str = "",
    slices: tuple[SliceComparison, ...] | list[SliceComparison] = (),
    latency: Latency | None = None,
) -> Decision:
    """Apply the promotion policy. `champion_metric=None` means there is no champion yet; HOLD is a reason a
    person must decide (the data was rolled back from), which no metric overrides; `baseline_metric=None` means
    the evaluation fitted no baseline; LATENCY: a distilled student's and its teacher's (`distilled`). The reason is
    the first rule that refuses; the baseline comes last, so it speaks only for a model every other rule would
    promote."""
    decision = against_champion(
        policy, challenger_metric, champion_metric, p_value, validation_ok, guards, hold, latency
    )
    lost = losing_slice(policy, slices) if decision.promote and champion_metric is not None else None
    decision = replace(decision, promote=False, reason=f"{decision.reason}, but {lost}") if lost else decision
    losing = loses_to_baseline(policy, challenger_metric, baseline_metric, advice) if decision.promote else None
    return replace(decision, promote=False, reason=losing) if losing else decision


@dataclass(frozen=True)
class Latency:
    """The p50 latency of one text (ms) in the serving runtime of a distilled student and of its teacher, measured in
    one process (`textops distill`)."""

    student_ms: float
    teacher_ms: float

    @property
    def speedup(self) -> float:
        return self.teacher_ms / self.student_ms if self.student_ms > 0 else 0.0


def distilled(
    policy: PromotionParams, challenger_metric: float, champion_metric: float, latency: Latency | None
) -> str | None:
    """Why a distilled student passes the comparison with the champion although it does not beat it, or None: its
    primary metric at most promotion.max_distill_drop below the champion's and its p50 latency at least
    promotion.min_distill_speedup times lower. Accuracy bought back as speed, within a bound a person set."""
    if latency is None:
        return None
    m, drop = policy.primary_metric, champion_metric - challenger_metric
    if drop > policy.max_distill_drop or latency.speedup < policy.min_distill_speedup:
        return None
    return (
        f"distilled: {m} {challenger_metric:.4f} vs champion {champion_metric:.4f} (drop {max(drop, 0):.4f} <= "
        f"promotion.max_distill_drop {policy.max_distill_drop}) at p50 {latency.student_ms:.2f} ms vs "
        f"{latency.teacher_ms:.2f} ms a text ({latency.speedup:.2f}x >= promotion.min_distill_speedup "
        f"{policy.min_distill_speedup})"
    )


def not_better(
    policy: PromotionParams, challenger_metric: float, champion_metric: float, p_value: float | None, args: _Figures
) -> Decision | None:
    """The refusal of a challenger that does not beat the champion clearly (delta, min_delta, McNemar), or None."""
    m = policy.primary_metric
    delta = challenger_metric - champion_metric
    versus = f"{m} {challenger_metric:.4f} vs champion {champion_metric:.4f}"
    if delta <= 0:
        return Decision(False, f"{versus}: does not beat the champion (delta {delta:+.4f})", **args)
    if delta < policy.min_delta:
        return Decision(False, f"{versus}: delta {delta:+.4f} is below promotion.min_delta {policy.min_delta}", **args)
    if p_value is None or p_value >= policy.max_p_value:
        shown = "n/a" if p_value is None else f"{p_value:.4g}"
        return Decision(
            False, f"{m} delta {delta:+.4f} is not significant: McNemar p={shown} >= {policy.max_p_value}", **args
        )
    return None


def against_champion(
    policy: PromotionParams,
    challenger_metric: float,
    champion_metric: float | None,
    p_value: float | None,
    validation_ok: bool,
    guards: tuple[Guard, ...] | list[Guard],
    hold: str | None,
    latency: Latency | None = None,
) -> Decision:
    """The policy without the baseline (see `decide`)."""
    m = policy.primary_metric
    args = _Figures(challenger_metric=challenger_metric, champion_metric=champion_metric, p_value=p_value)
    if hold:
        return Decision(False, hold, **args)
    if not validation_ok:
        return Decision(False, "data validation failed or was skipped for this data version", **args)
    if champion_metric is None:
        if challenger_metric >= policy.floor:
            return Decision(True, f"first champion: {m} {challenger_metric:.4f} >= floor {policy.floor}", **args)
        return Decision(False, f"no champion yet and {m} {challenger_metric:.4f} < floor {policy.floor}", **args)
    versus = f"{m} {challenger_metric:.4f} vs champion {champion_metric:.4f}"
    passed = distilled(policy, challenger_metric, champion_metric, latency)
    refused = None if passed else not_better(policy, challenger_metric, champion_metric, p_value, args)
    if refused is not None:
        if latency is not None:  # a student that missed the distillation rule too: say by how much
            refused = replace(refused, reason=f"{refused.reason}; {distill_miss(policy, latency)}")
        return refused
    for g in guards:
        tolerance = policy.max_regression if g.tolerance is None else g.tolerance
        if g.challenger_metric < g.champion_metric - tolerance:
            limit = "promotion.max_regression" if g.tolerance is None else "its tolerance"
            return Decision(
                False,
                f"{versus} on its test split, but on {g.name} ({g.rows} rows) {m} {g.challenger_metric:.4f} vs "
                f"champion {g.champion_metric:.4f}: a regression beyond {limit} {tolerance} (new data with wrong "
                "labels does this); a person decides (`textops model promote`)",
                **args,
            )
    delta = challenger_metric - champion_metric
    beat = passed or (
        f"{m} {challenger_metric:.4f} beats champion {champion_metric:.4f} by {delta:+.4f} "
        f"(>= {policy.min_delta}), McNemar p={p_value:.4g} < {policy.max_p_value}"
    )
    no_regression = "".join(
        f"; no regression on {g.name} ({g.challenger_metric:.4f} vs {g.champion_metric:.4f})" for g in guards
    )
    return Decision(True, beat + no_regression, **args)


def distill_miss(policy: PromotionParams, latency: Latency) -> str:
    """What a distilled student that was refused had against the distillation rule (`distilled`)."""
    return (
        f"as a distilled student: p50 {latency.student_ms:.2f} ms vs the teacher's {latency.teacher_ms:.2f} ms a text "
        f"({latency.speedup:.2f}x; promotion.min_distill_speedup {policy.min_distill_speedup}), "
        f"promotion.max_distill_drop {policy.max_distill_drop}"
    )


def losing_slice(policy: PromotionParams, slices) -> str | None:
    """Why a challenger that beats the champion overall is held: the slice where it loses most clearly (the lowest
    McNemar p among the slices it loses), or None."""
    lost = sorted((s for s in slices if s.loses(policy.max_p_value)), key=lambda s: (s.paired.p_value, s.name))
    if not lost:
        return None
    s, m = lost[0], policy.primary_metric
    others = f" (and {len(lost) - 1} other slice(s))" if len(lost) > 1 else ""
    return (
        f"on the slice {s.name} ({s.rows} rows) it loses to the champion: {m} {s.challenger_metric:.4f} vs "
        f"{s.champion_metric:.4f}, the champion alone right on {s.paired.c} rows and it alone on {s.paired.b}, "
        f"McNemar p={s.paired.p_value:.4g} < {policy.max_p_value}{others}: held for a person (slices of at least "
        "promotion.min_slice_rows rows count; `textops model promote VERSION --reason ...` promotes it by hand)"
    )


def stronger_model_advice(
    base: str | None, unknown_share: float | None = None, truncated_share: float | None = None
) -> str:
    """What would help a model that lost to the baseline, from what it was: BASE (the base model trained, the tag
    `textops.model.base`) and what `model.base: auto` measured of the pretrained tokenizer on the train split."""
    cut = (
        f"; {truncated_share:.0%} of the train texts were cut at model.max_length: a larger -S model.max_length "
        "keeps more of each"
        if truncated_share and truncated_share > 0.2
        else ""
    )
    if unknown_share is not None and unknown_share > MAX_UNKNOWN_SHARE:
        tiny = " or the tiny model with a vocabulary from the data (-S model.base=tiny)," if base == "minilm" else ""
        return (
            f"no packaged pretrained model reads this data (MiniLM's vocabulary maps {unknown_share:.0%} of its "
            f"tokens to [UNK]): point model.base at a local directory holding a multilingual encoder "
            f"(-S model.base=/path/to/model),{tiny} or add labelled data"
        )
    if base == "tiny":
        return "try the pretrained base (-S model.base=minilm), more epochs (-S train.epochs=N) or more data" + cut
    return (
        "try more epochs (-S train.epochs=N) or more labelled data, or a larger pretrained model from a local "
        "directory (-S model.base=/path/to/model)" + cut
    )


def loses_to_baseline(
    policy: PromotionParams, challenger_metric: float, baseline_metric: float | None, advice: str = ""
) -> str | None:
    """Why the model may not be promoted against the bag-of-words baseline, or None (also when the rule is off or
    there is no baseline figure). ADVICE (`stronger_model_advice`) says what would help."""
    if not policy.beat_baseline or baseline_metric is None:
        return None
    if challenger_metric >= baseline_metric - policy.baseline_margin:
        return None
    m = policy.primary_metric
    margin = f" by more than promotion.baseline_margin {policy.baseline_margin}" if policy.baseline_margin else ""
    advice = advice or stronger_model_advice(None)
    return (
        f"{m} {challenger_metric:.4f} loses to the TF-IDF + logistic regression baseline's {baseline_metric:.4f} on "
        f"the same test split{margin} (promotion.beat_baseline): a bag-of-words model serves this data better. "
        f"{advice[:1].upper()}{advice[1:]}; or promote by hand "
        "(`textops model promote VERSION --reason ...`)"
    )


def champion_stack(history: list[dict]) -> list[str]:
    """Replay the champion history into a stack of versions; its top is the current champion.

    A promotion pushes; a rollback to a version already on the stack pops back to it (so two rollbacks
    go two champions back, not back and forth); a rollback to a version not on the stack pushes it.
    """
    stack: list[str] = []
    for entry in history:
        version = str(entry["version"])
        if entry.get("kind") == "rollback" and version in stack:
            del stack[len(stack) - stack[::-1].index(version) :]
        elif not stack or stack[-1] != version:
            stack.append(version)
    return stack


def rollback_target(history: list[dict], current: str | None) -> str:
    """The previous champion according to the history (what `model rollback` with no --to restores)."""
    stack = champion_stack(history)
    if current is not None and stack and stack[-1] != str(current):
        stack.append(str(current))  # the alias was moved outside textops: treat it as the top
    if len(stack) < 2:
        raise RegistryError("no previous champion in the promotion history: nothing to roll back to.")
    return stack[-2]


def expected_accuracy(confidences, test_accuracy: float, test_mean_confidence: float | None) -> float:
    """What a champion expects to get right on rows it answers with CONFIDENCES (its top probabilities): their
    mean, scaled by how its accuracy on its own test split compares with its mean confidence there (one factor, so
    an overconfident model expects less than it says), and never more than its test accuracy. A queue of texts it
    was unsure of expects about what it gets; a batch it is sure of and gets wrong (flipped labels) does not."""
    confidences = np.asarray(confidences, dtype=float)
    if confidences.size == 0:
        return test_accuracy
    scale = test_accuracy / test_mean_confidence if test_mean_confidence else 1.0
    return float(min(test_accuracy, confidences.mean() * scale))
