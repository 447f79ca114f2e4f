"""Explanations of the tfidf family (TF-IDF features + logistic regression): exact, with no sampling.

The score a linear model gives a class is the sum of coefficient x TF-IDF value over the features present in the
text, plus the intercept. Each feature's product is its attribution, so the attributions sum to score(text) -
score(empty text) exactly (`delta` 0; the empty text's score is the intercept, `baseline_logit`). With two classes
scikit-learn keeps one row of coefficients, for the second class; the class explained is then scored as the
log-odds of that class against the other (the other class's are the same numbers with the sign turned).

A feature is an n-gram (of words, or of characters for text without spaces); `words` spreads each n-gram's
attribution evenly over the characters spans it covers in the text (each word, or each character), so the run
report and the console show the text with its parts coloured as for a transformer. `features` keeps the n-grams
themselves, the strongest first.
"""

from __future__ import annotations

import re

import numpy as np

from textops.core.errors import DataError

METHOD = "linear (coefficient x tf-idf)"
TOP_FEATURES = 20  # n-grams listed per explanation (every one counts in `words`)


def feature_attributions(scorer, features, column: int) -> tuple[dict[str, float], float]:
    """(n-gram -> coefficient x TF-IDF value towards the train class in COLUMN, the intercept) for one text."""
    coef, intercept = np.asarray(scorer.coef, dtype=np.float64), np.asarray(scorer.intercept, dtype=np.float64)
    if coef.shape[0] == 1:  # binary: the log-odds of the second class, turned for the first
        sign = 1.0 if column == 1 else -1.0
        weights, base = sign * coef[0], sign * float(intercept[0])
    else:
        weights, base = coef[column], float(intercept[column])
    names = {index: name for name, index in scorer.vectorizer.vocabulary_.items()}
    row = features.tocsr()
    return {names[j]: float(weights[j] * v) for j, v in zip(row.indices, row.data, strict=True)}, base


def spans(scorer, text: str) -> list[tuple[int, int, str]]:
    """The character spans n-grams are made of: words (the vectorizer's token pattern) or single characters."""
    vec = scorer.vectorizer
    shown = text.lower() if vec.lowercase else text
    if vec.analyzer == "word":
        return [(m.start(), m.end(), m.group()) for m in re.finditer(vec.token_pattern, shown)]
    return [(i, i + 1, ch) for i, ch in enumerate(shown) if not ch.isspace()]


def spread(scorer, text: str, attributions: dict[str, float]) -> list[dict]:
    """Each span of TEXT with the share of every n-gram attribution that covers it: an n-gram's value split
    evenly over its occurrences and the spans of each occurrence. An n-gram of no span (the word boundary that a
    character analyzer pads words with, ` `) is a feature of the whole text: spread over every span, so that the
    spans' sum stays the explanation's."""
    parts = spans(scorer, text)
    tokens = [p[2] for p in parts]
    totals = [0.0] * len(parts)
    word_level = scorer.vectorizer.analyzer == "word"
    unplaced = 0.0
    for gram, value in attributions.items():
        pieces = gram.split(" ") if word_level else [ch for ch in gram if not ch.isspace()]
        n = len(pieces)
        starts = [i for i in range(len(tokens) - n + 1) if tokens[i : i + n] == pieces] if n else []
        if not starts:
            unplaced += value
        for i in starts:
            for k in range(i, i + n):
                totals[k] += value / (len(starts) * n)
    totals = [t + unplaced / len(parts) for t in totals] if parts else totals
    return [
        {"word": text[start:end], "start": start, "end": end, "attribution": total}
        for (start, end, _), total in zip(parts, totals, strict=True)
    ]


def explain_tfidf(scorer, texts: list[str], target: int | None) -> list[dict]:
    """Per-text explanations of a TfidfScorer towards class TARGET (an index into its labels; None: the predicted
    class), in the shape of `explain.attribute`'s, plus `features` (the strongest n-grams)."""
    from textops.modeling.pyfunc import TFIDF_MAX_CHARS, label_values

    values = label_values(scorer.labels)
    out = []
    for text in texts:
        text = str(text)[:TFIDF_MAX_CHARS]
        features = scorer.vectorizer.transform([text])
        probs = scorer.probabilities([text])[0]
        predicted = int(np.argmax(probs))
        chosen = predicted if target is None else target
        if chosen not in scorer.classes:
            raise DataError(
                f"this model never answers {values[chosen]!r} (its train split had no row of that label), so no "
                "word pushes towards it: explain another label, or the predicted one (no target)"
            )
        attributions, base = feature_attributions(scorer, features, scorer.classes.index(chosen))
        logit = base + sum(attributions.values())
        ranked = sorted(attributions.items(), key=lambda kv: -abs(kv[1]))[:TOP_FEATURES]
        out.append(
            {
                "label": values[predicted],
                "target": values[chosen],
                "prob": float(probs[predicted]),
                "logit": logit,
                "baseline_logit": base,
                "delta": 0.0,
                "method": METHOD,
                "steps": 0,
                "words": spread(scorer, text, attributions),
                "features": [{"feature": gram, "attribution": value} for gram, value in ranked],
            }
        )
    return out
