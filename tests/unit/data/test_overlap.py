"""Texts inside other texts (SST-2's phrases): the leak a split by text makes, and the split that has none."""

from __future__ import annotations

import numpy as np
import pandas as pd

from textops.core.config import Params
from textops.data.overlap import leak_report, normal_form, split_by_containment
from textops.data.preprocess import clean_and_split, hash_splits, split_position


def phrase_table(sentences: int = 400) -> pd.DataFrame:
    """A phrase-level data set as SST-2 builds one: every sentence with each of its word n-grams, labelled alike."""
    rng = np.random.default_rng(0)
    good, bad = ["superb", "moving", "charming", "witty"], ["dull", "tedious", "clumsy", "bland"]
    fillers = [f"w{i}" for i in range(300)]
    rows = []
    for s in range(sentences):
        positive = bool(s % 2)
        words = list(rng.choice(fillers, 6)) + [rng.choice(good if positive else bad)] + [f"id{s}"]
        label = "pos" if positive else "neg"
        rows.append((" ".join(words), label))
        for n in (2, 3, 5):
            start = int(rng.integers(0, len(words) - n))
            rows.append((" ".join(words[start : start + n]), label))
    return pd.DataFrame(rows, columns=["text", "label"])


def test_normal_form_keeps_word_boundaries_and_reads_scripts_without_spaces():
    assert normal_form("Great movie!") == " great movie ! "
    assert " great movie " in normal_form("a GREAT movie, really")
    assert " great " not in normal_form("greatest")  # a word inside a word is no containment
    assert normal_form("很好看") == " 很 好 看 "  # each CJK character a word
    assert " 好 看 " in normal_form("这部电影很好看。")


def test_containment_split_puts_no_test_text_inside_a_train_text():
    texts = ["the movie was great fun", "was great", "great", "the plot is thin", "is thin", "a lone text"]
    own = np.array(["test", "train", "test", "train", "test", "val"], dtype=object)
    split, inside, inside_by_own = split_by_containment(texts, own)
    # by their own splits, "great" (test) is inside "was great" (train) and "is thin" (test) inside train text
    assert leak_report(np.array(texts), own, inside_by_own)["test_inside_train"] == 2
    # by containment: roots keep their own split, a piece of a train text is train, a piece of a test text test
    assert split.tolist() == ["test", "test", "test", "train", "train", "val"]
    assert leak_report(np.array(texts), split, inside)["test_inside_train"] == 0


def test_preprocess_reports_the_leak_and_splits_by_containment():
    frame = phrase_table()
    _, _, by_text = clean_and_split(frame, Params.model_validate({"data": {"split": {"by": "text"}}}))
    leak = by_text["leak"]
    assert leak["split_by"] == "text" and leak["test_inside_train_share"] > 0.3  # phrases of train sentences
    splits, _, stats = clean_and_split(frame, Params())
    assert stats["leak"]["split_by"] == "containment"
    assert stats["leak"]["test_inside_train"] == 0 and stats["leak"]["val_inside_train"] == 0
    assert stats["leak"]["test_inside_train_share_if_split_by_text"] == leak["test_inside_train_share"]
    train = " ".join(normal_form(t) for t in splits["train"]["text"])
    assert not [t for t in splits["test"]["text"] if normal_form(t) in train]  # checked without the automaton
    assert len(splits["test"]) > 0.05 * len(frame)  # the test split is still a test split


def test_roots_keep_the_split_their_hash_gives_them():
    """A text inside no other text is split by its hash alone, as before: adding unrelated data moves nothing."""
    frame = phrase_table(100)
    splits, _, _ = clean_and_split(frame, Params())
    sentences = frame["text"][frame["text"].str.contains("id")]
    by_hash = dict(zip(sentences, hash_splits(split_position(sentences), 0.1, 0.1), strict=True))
    where = {t: name for name, part in splits.items() for t in part["text"]}
    moved = [t for t in sentences if where[t] != by_hash[t]]
    assert len(moved) <= 2  # only the class-coverage fix may move a root
