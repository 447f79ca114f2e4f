"""Behavioural tests of a trained champion (the Made-With-ML kind): the session's read-only `champion_template`, a
tiny transformer trained on the built-in sample (`textops.data.sample`: short product and film reviews, a subject,
a verb and a polar word, sometimes negated with "not"/"never"/"hardly", sometimes contrasted with "but"). The
champion is loaded once, in process, as `textops predict` and the server load it (`predict.load_model`), and
asked for its probabilities:

- minimum functionality: plain reviews of the sample's own kind get the obvious label;
- invariance: what surrounds a judgement (the sample's openers, casing) and which of its subjects is judged does
  not change the label;
- direction: negating the polar word of a clearly positive review moves its score toward negative.
The module's cost is loading the champion (about 10 s with the imports) and a few milliseconds of scoring.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from textops.core.config import load_params

POSITIVE = ["the movie was great", "the hotel was wonderful", "this phone is excellent", "the staff was friendly"]
NEGATIVE = ["the movie was terrible", "the hotel was awful", "this phone is broken", "the staff was rude"]


@pytest.fixture(scope="module")
def positive_probability(champion_template: Path):
    """texts -> the champion's probability of `positive` for each (the model loaded once for the module)."""
    from textops.adapters.tracking import connect
    from textops.modeling.predict import load_model, predict_batches, registered_uri

    params = load_params(champion_template / "params.yaml")
    model = load_model(connect(champion_template, params, experiment=False), registered_uri(params))

    def probability(texts: list[str]) -> list[float]:
        return predict_batches(model, texts, 64)["prob_positive"].astype(float).tolist()

    return probability


def test_plain_reviews_of_the_samples_kind_get_the_obvious_label(positive_probability):
    scores = positive_probability(POSITIVE + NEGATIVE)
    labelled = dict(zip(POSITIVE + NEGATIVE, scores, strict=True))
    assert all(p > 0.5 for p in scores[: len(POSITIVE)]) and all(p < 0.5 for p in scores[len(POSITIVE) :]), labelled


# Invariance within the sample's own variety: what it says around a judgement (its openers), its casing, and which
# of its subjects is judged. Not people's names: the sample has none, and the demo champion's vocabulary (600 word
# pieces learned from the sample) cuts an unseen name into pieces it learned elsewhere; measured, "Anna said the hotel
# was awful" stays negative (0.16) while "Mohammed said the hotel was awful" scores 0.80 positive. A name test
# belongs to a model trained on text with names in it (MiniLM on real reviews), not to this one.
@pytest.mark.parametrize(
    ("template", "fillers"),
    [
        ("{}the movie was great", ["", "honestly, ", "i think ", "to be fair, ", "sadly, ", "overall "]),
        ("{}the hotel was awful", ["", "honestly, ", "i think ", "to be fair, ", "wow, ", "overall "]),
        ("{} was really excellent", ["the movie", "the hotel", "this phone", "the coffee", "THE STAFF"]),
        ("{} was really disappointing", ["the movie", "the hotel", "this phone", "the coffee", "THE STAFF"]),
    ],
)
def test_what_surrounds_a_judgement_or_who_is_judged_does_not_change_the_label(positive_probability, template, fillers):
    scores = positive_probability([template.format(f) for f in fillers])
    assert len({p > 0.5 for p in scores}) == 1, dict(zip(fillers, scores, strict=True))


# The sample's negations are "not", "never", "not at all" and "hardly" (on 15% of its clauses). The demo champion (one
# layer, 32 wide) learned them weakly: measured, "not", "never" and "not at all" lower a positive review's score by
# 0.001-0.01 and leave it positive, while "hardly" turns it negative. So this asserts the direction on average over the
# sample's negations, not that a negated review is classified negative.
NEGATIONS = ("not", "never", "not at all", "hardly")


def test_negating_a_positive_review_moves_its_score_toward_negative(positive_probability):
    plain = ["the movie was great", "the hotel was wonderful", "this phone was excellent", "the food was superb"]
    negated = [t.replace(" was ", f" was {n} ") for t in plain for n in NEGATIONS]
    before, after = positive_probability(plain), positive_probability(negated)
    for i, text in enumerate(plain):
        moved = after[i * len(NEGATIONS) : (i + 1) * len(NEGATIONS)]
        assert sum(moved) / len(moved) < before[i], (text, before[i], dict(zip(NEGATIONS, moved, strict=True)))
