"""Slices of a test split, for the evaluation's per-slice figures and the registry's per-slice guard: each row's
text length quartile, its language, and its group (the `group` column ingest keeps from data.group_column).

Assignment depends only on the rows (texts, groups), so the evaluate stage and the register stage, which scores the
champion on the same test rows, get the same slices without passing them along. Pure: no files, no MLflow.
"""

from __future__ import annotations

from functools import cache

import numpy as np

LENGTH, LANGUAGE, GROUP = "length", "language", "group"
KINDS = (LENGTH, LANGUAGE, GROUP)
UNDETERMINED = "und"  # ISO 639-2's "undetermined": a text too short or too mixed to tell
MIN_LANGUAGE_CONFIDENCE = 0.5  # py3langid's normalised probability; below it a text's language is `und`
NO_LANGUAGE = {"zxx"}  # py3langid's "no linguistic content" (digits, punctuation): `und` too
NO_GROUP = "(none)"  # rows without a group value
OTHER_GROUPS = "(other)"
MAX_GROUPS = 50  # the largest groups are slices of their own; the rest are OTHER_GROUPS together


def length_quartiles(texts) -> np.ndarray:
    """`q1`..`q4`: each text's quartile of length in characters among TEXTS (the edges are TEXTS' own quartiles;
    a text on an edge is in the lower quartile, so ties never split one length over two quartiles)."""
    lengths = np.asarray([len(t) for t in texts], dtype=float)
    if lengths.size == 0:
        return np.asarray([], dtype=object)
    edges = np.quantile(lengths, [0.25, 0.5, 0.75])
    quartile = np.asarray(np.searchsorted(edges, lengths, side="left"))  # lengths <= edge[i] -> i
    return np.asarray([f"q{int(q) + 1}" for q in quartile.tolist()], dtype=object)


@cache
def _identifier():
    """py3langid's naive Bayes identifier (its model ships in the wheel: offline, deterministic), loaded once."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def language_of(text: str) -> str:
    """TEXT's language as py3langid's ISO 639-1 code, or `und` when it is not sure (short texts mostly are)."""
    language, confidence = _identifier().classify(text)
    if confidence < MIN_LANGUAGE_CONFIDENCE or language in NO_LANGUAGE:
        return UNDETERMINED
    return str(language)


def languages(texts) -> np.ndarray:
    """Each text's language (`language_of`)."""
    return np.asarray([language_of(str(t)) for t in texts], dtype=object)


def group_slices(groups) -> np.ndarray:
    """Each row's group slice: its group among the MAX_GROUPS largest, else `(other)`; `(none)` without one."""
    values = np.asarray([NO_GROUP if g is None or g != g else str(g) for g in groups], dtype=object)
    names, counts = np.unique(values, return_counts=True)
    order = sorted(zip(names.tolist(), counts.tolist(), strict=True), key=lambda nc: (-nc[1], nc[0]))
    kept = {name for name, _ in order[:MAX_GROUPS]}
    return np.asarray([v if v in kept else OTHER_GROUPS for v in values], dtype=object)


def assign_slices(texts, groups=None) -> dict[str, np.ndarray]:
    """{kind: each row's slice} for the rows TEXTS (and GROUPS, None when the data has no group column)."""
    texts = [str(t) for t in texts]
    slices = {LENGTH: length_quartiles(texts), LANGUAGE: languages(texts)}
    if groups is not None:
        slices[GROUP] = group_slices(list(groups))
    return slices


def slice_metrics(y_true, y_pred, slices: dict[str, np.ndarray], texts=None) -> dict[str, dict[str, dict]]:
    """{kind: {slice: {rows, accuracy, macro_f1}}} of predictions Y_PRED against Y_TRUE; with TEXTS, a length
    slice also says its shortest and longest text (`min_chars`, `max_chars`)."""
    from textops.core.policy import score

    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    lengths = None if texts is None else np.asarray([len(str(t)) for t in texts])
    out: dict[str, dict[str, dict]] = {}
    for kind, values in slices.items():
        out[kind] = {}
        for value in sorted(set(values.tolist())):
            rows = values == value
            figures = {
                "rows": int(rows.sum()),
                "accuracy": score(y_true[rows], y_pred[rows], "accuracy"),
                "macro_f1": score(y_true[rows], y_pred[rows], "macro_f1"),
            }
            if kind == LENGTH and lengths is not None:
                figures.update(min_chars=int(lengths[rows].min()), max_chars=int(lengths[rows].max()))
            out[kind][value] = figures
    return out
