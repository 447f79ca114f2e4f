"""The bag-of-words baseline every evaluation is measured against: TF-IDF + logistic regression, fitted on the
same train split as the transformer and scored on the same test split, in seconds.

Word 1–2-grams for space-separated text; character 1–3-grams (within word boundaries) where the text is not
space-separated (Chinese, Japanese, Thai), decided from the data: the median number of spaces in a train text.
The promotion policy (`policy.decide`, `promotion.beat_baseline`) refuses a model that loses to it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

NAME = "TF-IDF + logistic regression"
MAX_TEXTS_SNIFFED = 2000


def spaces_per_text(texts: Sequence[str]) -> float:
    """The median number of whitespace runs inside (up to 2,000 of) TEXTS: a few for English, 0 for Chinese."""
    sample = [str(t).strip() for t in texts[:MAX_TEXTS_SNIFFED]]
    return float(np.median([len(t.split()) - 1 for t in sample])) if sample else 0.0


def analyzer_for(texts: Sequence[str]) -> str:
    """`word` for space-separated texts (the median text has a space), `char_wb` otherwise (Chinese, Japanese,
    Thai, or one word a text)."""
    return "word" if spaces_per_text(texts) >= 1 else "char_wb"


def vectorizer(analyzer: str, max_features: int):
    from sklearn.feature_extraction.text import TfidfVectorizer

    # Words keep one-character tokens (`a`, `I`, digits); sublinear_tf damps repeated words.
    words = {"ngram_range": (1, 2), "token_pattern": r"(?u)\b\w+\b"} if analyzer == "word" else {"ngram_range": (1, 3)}
    return TfidfVectorizer(analyzer=analyzer, max_features=max_features, sublinear_tf=True, dtype=np.float32, **words)


def fit(train_texts: Sequence[str], train_labels, labels: list[str], max_features: int = 100_000):
    """(the fitted model, what was fitted: analyzer, features, train rows, fit seconds) for the train texts and label
    ids; LABELS are the class names. The model is a `pyfunc.TfidfScorer`: what evaluate scores the baseline with is
    what the `tfidf` model family logs and serves."""
    from sklearn.linear_model import LogisticRegression

    from textops.modeling.pyfunc import TfidfScorer

    start = time.perf_counter()
    ids = np.asarray(train_labels, dtype=np.int64)
    analyzer = analyzer_for(train_texts)
    vec = vectorizer(analyzer, max_features)
    features = vec.fit_transform([str(t) for t in train_texts])
    present = np.unique(ids)
    if len(present) < 2:  # one class in the train split: the baseline always predicts it
        coef, intercept = np.zeros((1, features.shape[1])), np.zeros(1)
    else:
        clf = LogisticRegression(C=4.0, max_iter=1000).fit(features, ids)
        coef, intercept, present = clf.coef_, clf.intercept_, clf.classes_
    info = {
        "model": NAME,
        "analyzer": analyzer,
        "features": int(features.shape[1]),
        "train_rows": len(ids),
        "fit_seconds": round(time.perf_counter() - start, 3),
    }
    return TfidfScorer(vec, coef, intercept, present, labels), info


def fit_predict(
    train_texts: Sequence[str], train_labels, test_texts: Sequence[str], n_classes: int, max_features: int = 100_000
) -> tuple[np.ndarray, dict]:
    """Fit the baseline on the train texts and label ids; (class probabilities of the test texts, shape
    (len(test_texts), n_classes), and what was fitted: analyzer, features, train rows, fit seconds)."""
    scorer, info = fit(train_texts, train_labels, [str(i) for i in range(n_classes)], max_features)
    probs = scorer.probabilities(list(test_texts)).astype(np.float64)
    return probs / probs.sum(axis=1, keepdims=True), info  # float32 rows sum to 1 only within 1e-7
