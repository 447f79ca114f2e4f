"""The TF-IDF + logistic regression baseline: which features it picks for which script, and what it returns."""

from __future__ import annotations

import numpy as np
import pytest

from textops.modeling.baseline import analyzer_for, fit_predict

ENGLISH = ["the film was great", "an awful, boring plot", "lovely cast and a superb score", "terrible ending"]
CHINESE = ["这家酒店的服务很好", "房间太小了，而且很吵", "早餐非常丰富", "前台态度很差"]
JAPANESE = ["このホテルはとても良かった", "部屋が汚くて最悪でした"]


def test_words_for_space_separated_text_characters_otherwise():
    assert analyzer_for(ENGLISH) == "word"
    assert analyzer_for(CHINESE) == "char_wb"
    assert analyzer_for(JAPANESE) == "char_wb"
    assert analyzer_for(CHINESE + ["a hotel review in english among many chinese ones"]) == "char_wb"
    assert analyzer_for(["great", "awful", "meh"]) == "char_wb"  # one word a text: its characters say more
    assert analyzer_for([]) == "char_wb"


def easy(n: int, words: tuple[list[str], ...], rng: np.random.Generator, sep: str = " "):
    labels = rng.integers(0, len(words), n)
    texts = [sep.join(rng.choice(words[y], 3)) for y in labels]
    return texts, labels


@pytest.mark.parametrize(
    ("words", "sep", "analyzer"),
    [
        ((["great", "lovely", "superb"], ["awful", "boring", "dull"], ["phone", "battery", "screen"]), " ", "word"),
        ((["很好", "不错", "干净"], ["很差", "太吵", "脏乱"]), "", "char_wb"),
    ],
)
def test_learns_an_easy_task_in_either_script(words, sep, analyzer):
    rng = np.random.default_rng(0)
    train_texts, train_labels = easy(300, words, rng, sep)
    test_texts, test_labels = easy(100, words, rng, sep)
    probs, info = fit_predict(train_texts, train_labels, test_texts, len(words))
    assert probs.shape == (100, len(words)) and np.allclose(probs.sum(axis=1), 1.0)
    assert (probs.argmax(axis=1) == test_labels).mean() > 0.95
    assert info["analyzer"] == analyzer and info["train_rows"] == 300 and info["fit_seconds"] < 30


def test_a_class_missing_from_the_train_split_gets_probability_zero_in_its_column():
    probs, _ = fit_predict(["good film", "bad film", "good plot", "bad plot"], [0, 2, 0, 2], ["good"], 3)
    assert probs.shape == (1, 3) and probs[0, 1] == 0.0 and probs[0].argmax() == 0


def test_one_class_in_the_train_split_predicts_it():
    probs, info = fit_predict(["good film", "good plot"], [1, 1], ["bad", "good"], 2)
    assert probs.tolist() == [[0.0, 1.0], [0.0, 1.0]]
    assert info["train_rows"] == 2


def test_max_features_caps_the_vocabulary():
    texts = [f"word{i} other{i}" for i in range(500)]
    _, info = fit_predict(texts, [i % 2 for i in range(500)], texts[:3], 2, max_features=100)
    assert info["features"] == 100
