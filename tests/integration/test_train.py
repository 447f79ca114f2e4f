"""Train stage: the tiny model trains, logs to a real MLflow SQLite store, is deterministic on the CPU,
resumes after SIGKILL, and its logged model loads offline and predicts label names."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from helpers import active_store, mlflow_client, textops

from textops.core.config import load_params

pytestmark = pytest.mark.slow

# One intra-op thread for the tiny models, here and in the `textops train` subprocesses: on a shared
# 2-core machine torch's default two threads spin against other jobs and run ~10x slower
# (BENCHMARKS.md, Training). Results do not depend on it: the determinism tests compare like with like.


def run_train(root: Path) -> dict:
    import torch

    from textops.modeling.train import train

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

    return train(root, load_params(root / "params.yaml"))


def client(root: Path):
    return mlflow_client(root)[0]


def test_train_logs_run_lineage_and_a_loadable_model(small):
    import mlflow.pyfunc
    from mlflow.exceptions import MlflowException

    result = run_train(small)
    assert result["val_accuracy"] > 0.7, result  # the sample is learnable: a broken loop stays near 0.5
    run_info = json.loads((small / "artifacts/model/run.json").read_text())
    assert set(run_info) == {"run_id", "experiment_id", "tracking_uri", "model_uri", "base_model"}
    assert run_info["model_uri"].startswith("models:/m-")
    assert (small / "artifacts/model/hf/config.json").exists()
    assert (small / "artifacts/model/training_curve.png").stat().st_size > 0
    assert json.loads((small / "metrics/train.json").read_text())["val_macro_f1"] == result["val_macro_f1"]
    curve = pd.read_csv(small / "metrics/val_curve.csv")
    assert len(curve) >= 2 and {"step", "epoch", "val_macro_f1"} <= set(curve.columns)

    c = client(small)
    run = c.get_run(run_info["run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.params["train.seed"] == "42" and run.data.params["model.base"] == "tiny"
    data_dvc = yaml.safe_load((small / "data.dvc").read_text())
    assert run.data.tags["textops.data.raw_md5"] == data_dvc["outs"][0]["md5"]
    for tag in (
        "textops.data.clean_md5",
        "textops.data.rev",
        "textops.git.dirty",
        "textops.params_md5",
        "textops.version.torch",
        "textops.device",
    ):
        assert run.data.tags[tag], tag
    history = c.get_metric_history(run.info.run_id, "val_macro_f1")
    assert len(history) == len(curve)

    with active_store(small):
        model = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    out = model.predict(pd.DataFrame({"text": ["an utterly wonderful film", "a dull, tedious mess"]}))
    assert list(out.columns) == ["label", "prob_negative", "prob_positive"]
    assert set(out["label"]) <= {"negative", "positive"}
    assert (out[["prob_negative", "prob_positive"]].sum(axis=1) - 1).abs().max() < 1e-5
    assert model.metadata.signature is not None
    # Logged as code: the loaded object comes from the pyfunc.py stored with the model, not a pickle.
    raw = model.unwrap_python_model()
    assert type(raw).__name__ == "TextClassifier" and type(raw).__module__.startswith("code_model")
    assert list(raw.predict(None, ["good", "bad"])["label"]) == list(
        model.predict(pd.DataFrame({"text": ["good", "bad"]}))["label"]
    )
    with pytest.raises(MlflowException) as err:
        raw.predict(None, pd.DataFrame({"body": ["x"]}))
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException):
        raw.predict(None, ["fine", 3])


def test_logged_requirements_are_explicit(small):
    import mlflow

    run_id = run_train(small)["run_id"]
    with active_store(small):
        path = mlflow.artifacts.download_artifacts(f"runs:/{run_id}/model/requirements.txt")
    reqs = Path(path).read_text()
    assert "torchvision" not in reqs and "transformers==" in reqs and "torch==" in reqs


def test_same_data_params_seed_give_same_metrics(small):
    first = run_train(small)
    import shutil

    shutil.rmtree(small / "artifacts/checkpoints")  # no resume: a second run from scratch
    second = run_train(small)
    assert first["run_id"] != second["run_id"]
    for key in ("val_accuracy", "val_macro_f1", "val_loss", "train_loss", "global_step"):
        assert first[key] == second[key], key


def test_sigkill_then_rerun_resumes_and_matches_uninterrupted(small):
    exe = Path(sys.executable).with_name("textops")
    ckpts = small / "artifacts/checkpoints"
    proc = subprocess.Popen([str(exe), "train"], cwd=small, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while not list(ckpts.glob("checkpoint-*/trainer_state.json")) and proc.poll() is None:
            assert time.monotonic() < deadline, "no checkpoint appeared"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "training finished before it could be killed"
    assert not (small / "metrics/train.json").exists()

    killed_run = json.loads((ckpts / "mlflow_run.json").read_text())["run_id"]
    assert client(small).get_run(killed_run).info.status == "RUNNING"  # nobody could end it
    resumed = textops(small, "train")
    assert "resumed from step" in resumed.stdout
    assert "marked KILLED" in resumed.stderr
    metrics = json.loads((small / "metrics/train.json").read_text())
    assert metrics["resumed_from_step"] > 0
    run_id = json.loads((small / "artifacts/model/run.json").read_text())["run_id"]
    c = client(small)
    assert c.get_run(killed_run).info.status == "KILLED"
    run = c.get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.tags["textops.resumed_from_run"] == killed_run
    resumed_curve = [m.step for m in c.get_metric_history(run_id, "val_macro_f1")]

    import shutil

    shutil.rmtree(ckpts)
    uninterrupted = run_train(small)
    for key in ("val_accuracy", "val_macro_f1", "val_loss", "global_step", "best_step"):
        assert metrics[key] == uninterrupted[key], key
    assert uninterrupted["resumed_from_step"] == 0
    # The resumed run's curve starts at the beginning (replayed from the checkpoint), like the uninterrupted one.
    assert resumed_curve == [m.step for m in c.get_metric_history(uninterrupted["run_id"], "val_macro_f1")]


def test_crashing_run_is_marked_failed(small):
    # A checkpoint that looks complete but holds garbage: training crashes inside the MLflow run.
    run_train(small)
    last = sorted((small / "artifacts/checkpoints").glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))[-1]
    (last / "model.safetensors").write_bytes(b"not a safetensors file")
    (small / "artifacts/checkpoints/mlflow_run.json").unlink()
    (small / "artifacts/checkpoints/finished.json").unlink()  # as if the training had not ended
    proc = textops(small, "train", check=False)
    assert proc.returncode != 0
    c = client(small)
    runs = c.search_runs([r.experiment_id for r in c.search_experiments()], order_by=["attributes.start_time DESC"])
    assert runs[0].info.status == "FAILED"
    assert runs[1].info.status == "FINISHED"


def test_a_finished_training_is_not_resumed(small):
    first = run_train(small)  # early stopping on: a finished run may stop before its last epoch
    again = run_train(small)
    assert again["resumed_from_step"] == 0 and again["global_step"] == first["global_step"]
    assert again["train_loss"] == first["train_loss"] > 0.0
    run = client(small).get_run(again["run_id"])
    assert "textops.resumed_from" not in run.data.tags


def test_missing_data_is_a_user_error(project):
    proc = textops(project, "train", check=False)
    assert proc.returncode != 0
    assert "textops preprocess" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA GPU (bf16/fp16 path)")
def test_cuda_mixed_precision(small):
    import torch

    from textops.modeling.train import precision

    p = precision()
    assert p == {"bf16": torch.cuda.is_bf16_supported(), "fp16": not torch.cuda.is_bf16_supported()}
    result = run_train(small)
    assert result["device"] == "cuda" and result["val_accuracy"] > 0.7
