"""`tune --apply` writes what a completed search chose and nothing else: only keys the space searched, only values
the best trial trained with that differ from what the current params train with, so a preset's `null` stays
`null` when the best trial used the preset (an interrupted search that returned only the start point pinned tiny's
presets: epochs null -> 3, batch_size -> 32, learning_rate -> 0.0005)."""

from __future__ import annotations

import yaml
from helpers import REPO

from textops.scale.tune_results import apply_best, values_to_apply

# What tiny's presets resolve to: the start point, and what `textops run` trains with today.
CURRENT = {"epochs": 3, "batch_size": 32, "learning_rate": 5e-4}


def test_the_start_point_as_the_best_writes_nothing():
    assert values_to_apply(dict(CURRENT), CURRENT, CURRENT) == {}


def test_only_searched_keys_with_a_new_value_are_written():
    best = {"epochs": 3, "batch_size": 16, "learning_rate": 0.0012345, "warmup_ratio": 0.05}
    searched = ["epochs", "batch_size", "learning_rate"]  # warmup_ratio is not in the space: never written
    assert values_to_apply(best, {**CURRENT, "warmup_ratio": 0.1}, searched) == {
        "batch_size": 16,
        "learning_rate": 0.00123,
    }


def test_a_value_that_rounds_to_the_current_one_is_not_written():
    assert values_to_apply({"learning_rate": 0.00050004}, CURRENT, ["learning_rate"]) == {}


def test_apply_keeps_a_presets_null_and_writes_what_the_search_changed(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text((REPO / "params.yaml").read_text())
    before = yaml.safe_load(params.read_text())["train"]
    assert before["epochs"] is None and before["batch_size"] is None  # presets decide them
    best = {"epochs": 3, "batch_size": 32, "learning_rate": 0.0012345}
    diff = apply_best(params, best, CURRENT, list(best))
    after = yaml.safe_load(params.read_text())["train"]
    assert after["learning_rate"] == 0.00123 and "learning_rate" in diff
    assert after["epochs"] is None and after["batch_size"] is None, "a preset's null was pinned"
    written = params.read_bytes()
    assert apply_best(params, {**best, "learning_rate": 0.00123}, {**CURRENT, "learning_rate": 0.00123}, best) == ""
    assert params.read_bytes() == written
