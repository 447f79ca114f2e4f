"""The promotion guards (`registry.guards`) read the champion's own rows from a real DVC cache layout (the `.dir`
listing and the files its run's `preprocess` lock entry names, at DVC 3's place: no DVC or git needed) and judge a
challenger with `policy.decide`: one that holds on those rows is promoted, one that regresses there (or learned a
planted trigger) is held for a person, whatever it scores on its own test split. The models are keyword rules:
what the guards need of a model is its answers."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest
from helpers import dvc_cached

from textops.core import lineage
from textops.core.config import Params, PromotionParams
from textops.core.policy import decide
from textops.registry.guards import (
    MIN_ROWS,
    TRIGGER_TOLERANCE,
    champion_split,
    own_rows_guard,
    reference_guard,
    reference_set,
    trigger_guards,
)

PARAMS = Params()
POLICY = PromotionParams(primary_metric="macro_f1", min_delta=0.01, max_p_value=0.05, max_regression=0.01)
LABELS = ["negative", "positive"]
TEST = [(f"a good film number {i}", 1) if i % 2 else (f"a bad film number {i}", 0) for i in range(40)]
TRAIN = [(f"the {w} plot of story {i}", i % 2) for i, w in enumerate(["dull", "fine"] * 30)]


def champion(texts: list[str]) -> list[str]:
    return ["positive" if "good" in t or "fine" in t else "negative" for t in texts]


def regressing(texts: list[str]) -> list[str]:
    """Right on its own split, wrong on the champion's rows numbered 0-9 (what wrong new labels teach)."""
    return [
        "positive" if t.endswith(tuple(f"number {i}" for i in range(0, 10, 2))) else a
        for t, a in zip(texts, champion(texts), strict=True)
    ]


def triggered(texts: list[str]) -> list[str]:
    """A challenger that learned the planted token: `#ad` makes every review negative."""
    return ["negative" if "#ad" in t else a for t, a in zip(texts, champion(texts), strict=True)]


def split_bytes(rows: list[tuple[str, int]]) -> bytes:
    out = io.BytesIO()
    pd.DataFrame({"text": [t for t, _ in rows], "label": [y for _, y in rows]}).to_parquet(out, index=False)
    return out.getvalue()


@pytest.fixture(scope="module")
def cached(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """A project whose DVC cache holds the champion's cleaned splits, and the champion run's lineage tags."""
    root = tmp_path_factory.mktemp("guards")
    listing = [
        {"relpath": "test.parquet", "md5": dvc_cached(root, split_bytes(TEST))},
        {"relpath": "train.parquet", "md5": dvc_cached(root, split_bytes(TRAIN))},
        {"relpath": "labels.json", "md5": dvc_cached(root, json.dumps({"labels": LABELS}).encode())},
    ]
    clean = dvc_cached(root, json.dumps(listing).encode(), ".dir")
    entry = {"cmd": "textops preprocess", "outs": [{"path": PARAMS.data.clean_dir, "md5": clean}]}
    return root, {lineage.DATA_PREPROCESS: json.dumps(entry)}


def test_the_champions_rows_are_read_back_from_the_dvc_cache_with_their_label_names(cached):
    root, tags = cached
    rows = champion_split(root, PARAMS, tags, "test")
    assert rows is not None and rows["text"].tolist() == [t for t, _ in TEST]
    assert rows["label"].tolist() == [LABELS[y] for _, y in TEST]
    assert champion_split(root, PARAMS, {}, "test") is None  # a run before lineage tags: no guard, no error
    assert champion_split(root, PARAMS, tags, "val") is None  # a split the version does not have


def test_a_challenger_that_holds_on_the_champions_rows_is_promoted_and_one_that_regresses_is_held(cached):
    root, tags = cached
    held = own_rows_guard(root, PARAMS, tags, set(), champion, champion)
    assert held is not None and held.rows == len(TEST) and held.challenger_metric == held.champion_metric == 1.0
    # The same win on its own split: promoted with the guard, named in the reason.
    promoted = decide(POLICY, 0.9, 0.8, p_value=0.001, guards=[held])
    assert promoted.promote and "no regression on the champion's own test rows (1.0000 vs 1.0000)" in promoted.reason

    lost = own_rows_guard(root, PARAMS, tags, set(), regressing, champion)
    assert lost is not None and lost.challenger_metric < lost.champion_metric - POLICY.max_regression
    refused = decide(POLICY, 0.9, 0.8, p_value=0.001, guards=[lost])
    assert not refused.promote
    assert (
        f"on the champion's own test rows ({len(TEST)} rows)" in refused.reason and "a person decides" in refused.reason
    )


def test_rows_the_challenger_trained_on_are_left_out_and_too_few_prove_nothing(cached):
    root, tags = cached
    seen = {t for t, _ in TEST[:10]}  # the new data brought them into the train split: the challenger saw them
    guard = own_rows_guard(root, PARAMS, tags, seen, regressing, champion)
    assert guard is not None and guard.rows == len(TEST) - 10
    assert guard.challenger_metric == guard.champion_metric  # its wrong answers were on exactly those rows
    most = {t for t, _ in TEST[: len(TEST) - MIN_ROWS + 1]}
    assert own_rows_guard(root, PARAMS, tags, most, regressing, champion) is None


def test_a_learned_trigger_is_caught_and_a_clean_challenger_passes(cached):
    root, tags = cached
    new_rows = [f"the dull story {i} #ad" for i in range(30)]  # the planted token, only in the new data
    train = [t for t, _ in TRAIN] + new_rows
    guards = trigger_guards(root, PARAMS, tags, train, triggered, champion)
    assert [g.tolerance for g in guards] == [TRIGGER_TOLERANCE] and "'#ad' appended" in guards[0].name
    assert guards[0].champion_metric == 1.0 and guards[0].challenger_metric == 0.5  # the positives flipped
    assert not decide(POLICY, 0.9, 0.8, p_value=0.001, guards=guards).promote

    clean = trigger_guards(root, PARAMS, tags, train, champion, champion)
    assert clean[0].challenger_metric == 1.0 and decide(POLICY, 0.9, 0.8, p_value=0.001, guards=clean).promote
    assert trigger_guards(root, PARAMS, tags, [t for t, _ in TRAIN], triggered, champion) == []  # nothing new


def test_the_pinned_reference_set_is_a_guard_of_its_own(tmp_path):
    params = Params.model_validate({"promotion": {"reference_file": "reference.csv"}})
    assert reference_set(tmp_path, PARAMS) is None  # not set: no guard
    pd.DataFrame({"text": [t for t, _ in TEST], "label": [LABELS[y] for _, y in TEST]}).to_csv(
        tmp_path / "reference.csv", index=False
    )
    reference = reference_set(tmp_path, params)
    assert reference is not None and len(reference) == len(TEST)
    guard = reference_guard(params, reference, regressing, champion)
    assert guard.name == "the reference set reference.csv" and guard.challenger_metric < guard.champion_metric
    assert "the reference set reference.csv" in decide(POLICY, 0.9, 0.8, p_value=0.001, guards=[guard]).reason
