"""The statistics of monitoring, pure: each function compares a reference sample with a new one and returns one
check (a dict) saying what was measured, the figure on each side, the test's statistic and p-value, the
threshold, and whether it counts as drift. `textops.monitor` feeds them; the unit tests feed them synthetic data.

A shift counts only when it is both unlikely by chance (p-value below `monitor.p_value`) and large enough to
matter (an effect-size threshold): with thousands of rows every test finds a difference nobody cares about.
SciPy and scikit-learn do the statistics (BENCHMARKS.md and docs/architecture.md say why not Evidently).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

KINDS = ("input", "label", "performance")
WORD = re.compile(r"\w+", re.UNICODE)


def check(kind: str, name: str, test: str, drifted: bool = False, **figures: object) -> dict:
    """One check as reported: KIND (input | label | performance), NAME, the TEST used and its FIGURES."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind of drift {kind!r}; one of {KINDS}")
    return {"kind": kind, "name": name, "test": test, "drifted": bool(drifted), **figures}


def skipped(kind: str, name: str, why: str) -> dict:
    """A check that could not run on this data (never drift), with the reason."""
    return check(kind, name, "skipped", skipped=why)


def ks_shift(
    kind: str,
    name: str,
    reference: Sequence[float] | np.ndarray | Iterable[float],
    current: Sequence[float] | np.ndarray | Iterable[float],
    p_value: float,
    max_ks: float,
) -> dict:
    """Two-sample Kolmogorov-Smirnov test of two numeric samples (text lengths, confidences): drift when
    p < P_VALUE and the statistic (the largest gap between the two CDFs, 0..1) is above MAX_KS."""
    from scipy.stats import ks_2samp

    ref, cur = np.asarray(reference, dtype=float), np.asarray(current, dtype=float)
    result = ks_2samp(ref, cur)
    stat, p = float(result.statistic), float(result.pvalue)
    return check(
        kind,
        name,
        "KS",
        p < p_value and stat > max_ks,
        statistic=stat,
        p_value=p,
        threshold=f"p<{p_value} and D>{max_ks}",
        reference=float(np.mean(ref)),
        current=float(np.mean(cur)),
    )


def words(text: str) -> list[str]:
    """Lower-cased word tokens (letters, digits and underscores of any script)."""
    return WORD.findall(text.lower())


def vocabulary(texts: Iterable[str]) -> set[str]:
    return {w for t in texts for w in words(t)}


def oov_rate(vocab: set[str], texts: Iterable[str]) -> float:
    """The share of word tokens of TEXTS not in VOCAB (0 when TEXTS has no words)."""
    counts = Counter(w for t in texts for w in words(t))
    total = sum(counts.values())
    return sum(n for w, n in counts.items() if w not in vocab) / total if total else 0.0


def vocabulary_shift(
    train: Sequence[str], reference: Sequence[str], current: Sequence[str], max_increase: float
) -> dict:
    """Out-of-vocabulary words: the share of CURRENT's words never seen in TRAIN against the same share for
    REFERENCE (held-out texts of the training data, whose own OOV rate is the baseline). Drift when the new
    rate is more than MAX_INCREASE above the baseline."""
    vocab = vocabulary(train)
    ref, cur = oov_rate(vocab, reference), oov_rate(vocab, current)
    return check(
        "input",
        "out-of-vocabulary words",
        "OOV rate",
        cur - ref > max_increase,
        statistic=cur - ref,
        threshold=f"increase>{max_increase}",
        reference=ref,
        current=cur,
        vocabulary=len(vocab),
    )


def domain_classifier(reference: np.ndarray, current: np.ndarray, folds: int, seed: int) -> tuple[float, float]:
    """(ROC-AUC, p-value) of a logistic regression telling CURRENT's embeddings from REFERENCE's, scored with
    FOLDS-fold cross-validation on equal-sized samples. 0.5 means the two cannot be told apart; the p-value is
    the one-sided Mann-Whitney U test of the out-of-fold scores (AUC = U / (n1 n2))."""
    from scipy.stats import mannwhitneyu
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(seed)
    n = min(len(reference), len(current))
    ref = reference[rng.choice(len(reference), n, replace=False)]
    cur = current[rng.choice(len(current), n, replace=False)]
    x, y = np.vstack([ref, cur]), np.r_[np.zeros(n), np.ones(n)]
    folds = max(2, min(folds, n))
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=1000))
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    scores = cross_val_predict(model, x, y, cv=cv, method="predict_proba")[:, 1]
    u = mannwhitneyu(scores[y == 1], scores[y == 0], alternative="greater")
    return float(u.statistic / (n * n)), float(u.pvalue)


def embedding_shift(
    reference: np.ndarray, current: np.ndarray, p_value: float, max_auc: float, folds: int, seed: int
) -> dict:
    """Drift of the champion's sentence embeddings: a domain classifier's cross-validated ROC-AUC above MAX_AUC
    with p < P_VALUE."""
    auc, p = domain_classifier(reference, current, folds, seed)
    return check(
        "input",
        "embeddings (domain classifier)",
        "ROC-AUC",
        p < p_value and auc > max_auc,
        statistic=auc,
        p_value=p,
        threshold=f"p<{p_value} and AUC>{max_auc}",
        reference=0.5,
        current=auc,
    )


def shares(values: Sequence[str], classes: Sequence[str]) -> dict[str, float]:
    """The share of each of CLASSES in VALUES (classes not in VALUES: 0)."""
    counts = Counter(map(str, values))
    total = len(values) or 1
    return {c: counts.get(c, 0) / total for c in classes}


def distribution_shift(
    kind: str, name: str, reference: Sequence[str], current: Sequence[str], p_value: float, max_distance: float
) -> dict:
    """Chi-square test of homogeneity of two categorical samples (labels, predicted classes): drift when
    p < P_VALUE and the total variation distance of the shares (half the L1 distance, 0..1) is above
    MAX_DISTANCE. A class that only CURRENT has counts fully towards the distance."""
    from scipy.stats import chi2_contingency

    classes = sorted({str(v) for v in reference} | {str(v) for v in current})
    ref, cur = shares(reference, classes), shares(current, classes)
    distance = 0.5 * sum(abs(ref[c] - cur[c]) for c in classes)
    table = np.array([[Counter(map(str, side))[c] for c in classes] for side in (reference, current)])
    table = table[:, table.sum(axis=0) > 0]
    p = float(chi2_contingency(table).pvalue) if table.shape[1] > 1 else 1.0
    unseen = sorted(set(map(str, current)) - set(map(str, reference)))
    return check(
        kind,
        name,
        "chi-square",
        p < p_value and distance > max_distance,
        statistic=distance,
        p_value=p,
        threshold=f"p<{p_value} and TVD>{max_distance}",
        reference=ref,
        current=cur,
        unseen=unseen,
    )


def scores(truth: Sequence[str], predicted: Sequence[str]) -> dict[str, float]:
    """Accuracy and macro-F1 over the classes either side has (scikit-learn's `f1_score(average="macro",
    zero_division=0)`, in numpy: `textops status` computes it and must not import scikit-learn)."""
    y, p = np.asarray(truth, dtype=str), np.asarray(predicted, dtype=str)
    if not len(y):
        return {"accuracy": 0.0, "macro_f1": 0.0}
    f1 = []
    tp: np.integer  # counts (numpy's stubs give np.sum of an untyped array no type)
    fp: np.integer
    fn: np.integer
    for c in np.union1d(y, p):
        tp, fp, fn = np.sum((p == c) & (y == c)), np.sum((p == c) & (y != c)), np.sum((p != c) & (y == c))
        f1.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return {"accuracy": float((y == p).mean()), "macro_f1": float(np.mean(f1))}


def performance_decay(
    truth: Sequence[str], predicted: Sequence[str], proven: dict[str, float | None], max_drop: float
) -> list[dict]:
    """The champion's accuracy and macro-F1 on labelled new rows against PROVEN (its recorded test figures, by
    the same names): decay when either is more than MAX_DROP below."""
    now = scores(truth, predicted)
    out = []
    for metric, value in now.items():
        before = proven.get(metric)
        if before is None:
            out.append(skipped("performance", metric, "the champion's run has no recorded test figure"))
            continue
        out.append(
            check(
                "performance",
                metric,
                "drop vs test",
                before - value > max_drop,
                statistic=before - value,
                threshold=f"drop>{max_drop}",
                reference=before,
                current=value,
            )
        )
    return out


def summarize(checks: list[dict]) -> dict:
    """`drift` (any check drifted) and `kinds`: which of input / label / performance drifted, in that order."""
    kinds = [k for k in KINDS if any(c["drifted"] and c["kind"] == k for c in checks)]
    return {"drift": bool(kinds), "kinds": kinds}
