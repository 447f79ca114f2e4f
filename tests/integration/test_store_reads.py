"""`textops status` and `textops model list` read the project's SQLite store directly (`textops.registry.sqlstore`): no
MLflow import, and the same answer as MLflow's path (`quick=False`) on the same store; "not sure" falls back."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from textops.core.config import load_params
from textops.registry.registry import list_versions
from textops.registry.sqlstore import read_store
from textops.ui.console import format_list
from textops.ui.status import format_status, project_status

HEAVY = ("mlflow", "prefect", "torch", "dvc", "transformers", "pandas", "sklearn", "sqlalchemy")


def imported(root: Path, *args: str) -> tuple[str, set[str]]:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "textops", *args],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    modules = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in proc.stderr.splitlines() if "|" in line}
    return proc.stdout, modules & set(HEAVY)


def both_ways(root: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], list[str]]:
    """status (as JSON and as text) and model list, from the file and from MLflow, on the same store."""
    monkeypatch.setattr("textops.ui.status.age", str)  # the times themselves, not "2 min ago" (it moves on)
    params = load_params(root / "params.yaml")
    metric = params.promotion.primary_metric
    out = []
    for quick in (True, False):
        st = project_status(root, params, quick=quick)
        out.append(
            [
                json.dumps(st, default=str),
                format_status(st, metric),
                format_list(list_versions(root, params, quick=quick), metric),
            ]
        )
    return out[0], out[1]


def test_status_and_model_list_import_no_mlflow_and_say_what_mlflow_says(champion_template: Path, monkeypatch):
    monkeypatch.chdir(champion_template)
    status, heavy = imported(champion_template, "status", "--json")
    assert not heavy, heavy
    listed, heavy = imported(champion_template, "model", "list")
    assert not heavy, heavy
    assert json.loads(status)["aliases"]["champion"]["version"] == "1"
    quick, mlflow = both_ways(champion_template, monkeypatch)
    assert quick == mlflow
    assert json.loads(status) == json.loads(mlflow[0]) and listed.strip() == mlflow[2]


def store_with_history(root: Path) -> None:
    """Three versions (one deleted, one without its files), both aliases, runs that started at the same
    millisecond, a deleted run, a NaN metric: what the two ways of reading could disagree on."""
    from textops.adapters.tracking import connect

    params = load_params(root / "params.yaml")
    session = connect(root, params)
    client, name, metric = session.client, session.model_name, f"test_{params.promotion.primary_metric}"
    runs = [
        client.create_run(
            session.experiment_id, start_time=1_700_000_000_000 + 1000 * (i // 2), tags={"textops.stage": f"stage{i}"}
        )
        for i in range(5)
    ]
    for i, run in enumerate(runs):
        client.log_metric(run.info.run_id, metric, float("nan") if i == 1 else 0.5 + i / 10)
    client.set_terminated(runs[2].info.run_id, "FAILED")
    client.delete_run(runs[3].info.run_id)
    client.create_registered_model(name)
    for i, run in enumerate(runs[:4]):
        source = f"{run.info.artifact_uri}/model"
        if i != 1:  # v2's files are missing
            Path(source.removeprefix("file://")).mkdir(parents=True)
            Path(source.removeprefix("file://"), "MLmodel").write_text("flavors: {}\n")
        mv = client.create_model_version(name, source, run.info.run_id)
        client.set_model_version_tag(name, mv.version, "textops.challenger.macro_f1", str(0.7 + i / 100))
        client.set_model_version_tag(name, mv.version, "textops.decision", "promoted" if i % 2 else "rejected")
        client.set_model_version_tag(name, mv.version, "textops.challenger.data.rev", f"rev{i}" * 4)
    client.delete_model_version(name, "3")
    client.set_registered_model_alias(name, "champion", "2")
    client.set_registered_model_alias(name, "challenger", "4")


def test_the_file_and_mlflow_agree_on_a_store_with_history(project: Path, monkeypatch):
    store_with_history(project)
    quick, mlflow = both_ways(project, monkeypatch)
    assert quick == mlflow
    st = json.loads(quick[0])
    assert (st["aliases"]["champion"]["version"], st["aliases"]["champion"]["files_missing"]) == ("2", True)
    assert [r["stage"] for r in st["runs"]][:2] == ["stage4", "stage2"]  # newest first, not the deleted run
    assert {r["stage"] for r in st["runs"][2:]} == {"stage0", "stage1"} and st["runs"][2]["run_id"] < st["runs"][3][
        "run_id"
    ]  # the same start: by run id
    assert [line.split()[0] for line in quick[2].splitlines()[1:]] == ["4", "2", "1"]


def test_not_sure_is_left_to_mlflow(champion_template: Path, tmp_path: Path, monkeypatch):
    params = load_params(champion_template / "params.yaml")
    assert read_store(champion_template, params) is not None
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", "http://127.0.0.1:9/")
    assert read_store(champion_template, params) is None
    monkeypatch.delenv("MLFLOW_REGISTRY_URI")
    # A store whose experiment keeps its artifacts in another directory (a moved project): `connect` repairs it.
    moved = load_params(champion_template / "params.yaml", ("mlflow.artifact_location=elsewhere",))
    assert read_store(champion_template, moved) is None


@pytest.mark.parametrize("args", [("status", "--json"), ("model", "list")])
def test_without_a_store_nothing_changes(project: Path, args: tuple[str, ...]):
    out, _ = imported(project, *args)
    if args[0] == "status":
        st = json.loads(out)
        assert st["aliases"] == {} and st["runs"] == [] and st["data"]["raw_md5"] is None, st
    else:
        assert "no registered versions yet" in out
