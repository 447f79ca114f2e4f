"""The test split's slices (textops.data.slices): length quartiles, languages, groups, and the figures per slice."""

from __future__ import annotations

import numpy as np

from textops.data.slices import (
    GROUP,
    LANGUAGE,
    LENGTH,
    MAX_GROUPS,
    NO_GROUP,
    OTHER_GROUPS,
    UNDETERMINED,
    assign_slices,
    group_slices,
    language_of,
    length_quartiles,
    slice_metrics,
)


def test_length_quartiles_split_the_rows_by_their_own_lengths():
    texts = ["x" * n for n in range(1, 101)]
    quartiles = length_quartiles(texts)
    assert [int((quartiles == f"q{i}").sum()) for i in range(1, 5)] == [25, 25, 25, 25]
    assert quartiles[0] == "q1" and quartiles[-1] == "q4"
    # shorter never lands in a higher quartile than longer, and one length is never split over two quartiles
    assert list(quartiles) == sorted(quartiles)
    same = length_quartiles(["abc"] * 10 + ["abcdefgh"] * 2)
    assert set(same[:10]) == {"q1"} and set(same[10:]) == {"q4"}
    assert length_quartiles([]).size == 0


def test_language_is_detected_offline_and_short_or_unclear_texts_are_und():
    assert language_of("The acting was wonderful and the story kept me watching until the very end.") == "en"
    assert language_of("Ce film était vraiment magnifique, j'ai adoré chaque minute de l'histoire.") == "fr"
    assert language_of("Das war ein sehr guter Film, die Schauspieler waren großartig.") == "de"
    for unsure in ("ok", "lol", "12345 !!!", "great movie"):
        assert language_of(unsure) == UNDETERMINED, unsure
    texts = ["Ce film était vraiment magnifique, j'ai adoré chaque minute.", "ok"] * 3
    assert list(assign_slices(texts)[LANGUAGE]) == list(assign_slices(texts)[LANGUAGE])  # deterministic
    assert set(assign_slices(texts)[LANGUAGE]) == {"fr", UNDETERMINED}


def test_groups_are_slices_rows_without_one_are_none_and_rare_ones_other():
    groups = group_slices(["web", "mail", None, float("nan"), "web"])
    assert list(groups) == ["web", "mail", NO_GROUP, NO_GROUP, "web"]
    many = [f"g{i:03d}" for i in range(MAX_GROUPS + 10)] + ["big"] * 5
    sliced = group_slices(many)
    assert "big" in set(sliced) and OTHER_GROUPS in set(sliced)
    assert len(set(sliced)) == MAX_GROUPS + 1  # the largest MAX_GROUPS, and the rest together
    slices = assign_slices(["a text", "another text"], ["x", None])
    assert set(slices) == {LENGTH, LANGUAGE, GROUP}
    assert GROUP not in assign_slices(["a text"])  # no group column: no group slices


def test_slice_metrics_score_each_slice_on_its_own_rows():
    y = np.array(["pos", "neg", "pos", "neg", "pos", "neg"])
    pred = np.array(["pos", "neg", "pos", "pos", "neg", "pos"])  # right on the a rows, wrong on most b rows
    texts = ["short", "tiny", "small", "a much longer text here", "another long text here", "long text again"]
    slices = {GROUP: np.array(["a", "a", "a", "b", "b", "b"], dtype=object), LENGTH: length_quartiles(texts)}
    out = slice_metrics(y, pred, slices, texts)
    assert out[GROUP]["a"] == {"rows": 3, "accuracy": 1.0, "macro_f1": 1.0}
    assert out[GROUP]["b"]["rows"] == 3 and out[GROUP]["b"]["accuracy"] == 0.0
    q1 = out[LENGTH]["q1"]
    assert q1["min_chars"] == 4 and q1["max_chars"] <= q1["rows"] * 100
    assert sum(f["rows"] for f in out[LENGTH].values()) == len(texts)
