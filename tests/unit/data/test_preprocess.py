"""Cleaning and splitting, and the built-in sample, in memory."""

from __future__ import annotations

import unicodedata

import pandas as pd

from textops.data.preprocess import assign_splits, clean_text, split_position
from textops.data.sample import make_sample


def test_sample_is_deterministic_and_learnable():
    a, b = make_sample(500, 1), make_sample(500, 1)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(make_sample(500, 2))
    assert set(a["label"]) == {"negative", "positive"}
    assert a["text"].str.contains(" but ").any() and a["text"].str.contains(r"\bnot\b").any()
    # Learnable, but not trivially: a TF-IDF bigram model gets most of it right, not all of it.
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    big = make_sample(2000, 13)
    features = TfidfVectorizer(ngram_range=(1, 2)).fit_transform(big["text"])
    accuracy = cross_val_score(LogisticRegression(max_iter=1000), features, big["label"], cv=5).mean()
    assert 0.75 <= accuracy <= 0.95, accuracy


def test_clean_text_normalises():
    decomposed = unicodedata.normalize("NFD", "café")
    out = clean_text(pd.Series([f"  {decomposed}\t is \n\n GOOD  ", "a\x00b"]), lowercase=True)
    assert out.tolist() == ["café is good", "a b"]


def test_split_is_stable_as_data_grows():
    texts = pd.Series([f"text number {i}" for i in range(3000)])
    labels = pd.Series([i % 3 for i in range(3000)]).to_numpy()
    small = assign_splits(split_position(texts[:1000]), labels[:1000], 0.1, 0.1)
    large = assign_splits(split_position(texts), labels, 0.1, 0.1)
    assert (small == large[:1000]).all()
    share = pd.Series(large).value_counts(normalize=True)
    assert 0.07 < share["test"] < 0.13 and 0.07 < share["val"] < 0.13


def test_rare_class_reaches_every_split():
    texts = pd.Series([f"t{i}" for i in range(200)])
    labels = pd.Series([0] * 196 + [1] * 4).to_numpy()
    split = assign_splits(split_position(texts), labels, 0.1, 0.1)
    assert {s for s, y in zip(split, labels, strict=True) if y == 1} == {"train", "val", "test"}
