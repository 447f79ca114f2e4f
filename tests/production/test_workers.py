"""Two "machines" on one Prefect server backed by PostgreSQL: two checkouts of the project, each with a process
worker on the `gpu` pool, sharing an MLflow server (PostgreSQL too) and the DVC remote, deployed with `prefect
deploy --all` from prefect.yaml and watched by the crash automation of deploy/prefect/, as docs/orchestration.md
sets them up. Two retrains at once train once; a worker killed mid-training leaves a Crashed run and the other
worker retrains on the same data version; the workers ride out a restart of the Prefect server; the Kubernetes
GPU pool's base job template is accepted by the server.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import FAST, FLOW, REPO, dvc, git, make_project, registry_problems, set_params, wait_for
from support import textops
from support.servers import (
    mlflow_server,
    prefect,
    prefect_api,
    prefect_client_env,
    prefect_server,
    worker,
)
from support.services import Service

pytestmark = [pytest.mark.production, pytest.mark.slow]

DONE = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")


@dataclass
class Cluster:
    origin: Path  # where the code and data versions are made (a developer's checkout)
    checkouts: dict[str, Path]  # the two machines' checkouts
    workers: dict[str, Service]
    server: Service  # Prefect
    env: dict  # a client's environment: PREFECT_API_URL, MLFLOW_TRACKING_URI
    deployment: str  # the retrain deployment's id

    @property
    def api(self) -> str:
        return self.server.url

    def trigger(self) -> str:
        return prefect_api(self.api, f"/deployments/{self.deployment}/create_flow_run", {})["id"]

    def run(self, run_id: str) -> dict:
        return prefect_api(self.api, f"/flow_runs/{run_id}", method="GET")

    def wait(self, run_id: str, timeout: float, states=DONE) -> dict:
        def reached():
            run = self.run(run_id)
            return run if run["state_type"] in states else None

        try:
            return wait_for(reached, timeout, f"flow run {run_id} to reach {states}", interval=2)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.logs()}") from None

    def logs(self) -> str:
        return "\n".join(f"--- worker {n}:\n{w.tail(3000)}" for n, w in self.workers.items())

    def pull(self) -> None:
        """Both machines move to the origin's revision (code, params and data pointers) and fetch its data."""
        for root in self.checkouts.values():
            # A retrain commits its data version in the machine's checkout (textops run --commit where git can),
            # so the checkout may have diverged: it takes the origin's revision as it is.
            git(root, "fetch", "-q", "origin")
            git(root, "reset", "-q", "--hard", "FETCH_HEAD")
            dvc(root, "pull", "-q", "data.dvc", check=True)

    def online(self) -> set[str]:
        workers = prefect_api(self.api, "/work_pools/gpu/workers/filter", {})
        return {w["name"] for w in workers if w["status"] == "ONLINE"}

    def all_workers_up(self) -> None:
        """Start the workers that are not running (a previous test killed or stopped one); wait until both poll."""
        for w in self.workers.values():
            if w.proc is None or w.proc.poll() is not None:
                w.start()
        wait_for(lambda: self.online() >= set(self.workers), 180, "both workers online", interval=2)


def origin_project(path: Path) -> Path:
    """A project with the flows and prefect.yaml committed and the sample ingested (pushed to the DVC remote)."""
    root = make_project(path)
    set_params(root, FAST, FLOW, {"data": {"landing_dir": "landing"}})
    shutil.copytree(REPO / "flows", root / "flows", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "prefect.yaml", root / "prefect.yaml")
    textops(root, "sample")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "flows and the first data version")
    return root


def checkout(origin: Path, path: Path) -> Path:
    """A machine's checkout: `git clone` and `dvc pull` (the DVC remote is in the committed .dvc/config)."""
    git(origin.parent, "clone", "-q", str(origin), str(path))
    git(path, "config", "user.email", "worker@textops.invalid")
    git(path, "config", "user.name", "textops worker")
    dvc(path, "pull", "-q", "data.dvc", check=True)
    return path


@pytest.fixture(scope="module")
def cluster(pg, tmp_path_factory):
    work = tmp_path_factory.mktemp("cluster")
    with (
        pg.database("mlflow_workers") as mlflow_db,
        pg.database("prefect_workers") as prefect_db,
        mlflow_server(mlflow_db.url("postgresql+psycopg2"), work / "artifacts", work) as tracking,
        prefect_server(prefect_db.url("postgresql+asyncpg"), work) as server,
    ):
        env = {**prefect_client_env(server, work / "client"), "MLFLOW_TRACKING_URI": tracking.url}
        origin = origin_project(work / "origin")
        checkouts = {name: checkout(origin, work / f"machine-{name}") for name in ("a", "b")}
        prefect(env, origin, "work-pool", "create", "gpu", "--type", "process")
        out = prefect(env, origin, "deploy", "--all")  # TEXTOPS_ROOT unset: each worker resolves its own
        assert "retrain/retrain" in out, out
        prefect(
            env, origin, "automation", "create", "--from-file", str(REPO / "deploy/prefect/crash-zombie-flow-runs.yaml")
        )
        deployment = prefect_api(server.url, "/deployments/name/retrain/retrain", method="GET")["id"]
        workers = {name: worker(env, work / f"worker-{name}", root, name) for name, root in checkouts.items()}
        state = Cluster(origin, checkouts, workers, server, env, deployment)
        try:
            yield state
        finally:
            for w in workers.values():
                w.stop(signal.SIGINT)  # a Prefect worker ignores SIGTERM


def registry(cluster: Cluster):
    """(a client of the shared MLflow server, the registered model's name)."""
    from mlflow import MlflowClient

    from textops.core.config import load_params

    url = cluster.env["MLFLOW_TRACKING_URI"]
    return MlflowClient(url, url), load_params(cluster.origin / "params.yaml").mlflow.registered_model


def version_numbers(cluster: Cluster) -> set[str]:
    client, name = registry(cluster)
    return {str(v.version) for v in client.search_model_versions(f"name='{name}'")}


def test_two_retrains_at_once_train_once(cluster):
    cluster.all_workers_up()
    before = version_numbers(cluster)
    runs = [cluster.trigger(), cluster.trigger()]
    done = [cluster.wait(run, 900) for run in runs]
    assert [r["state_type"] for r in done] == ["COMPLETED", "COMPLETED"], cluster.logs()
    skipped = [r for r in done if (r["state"]["message"] or "").startswith("nothing to retrain")]
    assert len(skipped) == 1, [r["state"]["message"] for r in done]
    trained = next(r for r in done if r is not skipped[0])
    # One after the other: the second started once the first had ended, whichever worker took it.
    assert skipped[0]["start_time"] >= trained["end_time"]
    assert len(version_numbers(cluster) - before) == 1
    assert registry_problems(*registry(cluster)) == []


def training_run(root: Path) -> str | None:
    """The MLflow run of the training whose checkpoints ROOT holds (written when a training starts)."""
    marker = root / "artifacts/checkpoints/mlflow_run.json"
    try:
        return json.loads(marker.read_text())["run_id"]
    except (OSError, ValueError, KeyError):
        return None


def checkpoint_of_a_new_training(root: Path, old_run: str | None) -> str | None:
    """The new training's MLflow run once it has written its first checkpoint (the old checkpoints are gone by
    then: they belong to other params)."""
    run = training_run(root)
    written = any((p / "trainer_state.json").exists() for p in (root / "artifacts/checkpoints").glob("checkpoint-*"))
    return run if run and run != old_run and written else None


def test_a_worker_killed_mid_training_the_other_retrains_the_same_data(cluster):
    cluster.all_workers_up()
    # Something to retrain, long enough to kill in the middle: new params, pulled by both machines.
    set_params(cluster.origin, {"train": {"epochs": 40, "save_steps": 20}})
    cluster.pull()
    before = version_numbers(cluster)
    a, b = cluster.workers["a"], cluster.workers["b"]
    b.stop(signal.SIGINT)  # only machine a polls, so it takes the run
    old_run = training_run(cluster.checkouts["a"])
    first = cluster.trigger()
    killed = wait_for(
        lambda: checkpoint_of_a_new_training(cluster.checkouts["a"], old_run), 600, "machine a's first checkpoint", 0.5
    )
    b.start()
    a.kill()  # the machine dies: the worker and its flow run, SIGKILL
    second = cluster.trigger()
    crashed = cluster.wait(first, 300)
    assert crashed["state_type"] == "CRASHED", crashed["state"]
    done = cluster.wait(second, 900)
    assert done["state_type"] == "COMPLETED", cluster.logs()

    client, name = registry(cluster)
    assert registry_problems(client, name) == []
    versions = {str(v.version): v for v in client.search_model_versions(f"name='{name}'")}
    new = set(versions) - before
    assert len(new) == 1, (sorted(before), sorted(versions))
    killed_run, new_run = client.get_run(killed), client.get_run(versions[new.pop()].run_id)
    assert killed_run.info.status == "KILLED"  # reaped by machine b's next stage (same host here)
    assert killed not in {v.run_id for v in versions.values()}
    for tag in ("textops.data.raw_md5", "textops.data.clean_md5", "textops.params_md5"):
        assert new_run.data.tags[tag] == killed_run.data.tags[tag], tag


def test_workers_reconnect_after_the_prefect_server_restarts(cluster):
    cluster.all_workers_up()
    restarted = time.time()
    cluster.server.restart(down_s=5)
    assert all(w.proc.poll() is None for w in cluster.workers.values()), cluster.logs()
    run = cluster.trigger()
    done = cluster.wait(run, 600)
    assert done["state_type"] == "COMPLETED", cluster.logs()

    def both_beat_since_restart() -> bool:
        workers = prefect_api(cluster.api, "/work_pools/gpu/workers/filter", {})
        beats = {w["name"]: w["last_heartbeat_time"] for w in workers}
        from datetime import datetime

        return all(datetime.fromisoformat(beats[n].replace("Z", "+00:00")).timestamp() > restarted for n in "ab")

    wait_for(both_beat_since_restart, 120, "a heartbeat of both workers after the restart", interval=3)


def test_kubernetes_gpu_pool_template_is_accepted_by_the_server(cluster):
    template = REPO / "deploy/kubernetes/gpu-job-template.json"
    prefect(
        cluster.env,
        cluster.origin,
        "work-pool",
        "create",
        "gpu-k8s",
        "--type",
        "kubernetes",
        "--base-job-template",
        str(template),
    )
    pool = prefect_api(cluster.api, "/work_pools/gpu-k8s", method="GET")
    assert pool["type"] == "kubernetes"
    assert pool["base_job_template"] == json.loads(template.read_text())

    # What the Kubernetes worker would send for a flow run with the defaults and an image: a GPU on a GPU node.
    # Rendered as the worker does, in a process whose Prefect client talks to the server (never ~/.prefect).
    render = (
        "import asyncio, json, sys\n"
        "from prefect_kubernetes.worker import KubernetesWorkerJobConfiguration as C\n"
        "c = asyncio.run(C.from_template_and_values(json.loads(sys.argv[1]), {'image': 'registry.example/t:1'}))\n"
        "print(json.dumps({'manifest': c.job_manifest, 'env': c.env}))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", render, json.dumps(pool["base_job_template"])],
        env=cluster.env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    job = json.loads(proc.stdout.strip().splitlines()[-1])
    pod = job["manifest"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == "registry.example/t:1"
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert container["resources"]["requests"]["nvidia.com/gpu"] == 1
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert pod["tolerations"][0]["key"] == "nvidia.com/gpu"
    assert {"name": "dshm", "mountPath": "/dev/shm"} in container["volumeMounts"]
    assert job["env"]["PREFECT_FLOWS_HEARTBEAT_FREQUENCY"] == "30"
