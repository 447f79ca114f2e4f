"""The loop a user lives in, walked as a user does, on real git, DVC, MLflow and Prefect: run on a fresh clone,
ingest and retrain, a bad batch refused, an override, a model rollback, and the data of any model version
restored byte-exact from MLflow and the DVC remote alone, then retrained to the same metrics."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from helpers import FAST, FLOW, digest, dvc, git, make_project, mlflow_client, registry, set_params, textops

pytestmark = pytest.mark.slow


def data_bytes(root: Path) -> dict[str, str]:
    """Every raw batch and cleaned split, by path relative to the project."""
    return {str(Path(k).relative_to(root)): v for k, v in digest(root / "data", root / "artifacts" / "clean").items()}


def version_tags(root: Path, version: str) -> dict[str, str]:
    client, name = mlflow_client(root)
    mv = client.get_model_version(name, version)
    return {**client.get_run(mv.run_id).data.tags, **mv.tags}


@pytest.mark.extended
def test_run_ingest_override_rollback_and_restore_any_model_data(tmp_path):
    root = make_project(tmp_path / "clone")  # what a clone is: params, dvc.yaml, sources, git and DVC set up
    set_params(root, FAST, FLOW)
    textops(
        root,
        "sample",
        "--no-ingest",
        "--output",
        str(tmp_path / "more.csv"),
        "-S",
        "sample.seed=99",
        "-S",
        "sample.rows=300",
    )

    # v1: the first run ingests the built-in sample and commits nothing, yet its data is a data version.
    summary = json.loads(textops(root, "run", "--json").stdout)  # stdout is the JSON alone (stage lines on stderr)
    assert summary["register"]["promote"] is True and summary["register"]["version"] == "1"
    v1_data, v1 = data_bytes(root), registry(root)
    tags = version_tags(root, "1")
    assert tags["textops.data.pushed"] == "true" and json.loads(tags["textops.data.pointer"])["md5"]
    versions = textops(root, "data", "versions").stdout.splitlines()
    assert len(versions) == 2 and " - " not in versions[1], versions  # clean md5 and split sizes are known

    # v2: the user's own batch, ingested and committed (it replaces the demo), then a run that commits what it made.
    assert "replaces the built-in demo sample" in textops(root, "ingest", str(tmp_path / "more.csv"), "--commit").stdout
    textops(root, "run", "--commit")
    assert len(registry(root)["metrics"]) == 2
    assert "v2" in git(root, "log", "-1", "--format=%s") and git(root, "status", "--porcelain", "dvc.lock") == ""
    # Nothing a run made is left untracked: git ignores the rest (README: what is git-ignored).
    assert git(root, "status", "--porcelain", "--untracked-files=all") == "", git(root, "status", "--porcelain")
    v2_rev = git(root, "rev-parse", "HEAD").strip()
    assert version_tags(root, "2")["textops.data.rev"] != "none"

    # A bad batch is refused and changes nothing.
    before = {**digest(root / "data", root / "data.dvc", root / ".dvc" / "cache"), "head": v2_rev}
    (tmp_path / "bad.csv").write_text('text,label\n=HYPERLINK("http://x"),positive\nfine film,positive\n')
    refused = textops(root, "ingest", str(tmp_path / "bad.csv"), check=False)
    assert refused.returncode != 0 and "bad.csv" in refused.stderr
    assert {
        **digest(root / "data", root / "data.dvc", root / ".dvc" / "cache"),
        "head": git(root, "rev-parse", "HEAD").strip(),
    } == before

    # A params-only commit does not move the data's lineage; an override is honoured and recorded.
    set_params(root, {"serve": {"port": 5099}})
    textops(root, "run", "-S", "train.learning_rate=0.003")
    v3 = version_tags(root, "3")
    assert v3["textops.data.rev"] == v2_rev  # the commit that holds the data, not the params-only one on top
    assert v3["textops.params.overrides"] == "train.learning_rate=0.003"
    client, _ = mlflow_client(root)
    assert (
        client.get_run(client.get_model_version("textops-classifier", "3").run_id).data.params["train.learning_rate"]
        == "0.003"
    )

    textops(root, "model", "promote", "3", "--reason", "reviewed by hand")
    assert registry(root)["champion"] == "3"
    rolled = textops(root, "model", "rollback").stdout
    assert "rolled back" in rolled and "metrics/, reports/run.html and `dvc plots` still describe" in rolled, rolled
    assert registry(root)["champion"] != "3"

    # Any model version's data comes back byte-exact from MLflow and the DVC remote alone (no git revision,
    # no local cache).
    shutil.rmtree(root / ".dvc" / "cache")
    restored = textops(root, "data", "checkout", "--model", "1").stdout
    assert "fetched from the DVC remote" in restored, restored
    assert data_bytes(root) == v1_data
    for version in ("2", "3"):
        textops(root, "data", "checkout", "--model", version)
        tags = version_tags(root, version)
        assert json.loads(tags["textops.data.pointer"])["md5"] == yaml_md5(root / "data.dvc")
        assert dvc(root, "status", "data.dvc", "dvc.yaml:preprocess").stdout.strip() in (
            "Data and pipelines are up to date.",
            "",
        ), version

    # Rolling back to v1's data retrains v1, metric for metric (same data, params and seed on the CPU).
    out = textops(root, "rollback", "--model", "1", "--force", "--reason", "back to the first data").stdout
    assert "now the champion" in out
    after = registry(root)
    newest = max(after["metrics"], key=int)
    assert after["champion"] == newest and after["metrics"][newest] == v1["metrics"]["1"]
    assert data_bytes(root) == v1_data


def yaml_md5(pointer: Path) -> str:
    import yaml

    return yaml.safe_load(pointer.read_text())["outs"][0]["md5"]
