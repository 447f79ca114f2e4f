"""textops against an MLflow tracking server on PostgreSQL, as the runbook starts it: `mlflow server
--backend-store-uri postgresql+psycopg2://... --artifacts-destination DIR`, textops pointed at it by
MLFLOW_TRACKING_URI=http://127.0.0.1:PORT. The whole pipeline, the registry commands, serving and batch
prediction go through the server (artifacts proxied: no client sees the artifact directory), and a server that
restarts or dies in the middle of a run never leaves the registry half written.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers import (
    FAST,
    FLOW,
    TESTS,
    git,
    killed,
    make_project,
    mlflow_client,
    post_raw,
    registry_problems,
    serving,
    set_params,
    textops,
    textops_python,
    wait_for,
)
from support.servers import mlflow_server

pytestmark = [pytest.mark.production, pytest.mark.slow]


@pytest.fixture(scope="module")
def tracking(pg, tmp_path_factory):
    """The MLflow server on its own PostgreSQL database (dropped afterwards); its artifacts directory."""
    work = tmp_path_factory.mktemp("mlflow-server")
    with pg.database("mlflow_tests") as db:
        with mlflow_server(db.url("postgresql+psycopg2"), work / "artifacts", work) as server:
            yield server


@pytest.fixture
def on_server(tracking, monkeypatch):
    """The test's textops commands talk to the server (as `export MLFLOW_TRACKING_URI=...` does)."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking.url)
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    return tracking


def fresh_model_name(root: Path, name: str) -> None:
    """Each test registers its own model and experiment on the shared server."""
    set_params(root, {"mlflow": {"registered_model": name, "experiment": name}})


def test_pipeline_registry_serve_and_predict_through_the_server(tmp_path, on_server):
    root = make_project(tmp_path / "proj")
    set_params(root, FAST, FLOW)
    fresh_model_name(root, "pipeline")
    out = textops(root, "run").stdout
    assert "now the champion" in out, out
    assert f"\n  {on_server.url}\n" in out and "mlflow ui" not in out, out  # its UI, not a local `mlflow ui`
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "first data version")

    # A second data version, retrained: the registry decides against the champion, through the server.
    set_params(root, {"sample": {"seed": 99, "rows": 300}}, commit=False)
    textops(root, "sample", "--no-ingest", "--output", str(tmp_path / "more.csv"))
    set_params(root, FAST, FLOW, commit=False)  # as committed
    textops(root, "ingest", str(tmp_path / "more.csv"), "--commit")
    textops(root, "run")
    listing = textops(root, "model", "list").stdout
    assert " 2 " in listing and " 1 " in listing, listing
    shown = json.loads(textops(root, "model", "show", "2").stdout)
    assert shown["decision"]["decision"] in ("promoted", "rejected") and shown["data"]["raw_md5"]
    client, name = mlflow_client(root)
    champion = str(client.get_model_version_by_alias(name, "champion").version)
    other = "1" if champion == "2" else "2"
    assert f"v{other} is now the champion" in textops(root, "model", "promote", other, "--reason", "test").stdout
    assert f"to v{champion}" in textops(root, "model", "rollback").stdout
    versions = textops(root, "data", "versions").stdout
    assert "1" in versions and "2" in versions, versions
    # Each version's data comes back from the lineage the server holds (`data checkout --model N`).
    for version in ("1", "2"):
        textops(root, "data", "checkout", "--model", version)
        pointer = json.loads(client.get_model_version(name, version).tags["textops.data.pointer"])
        assert pointer["md5"] == yaml.safe_load((root / "data.dvc").read_text())["outs"][0]["md5"], version

    # Artifacts went through the server's proxy: nothing local, all under its --artifacts-destination.
    run = client.get_run(client.get_model_version(name, "1").run_id)
    assert run.info.artifact_uri.startswith("mlflow-artifacts:"), run.info.artifact_uri
    assert not (root / "mlruns").exists() and not (root / "mlartifacts").exists()
    artifacts = Path(on_server.argv[on_server.argv.index("--artifacts-destination") + 1])
    assert list(artifacts.rglob("model.safetensors")), "no model weights under --artifacts-destination"
    assert registry_problems(client, name) == []

    # Batch prediction and the REST server load the champion from the server.
    (tmp_path / "in.csv").write_text("text\nthe movie was wonderful\nthe battery was awful\n")
    textops(root, "predict", str(tmp_path / "in.csv"), "-o", str(tmp_path / "out.csv"))
    assert len((tmp_path / "out.csv").read_text().splitlines()) == 3
    with serving(root) as served:
        status, body = post_raw(
            served.url, json.dumps({"inputs": ["a wonderful film"]}).encode(), {"Content-Type": "application/json"}
        )
    assert status == 200 and len(json.loads(body)["predictions"]) == 1, body


def first_metric_logged(client, experiment: str):
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return None
    runs = client.search_runs([exp.experiment_id], filter_string="attributes.status = 'RUNNING'")
    return next((r for r in runs if r.data.metrics), None)


def test_server_restart_mid_training_then_gone_during_registration(tmp_path, on_server):
    """A restart while training: the client rides it out and the run ends FINISHED. A server that dies as the
    version is being registered: one clear paragraph, exit 1, and no version; once it is back, register works."""
    root = make_project(tmp_path / "proj")
    set_params(root, FAST, {"train": {"epochs": 8}})  # ~20 s of training on 1,000 rows
    fresh_model_name(root, "restart")
    textops(root, "sample")
    textops(root, "preprocess")
    textops(root, "validate")
    client, name = mlflow_client(root)

    log = open(tmp_path / "train.log", "w")  # noqa: SIM115
    train = subprocess.Popen(
        [str(Path(sys.executable).with_name("textops")), "train"], cwd=root, stdout=log, stderr=subprocess.STDOUT
    )
    run = wait_for(lambda: first_metric_logged(client, "restart"), 300, "the training's first metrics", 0.5)
    on_server.restart(down_s=2)
    assert train.wait(timeout=600) == 0, (tmp_path / "train.log").read_text()[-4000:]
    log.close()
    finished = client.get_run(run.info.run_id)
    assert finished.info.status == "FINISHED"
    assert {"best_val_macro_f1", "train_loss"} <= set(finished.data.metrics)
    assert json.loads((root / "artifacts/model/run.json").read_text())["run_id"] == run.info.run_id
    textops(root, "evaluate")

    # The server dies the moment the version is about to be created; MLflow retries once, quickly.
    hook = (
        "import mlflow\n"
        f"sys.path.insert(0, {str(TESTS)!r})\n"  # tests/: the helpers are no part of the wheel
        "from support.services import kill_tree\n"
        "_register = mlflow.register_model\n"
        "def register_model(*args, **kwargs):\n"
        f"    kill_tree({on_server.proc.pid})\n"
        "    return _register(*args, **kwargs)\n"
        "mlflow.register_model = register_model\n"
        "os.environ.update(MLFLOW_HTTP_REQUEST_MAX_RETRIES='1', MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR='0')\n"
    )
    proc = textops_python(root, hook, "register")
    assert not killed(proc, timeout=300)
    output = max(tmp_path.glob("proc-*.log"), key=lambda p: p.stat().st_mtime).read_text()
    assert proc.returncode == 1, output
    assert "the MLflow tracking server stopped answering during `textops register`" in output, output
    assert "Traceback" not in output, output

    on_server.restart()
    assert client.search_model_versions(f"name='{name}'") == []
    assert "PROMOTED, now the champion" in textops(root, "register").stdout
    assert registry_problems(client, name) == []
