"""The tfidf family's explanations: coefficient x TF-IDF value, exact, spread over the words of the text."""

from __future__ import annotations

import numpy as np
import pytest

from textops.modeling.baseline import fit
from textops.modeling.explain import explain_errors
from textops.modeling.explain_linear import explain_tfidf

GOOD = ["a wonderful film", "great acting and a wonderful story", "truly great", "wonderful and moving"]
BAD = ["an awful film", "terrible acting and an awful story", "truly terrible", "awful and boring"]
MIXED = ["a film", "the story", "some acting", "and then"]


def scorer_of(classes: int):
    groups = [GOOD, BAD, MIXED][:classes]
    texts = [t for group in groups for t in group * 5]
    labels = np.repeat(np.arange(classes), len(GOOD) * 5)
    scorer, _ = fit(texts, labels, ["positive", "negative", "neutral"][:classes])
    return scorer


def log_odds(p: float) -> float:
    return float(np.log(p / (1 - p)))


@pytest.mark.parametrize("target", [None, 0, 1])
def test_two_classes_attributions_sum_to_the_log_odds_of_the_class_explained(target):
    scorer = scorer_of(2)
    (e,) = explain_tfidf(scorer, ["what a wonderful film, truly"], target)
    chosen = 0 if target is None else target  # the text is a positive one: class 0
    probs = scorer.probabilities(["what a wonderful film, truly"])[0]
    assert e["label"] == "positive" and e["target"] == scorer.labels[chosen]
    assert e["delta"] == 0.0
    assert e["logit"] == pytest.approx(log_odds(float(probs[chosen])), abs=1e-4)
    assert sum(w["attribution"] for w in e["words"]) == pytest.approx(e["logit"] - e["baseline_logit"], abs=1e-9)
    words = {w["word"]: w["attribution"] for w in e["words"]}
    sign = 1 if chosen == 0 else -1
    assert sign * words["wonderful"] > 0 and abs(words["wonderful"]) > abs(words["what"])


def test_several_classes_attributions_sum_to_the_class_score():
    scorer = scorer_of(3)
    (e,) = explain_tfidf(scorer, ["terrible and awful acting"], 2)
    features = scorer.vectorizer.transform(["terrible and awful acting"])
    score = float((features @ scorer.coef.T)[0, 2] + scorer.intercept[2])
    assert e["label"] == "negative" and e["target"] == "neutral"
    assert e["logit"] == pytest.approx(score, abs=1e-5)
    assert sum(f["attribution"] for f in e["features"]) == pytest.approx(e["logit"] - e["baseline_logit"], abs=1e-5)


def test_characters_carry_the_attributions_of_text_without_spaces():
    texts = ["好极了好", "很好很好", "好看极了", "难看死了", "很难看啊", "难受死了"] * 5
    labels = np.array([0, 0, 0, 1, 1, 1] * 5)
    scorer, info = fit(texts, labels, ["good", "bad"])
    assert info["analyzer"] == "char_wb"
    (e,) = explain_tfidf(scorer, ["真难看"], None)
    assert [w["word"] for w in e["words"]] == ["真", "难", "看"]
    assert sum(w["attribution"] for w in e["words"]) == pytest.approx(e["logit"] - e["baseline_logit"], abs=1e-6)
    assert e["label"] == "bad"


def test_the_run_report_rows_of_a_tfidf_model_are_explained_without_a_tokenizer():
    scorer = scorer_of(2)
    texts = ["a wonderful film", "an awful film"]
    probs = scorer.probabilities(texts)
    rows = explain_errors(scorer, None, scorer.labels, texts, np.array([1, 0]), probs, 5, 32)
    assert [r["true_label"] for r in rows] in (["negative", "positive"], ["positive", "negative"])
    assert all(r["method"].startswith("linear") and r["words"] for r in rows)
