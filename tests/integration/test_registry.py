"""The real MLflow registry end to end: tiny models trained on two data versions, registered through the CLI;
promotion, rejection, skipped validation, list/show, manual promote and rollback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from helpers import (
    FAST,
    TINY,
    WEAK,
    git,
    merge,
    mlflow_client,
    prepare_data,
    sampled_project,
    second_data_version,
    textops,
    train_and_register,
)

from textops.core import lineage


@pytest.fixture(scope="module")
def registry_project(tmp_path_factory: pytest.TempPathFactory):
    """v1 weak on data A (first champion, floor 0); v2 good on data B (must promote, once its data validation is
    there); v3 weak on B (must not)."""
    with sampled_project(tmp_path_factory, "reg", merge(FAST, TINY)) as root:
        prepare_data(root)
        outputs = {"v1": train_and_register(root, WEAK)}
        second_data_version(root)
        # v2 registered first with its data validation missing (held), then again once it is back: decided again.
        validate = root / "metrics/validate.json"
        saved = validate.read_text()
        validate.unlink()
        try:
            outputs["v2 unvalidated"] = train_and_register(root)
        finally:
            validate.write_text(saved)
        outputs["v2"] = textops(root, "register").stdout
        outputs["v3"] = train_and_register(root, WEAK)
        yield root, outputs


def alias(c, name: str, which: str) -> str:
    return str(c.get_model_version_by_alias(name, which).version)


def registry_client(root: Path):
    return mlflow_client(root)


@pytest.mark.slow
def test_first_model_becomes_champion_then_better_one_on_new_data_is_promoted(registry_project):
    root, out = registry_project
    assert "v1 (challenger): PROMOTED" in out["v1"]
    assert "v2 (challenger, its run's version decided again): PROMOTED" in out["v2"], out["v2"]
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
    assert 0.0 < float(t["textops.champion.accuracy"]) < 1.0  # the run summary shows the champion's row whole
    assert t["textops.slices.compared"].endswith("(of at least 30 rows)")  # the per-slice rule was applied
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
    root, outputs = registry_project
    held = outputs["v2 unvalidated"]
    assert "v2 (challenger): not promoted" in held and "validation" in held, held
    # Registered again once the validation is back: the same version decided again, never a second one of its run.
    assert "v2 (challenger, its run's version decided again): PROMOTED" in outputs["v2"], outputs["v2"]
    c, name = registry_client(root)
    assert alias(c, name, "champion") == "2"
    assert len(c.search_model_versions(f"run_id = '{c.get_model_version(name, '2').run_id}'")) == 1


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
    # judged as it serves: the ONNX graph (serve.runtime's default), which gave PyTorch's labels
    assert shown["decision"]["runtime"] == "onnx" and float(shown["decision"]["runtime.agreement_with_torch"]) > 0.98
    assert shown["params"]  # the training params are part of the lineage
    commit = shown["git"]["commit"]  # the code's commit when v2 was trained: one of the project's
    assert len(commit) == 40 and git(root, "cat-file", "-t", commit).strip() == "commit", shown["git"]
    versions = textops(root, "data", "versions").stdout
    newest, oldest = versions.splitlines()[1], versions.splitlines()[-1]
    assert newest.rstrip().endswith("2,3")
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
    # v3 -> v2 went back to a model of the same data: the model is marked, not its data; v2 -> v1 changed the
    # data, so v2's data is marked too (a model trained on it again waits for a person).
    moves = json.loads(c.get_registered_model(name).tags[lineage.CHAMPION_HISTORY])[-2:]
    assert [m["from"] for m in moves] == ["3", "2"], moves
    assert (
        "from_raw_md5" not in moves[0]
        and moves[1]["from_raw_md5"] == c.get_model_version(name, "2").tags["textops.challenger.data.raw_md5"]
    ), moves
    nothing = textops(root, "model", "rollback", check=False)
    assert nothing.returncode != 0 and "nothing to roll back" in nothing.stderr
    assert alias(c, name, "champion") == "1"  # a failed rollback changes nothing
    textops(root, "model", "rollback", "--to", "2")
    assert alias(c, name, "champion") == "2"
