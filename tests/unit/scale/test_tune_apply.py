"""`tune --apply` writes what the search chose and nothing else: a value the current params already train with
(a preset's `null` resolved) stays as it is written, and an edit that would not load never replaces the file."""

from __future__ import annotations

import yaml
from helpers import REPO

from textops.scale.tune_results import apply_best


def test_apply_writes_only_what_the_search_changed(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text((REPO / "params.yaml").read_text())
    before = yaml.safe_load(params.read_text())["train"]
    assert before["epochs"] is None and before["batch_size"] is None  # presets decide them
    # The best trial kept the preset's epochs and batch size (the start point) and found another learning rate.
    start = {"epochs": 3, "batch_size": 32, "learning_rate": 5e-4}
    diff = apply_best(params, {"epochs": 3, "batch_size": 32, "learning_rate": 0.0012345}, start)
    after = yaml.safe_load(params.read_text())["train"]
    assert after["learning_rate"] == 0.00123 and "learning_rate" in diff
    assert after["epochs"] is None and after["batch_size"] is None, "a preset's null was pinned"
    assert apply_best(params, {"epochs": 3, "batch_size": 32, "learning_rate": 0.00123}, start) == ""
