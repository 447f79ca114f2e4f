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


@pytest.mark.parametrize("classes", [2, 3])
def test_the_saved_tfidf_model_scores_as_scikit_learn_does(tmp_path, classes):
    """The tfidf family's files (JSON + npz, nothing pickled) read back give scikit-learn's own probabilities."""
    from sklearn.linear_model import LogisticRegression

    from textops.modeling.baseline import fit, vectorizer
    from textops.modeling.pyfunc import TfidfScorer

    words = (["great", "lovely", "superb"], ["awful", "boring", "dull"], ["phone", "battery", "screen"])[:classes]
    rng = np.random.default_rng(1)
    texts, labels = easy(200, words, rng)
    scorer, _ = fit(texts, labels, [f"c{i}" for i in range(classes)])
    scorer.save(str(tmp_path / "tfidf"))
    loaded = TfidfScorer.load(str(tmp_path / "tfidf"))
    vec = vectorizer("word", 100_000)
    expected = LogisticRegression(C=4.0, max_iter=1000).fit(vec.fit_transform(texts), labels)
    new = ["great phone", "dull screen and awful battery", "nothing known here"]
    assert np.allclose(loaded.probabilities(new), expected.predict_proba(vec.transform(new)), atol=1e-6)
    assert loaded.labels == [f"c{i}" for i in range(classes)]


def test_the_pyfunc_serves_a_tfidf_model_with_the_transformers_output_contract(tmp_path):
    """The same pyfunc class: `label` plus `prob_<name>` columns, runtime `sklearn` whatever runtime was asked."""
    from types import SimpleNamespace

    import pandas as pd

    from textops.modeling.baseline import fit
    from textops.modeling.pyfunc import TFIDF_ARTIFACT, TextClassifier

    texts, labels = easy(200, (["很好", "不错", "干净"], ["很差", "太吵", "脏乱"]), np.random.default_rng(2), "")
    scorer, info = fit(texts, labels, ["0", "1"])
    scorer.save(str(tmp_path / "tfidf"))
    model = TextClassifier()
    model.load_context(
        SimpleNamespace(artifacts={TFIDF_ARTIFACT: str(tmp_path / "tfidf")}, model_config={"runtime": "onnx"})
    )
    out = model.predict(None, pd.DataFrame({"text": ["房间很好很干净", "太吵了很差", "x" * 1_000_000]}))
    assert info["analyzer"] == "char_wb" and model.runtime == "sklearn"
    assert list(out.columns) == ["label", "prob_0", "prob_1"] and out["label"].tolist()[:2] == [0, 1]
    assert np.allclose(out[["prob_0", "prob_1"]].sum(axis=1), 1.0, atol=1e-6)
