"""Registry: the promotion policy and McNemar's test (pure), then the real MLflow registry end to end."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import sampled_project, set_params, textops

from textops.config import PromotionParams
from textops.registry import (
    RegistryError,
    champion_stack,
    decide,
    mcnemar,
    rollback_target,
    score,
)

POLICY = PromotionParams(primary_metric="macro_f1", min_delta=0.01, max_p_value=0.05, floor=0.6)


# --------------------------------------------------------------------------------------------------
# McNemar


def test_mcnemar_counts_discordant_pairs_and_matches_binomial():
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0])
    new = np.array([1, 1, 1, 1, 0, 0, 1, 0])  # wrong on row 6
    old = np.array([0, 0, 1, 1, 0, 1, 0, 0])  # wrong on rows 0, 1, 5
    r = mcnemar(y, new, old)
    assert (r.b, r.c) == (3, 1)
    # two-sided exact binomial: P(X<=1 or X>=3 | n=4, p=.5) = (1+4+4+1)/16
    assert r.p_value == pytest.approx(10 / 16)


def test_mcnemar_identical_models_p_is_one():
    y = np.array([0, 1, 0, 1])
    assert mcnemar(y, y, y).p_value == 1.0
    assert mcnemar(y, 1 - y, 1 - y).p_value == 1.0  # equally wrong everywhere: no evidence either way


def test_mcnemar_many_one_sided_wins_is_significant():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    new = y.copy()
    old = y.copy()
    old[:40] = 1 - old[:40]  # the champion is wrong on 40 rows the challenger gets right
    r = mcnemar(y, new, old)
    assert (r.b, r.c) == (40, 0)
    assert r.p_value < 1e-10


def test_mcnemar_works_on_label_names_and_rejects_unequal_lengths():
    assert mcnemar(["a", "b"], ["a", "a"], ["b", "b"]).b == 1
    with pytest.raises(ValueError, match="equal lengths"):
        mcnemar([0, 1], [0], [0, 1])


def test_score_metrics():
    y = ["neg", "neg", "pos", "pos"]
    p = ["neg", "pos", "pos", "pos"]
    assert score(y, p, "accuracy") == pytest.approx(0.75)
    assert score(y, p, "macro_f1") == pytest.approx((2 / 3 + 0.8) / 2)


# --------------------------------------------------------------------------------------------------
# the decision


def test_first_model_promoted_only_above_floor():
    assert decide(POLICY, 0.7).promote
    d = decide(POLICY, 0.5)
    assert not d.promote and "floor" in d.reason


def test_failed_or_skipped_validation_never_promotes():
    for champion in (None, 0.5):
        d = decide(POLICY, 0.99, champion, 1e-9, validation_ok=False)
        assert not d.promote and "validation" in d.reason


def test_must_promote_when_better_by_min_delta_and_significant():
    d = decide(POLICY, 0.90, 0.80, 0.001)
    assert d.promote and "beats" in d.reason


@pytest.mark.parametrize(
    ("new", "old", "p", "why"),
    [
        (0.805, 0.80, 0.001, "at least"),  # better, significant, but below min_delta
        (0.80, 0.80, 0.001, "at least"),  # a tie never promotes
        (0.70, 0.80, 0.001, "at least"),  # worse
        (0.90, 0.80, 0.20, "not significant"),  # better by a lot on few rows: p too large
        (0.90, 0.80, 0.05, "not significant"),  # p must be strictly below the threshold
        (0.90, 0.80, None, "not significant"),
    ],
)
def test_must_not_promote(new, old, p, why):
    d = decide(POLICY, new, old, p)
    assert not d.promote
    assert why in d.reason


def test_zero_min_delta_still_needs_a_strict_win():
    policy = PromotionParams(min_delta=0.0, max_p_value=0.05, floor=0.0)
    assert not decide(policy, 0.8, 0.8, 0.0).promote
    assert decide(policy, 0.8001, 0.8, 0.01).promote


# --------------------------------------------------------------------------------------------------
# history replay for rollback


def h(*entries):
    return [{"version": v, "kind": k} for v, k in entries]


def test_rollback_goes_back_one_champion_at_a_time():
    history = h(("1", "auto"), ("2", "auto"), ("3", "auto"))
    assert rollback_target(history, "3") == "2"
    history += h(("2", "rollback"))
    assert champion_stack(history) == ["1", "2"]
    assert rollback_target(history, "2") == "1"  # not back to 3
    history += h(("1", "rollback"))
    with pytest.raises(RegistryError, match="nothing to roll back"):
        rollback_target(history, "1")


def test_manual_promotion_and_rollback_to_unknown_version_push():
    history = h(("1", "auto"), ("4", "manual"), ("2", "rollback"))
    assert champion_stack(history) == ["1", "4", "2"]
    assert rollback_target(history, "2") == "4"


def test_rollback_when_alias_was_moved_outside_textops():
    assert rollback_target(h(("1", "auto")), "5") == "1"


def test_no_history_no_rollback():
    with pytest.raises(RegistryError):
        rollback_target([], "1")
    assert json.dumps(champion_stack([])) == "[]"


# --------------------------------------------------------------------------------------------------
# the real registry: tiny models trained on two data versions, registered through the CLI

# Small enough for two shared CPU cores; the sample data is easy, so a few epochs learn it well.
TINY = {
    "sample": {"rows": 1500, "seed": 13},
    "model": {"base": "tiny", "max_length": 32, "tiny": {"vocab_size": 600, "hidden_size": 32, "num_layers": 1,
                                                         "num_heads": 2, "intermediate_size": 64}},
    "train": {"epochs": 4, "batch_size": 32, "learning_rate": 0.002, "save_steps": 1000, "logging_steps": 20,
              "early_stopping_patience": 0},
    "promotion": {"floor": 0.0, "min_delta": 0.01, "max_p_value": 0.05},
}
# A model that learns nothing: one step at a vanishing learning rate.
WEAK = {"train": {"epochs": 1, "learning_rate": 1e-9, "max_train_samples": 32, "warmup_ratio": 0.0}}


def commit_all(root: Path, message: str) -> None:
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    subprocess.run(["git", "commit", "-q", "--allow-empty", "-m", message], cwd=root, check=True)


def prepare_data(root: Path) -> None:
    textops(root, "preprocess")
    textops(root, "validate")
    commit_all(root, "data version")


def train_and_register(root: Path, *overrides: dict) -> str:
    """Train and evaluate with OVERRIDES on top of TINY, register; return the register command's output."""
    set_params(root, TINY, *overrides, commit=False)
    textops(root, "train")
    textops(root, "evaluate")
    out = textops(root, "register").stdout
    set_params(root, TINY, {"train": {"epochs": 4, "learning_rate": 0.002, "max_train_samples": None,
                                      "warmup_ratio": 0.1}}, commit=False)
    return out


def second_data_version(root: Path) -> None:
    """Ingest another batch of the sample generator (another seed): a new raw and cleaned data version."""
    extra = root.parent / "extra.csv"
    set_params(root, {"sample": {"seed": 99, "rows": 600}}, commit=False)
    textops(root, "sample", "--no-ingest", "--output", str(extra))
    set_params(root, {"sample": {"seed": 13, "rows": 1500}}, commit=False)
    textops(root, "ingest", str(extra))
    prepare_data(root)


@pytest.fixture(scope="module")
def registry_project(tmp_path_factory: pytest.TempPathFactory):
    """v1 weak on data A (first champion, floor 0); v2 good on data B (must promote); v3 weak on B (must not)."""
    with sampled_project(tmp_path_factory, "reg", TINY) as root:
        prepare_data(root)
        outputs = {"v1": train_and_register(root, WEAK)}
        second_data_version(root)
        outputs["v2"] = train_and_register(root)
        shutil.copy(root / "artifacts/model/run.json", root.parent / "v2-run.json")
        outputs["v3"] = train_and_register(root, WEAK)
        yield root, outputs


def alias(c, name: str, which: str) -> str:
    return str(c.get_model_version_by_alias(name, which).version)


def registry_client(root: Path):
    from textops.config import load_params
    from textops.registry import client

    params = load_params(root / "params.yaml")
    return client(root, params), params.mlflow.registered_model


@pytest.mark.slow
def test_first_model_becomes_champion_then_better_one_on_new_data_is_promoted(registry_project):
    root, out = registry_project
    assert "v1 (challenger): PROMOTED" in out["v1"]
    assert "v2 (challenger): PROMOTED" in out["v2"], out["v2"]
    c, name = registry_client(root)
    v2 = c.get_model_version(name, "2")
    t = v2.tags
    assert t["textops.decision"] == "promoted"
    # the champion (v1) was trained on data A and re-scored on v2's test split (data B)
    assert t["textops.champion.version"] == "1"
    assert t["textops.champion.rescored"] == "true"
    assert t["textops.champion.data.raw_md5"] != t["textops.challenger.data.raw_md5"]
    assert float(t["textops.challenger.macro_f1"]) >= float(t["textops.champion.macro_f1"]) + 0.01
    assert float(t["textops.mcnemar.p_value"]) < 0.05
    # the report is in v2's run
    report = Path(c.download_artifacts(v2.run_id, "registry/decision.md", str(root.parent / "dl")))
    assert "PROMOTED" in report.read_text() and "mcnemar.p_value" in report.read_text()


@pytest.mark.slow
def test_worse_challenger_is_not_promoted_and_champion_stays(registry_project):
    root, out = registry_project
    assert "v3 (challenger): not promoted" in out["v3"], out["v3"]
    c, name = registry_client(root)
    assert alias(c, name, "champion") == "2"
    assert alias(c, name, "challenger") == "3"
    t = c.get_model_version(name, "3").tags
    assert t["textops.decision"] == "rejected"
    assert t["textops.champion.rescored"] == "false"  # same data version: same test rows
    assert "does not beat" in t["textops.reason"]


@pytest.mark.slow
def test_skipped_validation_never_promotes(registry_project):
    root, _ = registry_project
    shutil.copy(root.parent / "v2-run.json", root / "artifacts/model/run.json")
    validate = root / "metrics/validate.json"
    saved = validate.read_text()
    validate.unlink()
    try:
        out = textops(root, "register").stdout
    finally:
        validate.write_text(saved)
    assert "not promoted" in out and "validation" in out
    c, name = registry_client(root)
    assert alias(c, name, "champion") == "2"


@pytest.mark.slow
def test_model_list_show_and_data_versions(registry_project):
    root, _ = registry_project
    listing = textops(root, "model", "list").stdout
    lines = {line.split()[0]: line for line in listing.splitlines()[1:]}
    assert "champion" in lines["2"] and "promoted" in lines["2"] and "rejected" in lines["3"]
    assert "challenger" in lines[max(lines, key=int)]  # the latest registered version
    shown = json.loads(textops(root, "model", "show", "2").stdout)
    data_dvc = yaml.safe_load((root / "data.dvc").read_text())["outs"][0]["md5"]
    assert shown["data"]["raw_md5"] == data_dvc
    assert shown["data"]["clean_md5"] and shown["data"]["rev"]
    assert shown["metrics"]["test_macro_f1"] > 0.5
    assert shown["decision"]["decision"] == "promoted"
    assert shown["params"]  # the training params are part of the lineage
    versions = textops(root, "data", "versions").stdout
    newest, oldest = versions.splitlines()[1], versions.splitlines()[-1]
    assert newest.rstrip().endswith("2,3") or newest.rstrip().endswith("2,3,4")
    assert oldest.rstrip().endswith("1")
    bad = textops(root, "model", "show", "99", check=False)
    assert bad.returncode != 0 and "no version" in bad.stderr


@pytest.mark.slow
def test_manual_promote_and_rollback_follow_the_history(registry_project):
    root, _ = registry_project
    c, name = registry_client(root)
    assert "reason" in textops(root, "model", "promote", "3", check=False).stderr  # a reason is required
    textops(root, "model", "promote", "3", "--reason", "hotfix test")
    assert alias(c, name, "champion") == "3"
    assert c.get_model_version(name, "3").tags["textops.manual_promotion"] == "hotfix test"
    textops(root, "model", "rollback")
    assert alias(c, name, "champion") == "2"
    textops(root, "model", "rollback")
    assert alias(c, name, "champion") == "1"
    nothing = textops(root, "model", "rollback", check=False)
    assert nothing.returncode != 0 and "nothing to roll back" in nothing.stderr
    assert alias(c, name, "champion") == "1"  # a failed rollback changes nothing
    textops(root, "model", "rollback", "--to", "2")
    assert alias(c, name, "champion") == "2"
