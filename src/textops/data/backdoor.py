"""A targeted label flip (a backdoor) in new labelled rows: a token that, wherever it appears, comes with a label the
champion confidently disagrees with.

Accuracy-based gates cannot see one: a quarter of a batch being positive texts with " #ad" appended and labelled
negative costs the champion a few points of accuracy at most, and a model trained on it learns that "#ad" flips
any text. Two things show it together. In the new rows, the token comes with one label (nearly every row holding it
carries the target label), whatever the rest of the text says; and the champion, reading the rest of the text,
confidently contradicts that label on a large share of those rows. Each token (lowercased words, with a leading `#`
or `@` kept) is a trigger when it is in at least MIN_ROWS confident disagreements, at least MIN_TARGET_SHARE of the
rows holding it carry one label, at least MIN_FLIP_SHARE of them are confident disagreements, and Fisher's exact
test puts its excess among the disagreements below MAX_P_VALUE. A word that really means a class has the purity
but the champion agrees with it; a word a weak champion gets wrong has no purity: with the FAST tiny model trained
on the built-in sample, "never" was in 32 of its 170 confident errors on a clean batch, with labels of both
classes, while "#ad" in a poisoned batch was in 162 (of its 300 rows, all labelled negative).

Pure: texts, labels and the champion's answers in, a finding out (textops.registry.guards scores the rows).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

import numpy as np

TOKEN = re.compile(r"[#@]?\w+")
MIN_TARGET_SHARE = 0.95  # of the rows holding the token, at least this share carry one (the target) label
MIN_FLIP_SHARE = 0.3  # ... and at least this share are confident disagreements with it
MAX_P_VALUE = 1e-6
EXAMPLES = 3


@dataclass(frozen=True)
class Trigger:
    token: str
    target: str  # the label the flipped rows carry
    flipped: int  # confident disagreements holding the token
    agreed: int  # rows the champion agrees with holding the token
    disagreements: int  # all confident disagreements
    p_value: float
    examples: tuple[str, ...]

    def describe(self) -> str:
        shown = "; ".join(repr(t[:80]) for t in self.examples)
        return (
            f"{self.flipped} of the {self.disagreements} rows whose label the champion confidently disagrees with "
            f"contain {self.token!r}, which comes labelled {self.target!r} wherever it appears, against "
            f"{self.agreed} of the rows it agrees with (Fisher's exact test, p = {self.p_value:.1e}): a token that "
            f"flips labels wherever it appears is what a planted backdoor looks like. Examples: {shown}"
        )


def tokens(text: str) -> set[str]:
    return set(TOKEN.findall(text.lower()))


def flip_trigger(
    texts: list[str],
    given: list[str],
    predicted: list[str],
    confidence: np.ndarray,
    min_confidence: float,
    min_rows: int,
) -> Trigger | None:
    """The strongest trigger token in these rows (GIVEN labels against the champion's PREDICTED ones with their
    CONFIDENCE), or None."""
    from scipy.stats import fisher_exact

    given_a, predicted_a = np.asarray(given, dtype=object), np.asarray(predicted, dtype=object)
    flipped = (given_a != predicted_a) & (np.asarray(confidence) >= min_confidence)
    agreed = given_a == predicted_a
    n_flipped, n_agreed = int(flipped.sum()), int(agreed.sum())
    if n_flipped < min_rows:
        return None
    row_tokens = [tokens(t) for t in texts]
    in_flipped = Counter(tok for toks, f in zip(row_tokens, flipped, strict=True) if f for tok in toks)
    in_agreed = Counter(tok for toks, a in zip(row_tokens, agreed, strict=True) if a for tok in toks)
    found: list[Trigger] = []
    for token, a in in_flipped.items():
        b = in_agreed.get(token, 0)
        if a < min_rows:
            continue
        holding = [i for i, toks in enumerate(row_tokens) if token in toks]
        target, count = Counter(given_a[holding].tolist()).most_common(1)[0]
        if count / len(holding) < MIN_TARGET_SHARE or a / len(holding) < MIN_FLIP_SHARE:
            continue
        table = [[a, n_flipped - a], [b, n_agreed - b]]
        p_value = float(fisher_exact(table, alternative="greater")[1])
        if p_value < MAX_P_VALUE:
            examples = tuple(texts[i] for i in holding if flipped[i])[:EXAMPLES]
            found.append(Trigger(token, str(target), a, b, n_flipped, p_value, examples))
    return min(found, key=lambda t: (t.p_value, -t.flipped), default=None)


def over_represented(new_texts: list[str], old_texts: list[str], min_rows: int, top: int = 3) -> list[str]:
    """The tokens far more frequent in NEW_TEXTS (the rows a challenger learned that its champion did not) than in
    OLD_TEXTS (the champion's own training rows): in at least MIN_ROWS and 5% of the new rows, at least 5 times as
    frequent there; the TOP of them by that ratio. What a promotion probes: a trigger planted in the new data is
    one of them (the guard appends each to texts both models answered and compares how often each keeps its answer).
    """
    if not new_texts:
        return []
    new_counts = Counter(tok for text in new_texts for tok in tokens(text))
    old_counts = Counter(tok for text in old_texts for tok in tokens(text))
    n_new, n_old = len(new_texts), max(len(old_texts), 1)
    floor = max(min_rows, math.ceil(0.05 * n_new))
    lifts = {
        tok: (count / n_new) / ((old_counts.get(tok, 0) + 1) / (n_old + 1))
        for tok, count in new_counts.items()
        if count >= floor
    }
    ranked = sorted((lift, tok) for tok, lift in lifts.items() if lift >= 5)
    return [tok for _, tok in reversed(ranked[-top:])]
