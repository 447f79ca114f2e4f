"""Distributed training of the train stage on the CPU (gloo): `torchrun --nproc_per_node=2` and `accelerate launch
--num_processes 2` each produce one MLflow run (rank 0 only), one model, and test metrics within TOLERANCE of the
single-process run on the same data and params (train.batch_size is the global batch, so both take the same steps
with the same schedule; only the order in which rows are drawn differs).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import FAST, free_port, make_project, mlflow_client, set_params, textops

pytestmark = [pytest.mark.production, pytest.mark.slow]

# Test accuracy and macro-F1 of a 2-process run against the single-process one, absolute: the tiny model on
# ~130 test rows, where one row is 0.008.
TOLERANCE = 0.06
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """A project with 1,500 sample rows preprocessed and validated, its own SQLite store."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        root = make_project(tmp_path_factory.mktemp("ddp") / "proj")
        set_params(root, FAST, {"sample": {"rows": 1500}})
        for stage in ("sample", "preprocess", "validate"):
            textops(root, stage)
        yield root


def launch(root: Path, *launcher: str) -> dict:
    """LAUNCHER `-m textops train` (fresh checkpoints) then `textops evaluate`: the evaluation's metrics, the
    run id of the model and the ranks' output."""
    shutil.rmtree(root / "artifacts/checkpoints", ignore_errors=True)  # a fresh training, not a resume
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [*launcher, "-m", "textops", "train"], cwd=root, env=env, capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    assert proc.stdout.count("train: val accuracy") == 1, proc.stdout  # rank 0 alone reports
    textops(root, "evaluate")
    metrics = json.loads((root / "metrics/eval.json").read_text())
    run = json.loads((root / "artifacts/model/run.json").read_text())
    return {"accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"], "run_id": run["run_id"]}


@pytest.fixture(scope="module")
def single(prepared) -> dict:
    """The single-process run's metrics, the reference."""
    return launch(prepared, sys.executable)


def runs(root: Path) -> list:
    client, _ = mlflow_client(root)
    experiment = client.get_experiment_by_name("textops")
    return client.search_runs([experiment.experiment_id]) if experiment else []


@pytest.mark.parametrize("launcher", ["torchrun", "accelerate"])
def test_two_processes_one_run_one_model_same_metrics(prepared, single, launcher):
    root = prepared
    before = {r.info.run_id for r in runs(root)}

    if launcher == "torchrun":
        command = [str(BIN / "torchrun"), "--standalone", "--nproc_per_node=2"]
    else:
        command = [
            str(BIN / "accelerate"),
            "launch",
            "--multi_gpu",
            "--num_processes",
            "2",
            "--num_machines",
            "1",
            "--mixed_precision",
            "no",
            "--dynamo_backend",
            "no",
            "--main_process_port",
            str(free_port()),
        ]
    ddp = launch(root, *command)

    new = [r for r in runs(root) if r.info.run_id not in before]
    assert [r.info.run_id for r in new] == [ddp["run_id"]], "one MLflow run per training, from rank 0"
    run = new[0]
    assert run.info.status == "FINISHED"
    assert run.data.tags["textops.world_size"] == "2"
    assert run.data.params["train.batch_size"] == "16"  # the global batch, as in the single-process run
    assert list((root / "artifacts/model").glob("hf/model.safetensors")), "one model, written by rank 0"
    for metric in ("accuracy", "macro_f1"):
        assert abs(ddp[metric] - single[metric]) <= TOLERANCE, (metric, ddp, single)
