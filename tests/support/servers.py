"""The production shape on one machine, for the production tests and the benchmarks: PostgreSQL
(`support.postgres`, one database per server), an MLflow tracking server on it (`mlflow_server`), a Prefect
server on it (`prefect_server`) and process workers (`Service` running `prefect worker start`). Everything listens
on 127.0.0.1 on a free port and lives in temporary directories (never the user's home); each server is a process
the caller can stop, kill (SIGKILL, its whole process tree: a machine that dies) or restart on the same port, as an
operator would.

PostgreSQL's `initdb` and `postgres` refuse to run as root: as root they run as an unprivileged user
(TEXTOPS_PG_USER, default `nobody`), with the data directory handed over to it.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from support import free_port, wait_for
from support.services import Service

BIN = Path(sys.executable).parent  # the virtualenv's console scripts (prefect, mlflow, textops)


# --------------------------------------------------------------------------------------------------
# MLflow and Prefect servers


def server_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a server, worker or client process: ours, with HOME (so every cache and config a library
    writes there), PREFECT_HOME and matplotlib's directory under HOME, never the user's."""
    from textops.core.env import child_env

    home.mkdir(parents=True, exist_ok=True)
    env = child_env(HOME=str(home), PREFECT_HOME=str(home / "prefect"), MPLCONFIGDIR=str(home / "mpl"), **extra)
    env.pop("PREFECT_API_URL", None)
    env.pop("MLFLOW_TRACKING_URI", None)
    env.update(extra)
    return env


@contextmanager
def mlflow_server(backend_uri: str, artifacts: Path, workdir: Path, workers: int = 2) -> Iterator[Service]:
    """`mlflow server` on BACKEND_URI, proxying artifacts to ARTIFACTS (clients never see that directory);
    its URL is `service.url`."""
    port = free_port()
    argv = [
        str(BIN / "mlflow"),
        "server",
        "--backend-store-uri",
        backend_uri,
        "--artifacts-destination",
        str(artifacts),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    service = Service(
        "the MLflow server",
        argv,
        server_env(workdir / "mlflow-home"),
        workdir / "mlflow-server.log",
        health=f"http://127.0.0.1:{port}/health",
        cwd=workdir,
        url=f"http://127.0.0.1:{port}",
    )
    try:
        yield service.start()
    finally:
        service.stop()


@contextmanager
def prefect_server(database_url: str, workdir: Path, **settings: str) -> Iterator[Service]:
    """`prefect server start` on DATABASE_URL (`postgresql+asyncpg://...`) with leases on disk, so a restart
    keeps the concurrency limits' holders; `service.url` is its API URL (see `prefect_client_env`)."""
    port = free_port()
    home = workdir / "prefect-server"
    env = server_env(
        home,
        PREFECT_API_DATABASE_CONNECTION_URL=database_url,
        PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE="prefect.server.concurrency.lease_storage.filesystem",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS="5",
        PREFECT_SERVER_SERVICES_REPOSSESSOR_LOOP_SECONDS="5",
        **settings,
    )
    argv = [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    service = Service(
        "the Prefect server",
        argv,
        env,
        workdir / "prefect-server.log",
        health=f"http://127.0.0.1:{port}/api/health",
        cwd=workdir,
        url=f"http://127.0.0.1:{port}/api",
    )
    try:
        yield service.start()
    finally:
        service.stop()


def prefect_client_env(server: Service, home: Path) -> dict[str, str]:
    """The environment of a process that talks to SERVER (a Prefect server), with its Prefect home in HOME."""
    return server_env(home, PREFECT_API_URL=server.url)


def prefect(env: dict, cwd: Path, *args: str, check: bool = True, timeout: float = 300) -> str:
    """The `prefect` CLI; its output, or AssertionError with it when it fails and CHECK."""
    proc = subprocess.run(
        [str(BIN / "prefect"), "--no-prompt", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"prefect {' '.join(args)} exited {proc.returncode}:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}"
        )
    return proc.stdout + proc.stderr


def prefect_api(api: str, path: str, body: dict | None = None, method: str = "POST"):
    """One call of the Prefect REST API; the decoded JSON answer (None when empty)."""
    resp = httpx.request(method, f"{api}{path}", json=body or {} if method != "GET" else None, timeout=30)
    resp.raise_for_status()
    return resp.json() if resp.content else None


def worker(api_env: dict, home: Path, root: Path, name: str, pool: str = "gpu", **extra: str) -> Service:
    """A process worker NAME on POOL for the checkout ROOT (TEXTOPS_ROOT), not started yet. Flow runs it starts
    send a heartbeat every 30 s (the crash detection of docs/orchestration.md)."""
    env = {
        **api_env,
        "HOME": str(home),
        "PREFECT_HOME": str(home / "prefect"),
        "TEXTOPS_ROOT": str(root),
        "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "30",
        **extra,
    }
    # --type: a worker that starts while the API is away (a restart) does not need it to learn the pool's type
    argv = [str(BIN / "prefect"), "worker", "start", "--pool", pool, "--type", "process", "--name", name]
    home.mkdir(parents=True, exist_ok=True)
    return Service(f"worker {name}", argv, env, home / f"worker-{name}.log", cwd=home)


# --------------------------------------------------------------------------------------------------
# deployments on a Prefect server (the monitoring loop's test and benchmark)

FINAL_STATES = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")


def deployed_project(root: Path, cool_down_s: float | None = None) -> None:
    """Give the project ROOT what a clone has: flows/ and prefect.yaml (committed), the retrain trigger's cool-down
    (`within`) set to COOL_DOWN_S when given, so that a test or a benchmark sees one end."""
    import yaml

    from support import REPO, git

    shutil.copytree(REPO / "flows", root / "flows", ignore=shutil.ignore_patterns("__pycache__"))
    spec = yaml.safe_load((REPO / "prefect.yaml").read_text())
    if cool_down_s is not None:
        retrain = next(d for d in spec["deployments"] if d["name"] == "retrain")
        for trigger in retrain["triggers"]:
            trigger["within"] = cool_down_s
    (root / "prefect.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    git(root, "add", "flows", "prefect.yaml")
    git(root, "commit", "-q", "-m", "flows and deployments")


def deployment_runs(api: str, deployment: str) -> list[dict]:
    """The flow runs of DEPLOYMENT (its name) that someone or something started (by hand, a trigger), oldest first:
    not the runs its schedules create ahead of time."""
    found = prefect_api(api, "/deployments/filter", {"deployments": {"name": {"any_": [deployment]}}})
    assert found, f"no deployment named {deployment}"
    runs = prefect_api(
        api,
        "/flow_runs/filter",
        {"flow_runs": {"deployment_id": {"any_": [found[0]["id"]]}}, "sort": "EXPECTED_START_TIME_ASC", "limit": 100},
    )
    return [r for r in runs if not r["auto_scheduled"]]


def run_deployment(api: str, env: dict, root: Path, deployment: str, timeout: float = 600) -> dict:
    """`prefect deployment run FLOW/DEPLOYMENT` (flow and deployment share the name here), then wait until that run
    is in a final state; the run."""
    before = {r["id"] for r in deployment_runs(api, deployment)}
    prefect(env, root, "deployment", "run", f"{deployment}/{deployment}")

    def done():
        new = [r for r in deployment_runs(api, deployment) if r["id"] not in before]
        return new[0] if new and new[0]["state_type"] in FINAL_STATES else None

    return wait_for(done, timeout, f"the {deployment} run", interval=1)


def events_named(api: str, name: str) -> list[dict]:
    """The events called NAME the server has, newest first."""
    return prefect_api(api, "/events/filter", {"filter": {"event": {"name": [name]}}, "limit": 50})["events"]


@contextmanager
def deployed_on_a_server(root: Path, work: Path) -> Iterator[tuple[str, dict, Service]]:
    """A Prefect server on SQLite in WORK, the `gpu` process pool, ROOT's deployments (`prefect deploy --all`) and
    one worker for ROOT: (API URL, a client's environment, the worker). Everything stops afterwards."""
    with prefect_server(f"sqlite+aiosqlite:///{work / 'prefect.db'}", work) as server:
        api, env = server.url, prefect_client_env(server, work / "client")
        prefect(env, root, "work-pool", "create", "gpu", "--type", "process")
        # TEXTOPS_ROOT unset at deploy time: the pull step's directory is resolved on the worker, from its env.
        prefect({k: v for k, v in env.items() if k != "TEXTOPS_ROOT"}, root, "deploy", "--all")
        runner = worker(env, work / "worker", root, "gpu-1", OMP_NUM_THREADS="1").start()
        try:
            yield api, env, runner
        finally:
            runner.stop(signal.SIGINT)  # a Prefect worker ignores SIGTERM
