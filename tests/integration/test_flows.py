"""The Prefect flows in-process (temporary Prefect server, project-local PREFECT_HOME), through `textops run`
and `textops rollback`, on real DVC, Great Expectations, MLflow (SQLite in the test project) and a tiny model.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from helpers import FAST, FLOW, audited, git, in_process, logged_opens, registry, set_params, textops


@pytest.fixture
def flow_project(project: Path) -> Path:
    set_params(project, FAST, FLOW)
    return project


def test_failed_validation_fails_the_flow_and_trains_nothing(flow_project):
    # Valid data, but the gate asks for more training rows than the sample has.
    set_params(flow_project, {"validate": {"min_rows": 100_000}})
    proc = textops(flow_project, "run", check=False)
    assert proc.returncode != 0
    err = proc.stdout + proc.stderr
    assert "data validation failed, nothing trained or registered" in err
    assert "expect_table_row_count_to_be_between" in err  # the failed expectation is named
    assert not (flow_project / "artifacts" / "model" / "run.json").exists()
    assert json.loads((flow_project / "metrics" / "validate.json").read_text())["success"] is False
    # dvc.lock records what the flow's stages produced.
    lock = yaml.safe_load((flow_project / "dvc.lock").read_text())
    assert {"preprocess", "validate"} <= set(lock["stages"])


def test_run_on_fresh_project_trains_registers_then_skips_without_torch(flow_project):
    proc = textops(flow_project, "run")
    out = proc.stdout
    assert "ingesting the built-in sample" in out
    assert "now the champion" in out and "look at:" in out and "metrics/eval.json" in out and "textops serve" in out
    assert (flow_project / ".prefect").is_dir()  # project-local Prefect home
    assert registry(flow_project)["champion"] == "1"
    # The console is for people: a line as each stage starts and ends, the summary; the libraries' logs, warnings
    # and progress bars are in the run's log file.
    for step in ("[1/5] preprocess done in", "[3/5] train done in", "[5/5] register done in"):
        assert step in out, out
    assert "(tiny model, " in out, out  # the base model trained, `auto` resolved
    both = out + proc.stderr
    for noise in ("Downloading artifacts", "Warning", "Traceback", " | INFO ", "Loading weights", "{'loss'"):
        assert noise not in both, both
    assert len(both.splitlines()) < 45, both
    logs = list((flow_project / ".textops" / "logs").glob("run-*.log"))
    assert len(logs) == 1 and "mlflow" in logs[0].read_text(), logs
    # Every stage's outputs are recorded in dvc.lock: DVC agrees there is nothing to reproduce.
    status = subprocess.run(
        [sys.executable, "-m", "dvc", "status"], cwd=flow_project, capture_output=True, text=True, check=True
    ).stdout
    assert "up to date" in status, status

    # Same data and params: the flow ends early, Completed, and never imports torch.
    result = in_process(
        flow_project,
        "from textops.flows.pipeline import training_pipeline\n"
        "s = training_pipeline(project_dir='.', return_state=True)\n"
        "print(json.dumps({'type': s.type.value, 'message': s.message, 'torch': 'torch' in sys.modules}))\n",
    )
    assert result["type"] == "COMPLETED"
    assert result["message"].startswith("nothing to retrain")
    assert result["torch"] is False
    log = flow_project.parent / "store-opens.log"
    again = textops(flow_project, "run", env=audited(log))
    assert "nothing to retrain" in again.stdout
    assert len(logged_opens(log)) == 1  # the quick check reads the store once, MLflow not imported (the hook works)

    # A params change is a change: `--force` is not needed.
    set_params(flow_project, {"train": {"learning_rate": 0.001}})
    changed = textops(flow_project, "run", env=audited(log))
    assert "registered" in changed.stdout
    assert len(registry(flow_project)["metrics"]) == 2
    # One session for the whole command (issue 34; 18 opens before): the quick check, the check of the store with
    # a moved project's repair, MLflow's tracking and registry connections, and one more of each where MLflow nests
    # a query in another (creating the run, registering the version).
    opens = logged_opens(log)
    assert 1 <= len(opens) <= 6, "\n".join(opens)


def noisy(frame: pd.DataFrame, fraction: float, seed: int) -> pd.DataFrame:
    """Valid data whose labels are partly wrong: the same texts, FRACTION of labels flipped."""
    out = frame.copy()
    flip = out.sample(frac=fraction, random_state=seed).index
    names = sorted(out["label"].unique())
    out.loc[flip, "label"] = out.loc[flip, "label"].map(lambda v: names[1 - names.index(v)])
    out["text"] = out["text"] + " ."  # new rows, so v2 is a new data version on top of v1
    return out


def test_rollback_restores_data_and_reproduces_the_v1_model(flow_project):
    root = flow_project
    sample = root.parent / "v1.csv"
    textops(root, "sample", "--no-ingest", "--output", str(sample))
    textops(root, "ingest", str(sample), "--commit")
    v1_rev = git(root, "rev-parse", "HEAD").strip()
    textops(root, "run")
    v1 = registry(root)
    assert v1["champion"] == "1"

    v2 = root.parent / "v2.csv"
    noisy(pd.read_csv(sample), 0.45, seed=1).to_csv(v2, index=False)
    textops(root, "ingest", str(v2), "--commit")
    textops(root, "run")
    assert len(registry(root)["metrics"]) == 2

    proc = textops(root, "rollback", "--data", v1_rev, "--force", "--reason", "v2 labels are noisy")
    assert "now the champion" in proc.stdout
    after = registry(root)
    assert after["champion"] == "3"
    # Same data version, params and seed on the CPU: the retrained model is the v1 model, metric for metric.
    assert after["metrics"]["3"] == v1["metrics"]["1"]
    # The working tree's data is v1's, and the data versions list shows it as the newest version.
    assert (root / "data.dvc").read_text() == git(root, "show", f"{v1_rev}:data.dvc")
    versions = textops(root, "data", "versions").stdout.splitlines()
    v1_md5 = yaml.safe_load((root / "data.dvc").read_text())["outs"][0]["md5"]
    assert v1_md5[:12] in versions[1]


@pytest.mark.extended
def test_run_and_rollback_honour_the_params_file_and_overrides(flow_project):
    root = flow_project
    textops(root, "sample", "--output", str(root.parent / "sample.csv"))
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "data")
    strict = yaml.safe_load((root / "params.yaml").read_text())
    strict["validate"]["min_rows_per_class"] = 5000
    (root / "strict.yaml").write_text(yaml.safe_dump(strict))
    for args in (
        ["run", "--params", "strict.yaml"],
        ["run", "-S", "validate.min_rows_per_class=5000"],
        ["rollback", "--data", "HEAD", "--params", "strict.yaml"],
        ["rollback", "--data", "HEAD", "-S", "validate.min_rows_per_class=5000"],
    ):
        proc = textops(root, *args, check=False)
        assert proc.returncode != 0, args
        assert "data validation failed" in proc.stdout + proc.stderr and "min_value=5000" in proc.stdout + proc.stderr
        assert not (root / "artifacts" / "model" / "run.json").exists()
