"""The cross-stage names lineage builds: registry URIs, val metric keys and the register stage's evidence keys."""

import pytest

from textops.core import lineage


def test_model_uri_names_a_version_or_an_alias():
    assert lineage.model_uri("reviews", "3") == "models:/reviews/3"
    assert lineage.model_uri("reviews", 3) == "models:/reviews/3"
    assert lineage.model_uri("reviews", alias=lineage.CHAMPION_ALIAS) == "models:/reviews@champion"
    with pytest.raises(ValueError, match="neither"):
        lineage.model_uri("reviews")
    with pytest.raises(ValueError, match="both"):
        lineage.model_uri("reviews", "3", alias="champion")


def test_val_metrics_sit_beside_the_test_metrics():
    assert lineage.val_metric("macro_f1") == "val_macro_f1" and lineage.test_metric("macro_f1") == "test_macro_f1"
    assert lineage.val_metric("accuracy").startswith(lineage.VAL_METRIC_PREFIX)
    summary = {"val_accuracy": 0.5, "val_loss": 1, "train_loss": 0.3, "global_step": 4}
    assert lineage.best_val_metrics(summary) == {"best_val_accuracy": 0.5, "best_val_loss": 1.0}


def test_evidence_keys_one_helper_per_side_and_their_tags():
    keys = {
        lineage.champion_key("version"): "champion.version",
        lineage.champion_key("demo"): "champion.demo",
        lineage.challenger_key("run_id"): "challenger.run_id",
        lineage.baseline_key("macro_f1"): "baseline.macro_f1",
        lineage.mcnemar_key("b"): "mcnemar.b",
        lineage.guard_key(0): "guard.0",
        lineage.runtime_key("agreement_with_torch"): "runtime.agreement_with_torch",
    }
    assert list(keys) == list(keys.values())
    # A version's tag is `textops.` + the key: the register stage writes one, status and the registry read the other.
    assert lineage.champion_evidence("version") == lineage.evidence_tag(lineage.champion_key("version"))
    assert lineage.challenger_evidence("data.raw_md5") == "textops.challenger.data.raw_md5"
    assert lineage.champion_key("") == "champion."  # a whole side, as a prefix
