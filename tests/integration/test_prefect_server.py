"""The deployments as an operator runs them: `prefect server start` on 127.0.0.1 (temporary PREFECT_HOME, a free
port), the `gpu` process work pool, `prefect deploy --all` from prefect.yaml, a worker, the `retrain` deployment
triggered by hand and then by a schedule one minute ahead. Worker and server are stopped afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from helpers import FAST, FLOW, REPO, free_port, git, registry, set_params, textops, wait_for

BIN = Path(sys.executable).parent


def stop(proc: subprocess.Popen, sig: int, grace: float = 30) -> None:
    """Send SIG, then again (a Prefect worker escalates on the second SIGINT), then kill."""
    for _ in range(2):
        if proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            pass
    proc.kill()
    proc.wait(timeout=10)


@pytest.fixture
def prefect_server(tmp_path):
    """A real Prefect server on a free port with its own home; yields (api_url, env for clients)."""
    port = free_port()
    env = dict(os.environ)
    env.update(
        PREFECT_HOME=str(tmp_path / "prefect-home"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        # The scheduler creates runs of scheduled deployments; the default loop is 60 s.
        PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS="5",
    )
    env.pop("PREFECT_API_URL", None)
    log = open(tmp_path / "server.log", "w")
    server = subprocess.Popen(
        [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    api = f"http://127.0.0.1:{port}/api"

    def healthy() -> bool:
        assert server.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
        try:
            with urllib.request.urlopen(f"{api}/health", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    try:
        wait_for(healthy, 180, "the Prefect server")
        yield api, {**env, "PREFECT_API_URL": api}
    finally:
        stop(server, signal.SIGTERM)
        log.close()


def prefect(env: dict, cwd: Path, *args: str) -> str:
    proc = subprocess.run(
        [str(BIN / "prefect"), "--no-prompt", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, f"prefect {' '.join(args)}: {proc.stdout[-3000:]}{proc.stderr[-3000:]}"
    return proc.stdout


def api(url: str, path: str, body: dict | None = None):
    req = urllib.request.Request(
        f"{url}{path}",
        data=json.dumps(body or {}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def flow_runs(url: str, deployment_id: str) -> list[dict]:
    """The deployment's flow runs; [] when the server did not answer this time (a SQLite-backed server under load
    can take longer than a request's 30 s: the wait around this asks again, under its own ceiling)."""
    try:
        return api(url, "/flow_runs/filter", {"flow_runs": {"deployment_id": {"any_": [deployment_id]}}, "limit": 50})
    except (TimeoutError, urllib.error.URLError):
        return []


def test_retrain_deployment_on_a_worker_manual_then_scheduled(project, prefect_server):
    url, env = prefect_server
    root = project
    set_params(root, FAST, FLOW, {"data": {"landing_dir": "landing"}})
    shutil.copytree(REPO / "flows", root / "flows", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "prefect.yaml", root / "prefect.yaml")
    git(root, "add", "flows", "prefect.yaml")
    git(root, "commit", "-q", "-m", "flows")
    (root / "landing").mkdir()
    textops(root, "sample", "--no-ingest", "--output", str(root / "landing" / "reviews.csv"))

    prefect(env, root, "work-pool", "create", "gpu", "--type", "process")
    # TEXTOPS_ROOT unset at deploy time: the pull step's directory is resolved on the worker, from its env.
    deploy_env = {k: v for k, v in env.items() if k != "TEXTOPS_ROOT"}
    out = prefect(deploy_env, root, "deploy", "--all")
    assert "retrain/retrain" in out and "data-rollback/rollback" in out
    deployment = api(url, "/deployments/filter", {"deployments": {"name": {"any_": ["retrain"]}}})[0]
    assert deployment["schedules"][0]["schedule"]["cron"] == "0 2 * * *"  # nightly by default
    assert deployment["work_pool_name"] == "gpu"

    worker_log = open(root.parent / "worker.log", "w")
    worker = subprocess.Popen(
        [str(BIN / "prefect"), "worker", "start", "--pool", "gpu"],
        cwd=root.parent,
        env={**env, "TEXTOPS_ROOT": str(root)},
        stdout=worker_log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        # 1. Triggered by hand: ingests the landing file, trains, registers a new version.
        prefect(env, root, "deployment", "run", "retrain/retrain")

        def finished(n: int):
            runs = flow_runs(url, deployment["id"])
            done = [r for r in runs if r["state_type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")]
            return done if len(done) >= n else None

        first = wait_for(lambda: finished(1), 900, "the manual retrain run", interval=3)[0]
        assert first["state_type"] == "COMPLETED", (root.parent / "worker.log").read_text()[-5000:]
        assert registry(root)["champion"] == "1"
        assert (root / "landing" / "ingested" / "reviews.csv").exists()
        assert "data: ingest reviews.csv" in git(root, "log", "--format=%s")

        # 2. A schedule one minute ahead: the worker runs it with nobody triggering it; nothing changed since.
        now = datetime.now(timezone.utc)
        at = (now + timedelta(minutes=1)).replace(second=0, microsecond=0)
        if (at - now).total_seconds() < 20:  # leave the scheduler (5 s loop) time to create the run
            at += timedelta(minutes=1)
        prefect(
            env,
            root,
            "deployment",
            "schedule",
            "create",
            "retrain/retrain",
            "--cron",
            f"{at.minute} {at.hour} * * *",
            "--timezone",
            "UTC",
        )
        runs = wait_for(lambda: finished(2), 240, "the scheduled retrain run", interval=3)
        scheduled = [r for r in runs if r["id"] != first["id"]][0]
        assert scheduled["state_type"] == "COMPLETED", (root.parent / "worker.log").read_text()[-5000:]
        assert scheduled["auto_scheduled"] is True
        assert (scheduled["state"]["message"] or "").startswith("nothing to retrain")
        assert len(registry(root)["metrics"]) == 1
    finally:
        # A Prefect worker ignores SIGTERM; SIGINT stops it.
        stop(worker, signal.SIGINT)
        worker_log.close()
    assert worker.returncode is not None
