"""The production shape on one machine, for the production tests and the benchmarks: PostgreSQL (`postgres`, one
database per server), an MLflow tracking server on it (`mlflow_server`), a Prefect server on it
(`prefect_server`) and process workers (`Service` running `prefect worker start`). Everything listens on
127.0.0.1 on a free port and lives in temporary directories (never the user's home); each server is a process
the caller can stop, kill (SIGKILL, its whole process tree: a machine that dies) or restart on the same port,
as an operator would.

PostgreSQL's `initdb` and `postgres` refuse to run as root: as root they run as an unprivileged user
(TEXTOPS_PG_USER, default `nobody`), with the data directory handed over to it.
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from textops.testing import free_port, wait_for

BIN = Path(sys.executable).parent  # the virtualenv's console scripts (prefect, mlflow, textops)
PG_USER_VARIABLE = "TEXTOPS_PG_USER"


def pg_bindir() -> Path | None:
    """The newest PostgreSQL server binaries (Debian's /usr/lib/postgresql/N/bin), or where `initdb` is on PATH."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def descendants(pid: int) -> list[int]:
    """Every process below PID (children first found, then theirs), from /proc."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        children = parents.get(todo.pop(), [])
        out.extend(children)
        todo.extend(children)
    return out


def kill_tree(pid: int) -> None:
    """SIGKILL PID and everything below it at once, as when the machine dies."""
    for target in [pid, *descendants(pid)]:
        try:
            os.kill(target, signal.SIGKILL)
        except ProcessLookupError:
            pass


# --------------------------------------------------------------------------------------------------
# processes


@dataclass
class Service:
    """A server or worker process: started in its own session with its output in LOG, healthy when HEALTH (a
    URL) answers 200; stoppable, killable and restartable with the same command, environment and port."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    health: str | None = None
    cwd: Path | None = None
    ready_s: float = 240
    url: str = ""  # what clients use: the MLflow server's URL, the Prefect server's API URL
    proc: subprocess.Popen | None = field(default=None, repr=False)

    def start(self) -> Service:
        with open(self.log, "ab") as out:
            out.write(f"\n--- start {' '.join(self.argv)}\n".encode())
            out.flush()
            self.proc = subprocess.Popen(self.argv, env=self.env, cwd=self.cwd, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        if self.health:
            wait_for(self.healthy, self.ready_s, f"{self.name} at {self.health}", interval=0.5)
        return self

    def healthy(self) -> bool:
        if self.proc is None or self.proc.poll() is not None:
            raise AssertionError(f"{self.name} exited ({self.proc and self.proc.returncode}):\n{self.tail()}")
        try:
            with urllib.request.urlopen(self.health, timeout=5) as resp:
                return resp.status == 200
        except (OSError, urllib.error.URLError):
            return False

    def tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, grace: float = 30) -> None:
        """SIG to the process group, twice (a Prefect worker escalates on the second SIGINT), then SIGKILL."""
        if self.proc is None:
            return
        for _ in range(2):
            if self.proc.poll() is not None:
                break
            try:
                os.killpg(self.proc.pid, sig)
                self.proc.wait(timeout=grace)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        if self.proc.poll() is None:
            self.kill()
        try:  # whatever it left in its group (uvicorn workers)
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def kill(self) -> None:
        """SIGKILL the process and all its descendants, wherever their process group."""
        if self.proc is not None and self.proc.poll() is None:
            kill_tree(self.proc.pid)
            self.proc.wait(timeout=60)

    def restart(self, down_s: float = 0) -> Service:
        self.stop()
        time.sleep(down_s)
        return self.start()


# --------------------------------------------------------------------------------------------------
# PostgreSQL


@dataclass(frozen=True)
class Database:
    name: str
    user: str
    password: str
    host: str
    port: int

    def url(self, driver: str = "postgresql") -> str:
        """e.g. `postgresql+psycopg2://...` for MLflow, `postgresql+asyncpg://...` for Prefect."""
        return f"{driver}://{self.user}:{self.password}@{self.host}:{self.port}/{self.name}"


@dataclass
class Postgres:
    """A running PostgreSQL cluster: superuser `postgres` with PASSWORD, on HOST:PORT."""

    host: str
    port: int
    password: str
    service: Service

    def admin(self):
        import psycopg2

        con = psycopg2.connect(host=self.host, port=self.port, user="postgres", password=self.password,
                               dbname="postgres", connect_timeout=5)
        con.autocommit = True
        return con

    @contextmanager
    def database(self, name: str) -> Iterator[Database]:
        """A new role NAME owning a new database NAME (password auth); both dropped afterwards, connections and
        all."""
        password = secrets.token_hex(12)
        con = self.admin()
        try:
            with con.cursor() as cur:
                cur.execute(f'CREATE ROLE "{name}" LOGIN PASSWORD %s', (password,))
                cur.execute(f'CREATE DATABASE "{name}" OWNER "{name}"')
            yield Database(name, name, password, self.host, self.port)
        finally:
            with con.cursor() as cur:
                cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                cur.execute(f'DROP ROLE IF EXISTS "{name}"')
            con.close()

    def databases(self) -> set[str]:
        con = self.admin()
        try:
            with con.cursor() as cur:
                cur.execute("SELECT datname FROM pg_database WHERE NOT datistemplate")
                return {row[0] for row in cur.fetchall()}
        finally:
            con.close()


def _as_postgres_user(directory: Path) -> dict:
    """Popen arguments that run a PostgreSQL binary as an unprivileged user when we are root (it refuses root)."""
    if os.geteuid() != 0:
        return {}
    entry = pwd.getpwnam(os.environ.get(PG_USER_VARIABLE, "nobody"))
    for path in [directory, *directory.rglob("*")]:
        os.chown(path, entry.pw_uid, entry.pw_gid)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


@contextmanager
def postgres(log: Path | None = None, bindir: Path | None = None) -> Iterator[Postgres]:
    """A throwaway PostgreSQL cluster (initdb in a new temporary directory, password auth over TCP on 127.0.0.1,
    a free port), removed afterwards; its server log goes to LOG (kept) or into that directory. fsync is off: a
    test cluster trades durability for speed."""
    bindir = bindir or pg_bindir()
    if bindir is None:
        raise FileNotFoundError("PostgreSQL's initdb was not found (apt-get install postgresql)")
    base = Path(tempfile.mkdtemp(prefix="textops-pg-"))  # under /tmp: reachable by the unprivileged user
    data, pwfile = base / "data", base / "pw"
    password = secrets.token_hex(12)
    pwfile.write_text(password + "\n")
    port = free_port()
    try:
        data.mkdir()
        user = _as_postgres_user(base)
        env = {"PATH": os.environ.get("PATH", ""), "LANG": "C.UTF-8", "HOME": str(base)}
        subprocess.run(
            [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", f"--pwfile={pwfile}", "-E", "UTF8",
             "--no-locale", "--auth-host=scram-sha-256", "--auth-local=scram-sha-256"],
            env=env, check=True, capture_output=True, **user,
        )  # fmt: skip
        argv = [str(bindir / "postgres"), "-D", str(data), "-h", "127.0.0.1", "-p", str(port),
                "-k", str(base), "-c", "fsync=off", "-c", "max_connections=200"]
        service = Service("PostgreSQL", argv, env, log or base / "postgres.log")
        with open(service.log, "ab") as out:  # as the unprivileged user: Service.start runs as us
            service.proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT,
                                            start_new_session=True, **user)
        server = Postgres("127.0.0.1", port, password, service)

        def ready() -> bool:
            if service.proc.poll() is not None:
                raise AssertionError(f"postgres exited:\n{service.tail()}")
            try:
                server.admin().close()
                return True
            except Exception:
                return False

        wait_for(ready, 60, "PostgreSQL", interval=0.3)
        try:
            yield server
        finally:
            service.stop(signal.SIGINT)  # a fast shutdown
    finally:
        shutil.rmtree(base, ignore_errors=True)


# --------------------------------------------------------------------------------------------------
# MLflow and Prefect servers


def server_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a server, worker or client process: ours, with HOME (so every cache and config a library
    writes there), PREFECT_HOME and matplotlib's directory under HOME, never the user's."""
    from textops.env import child_env

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
    argv = [str(BIN / "mlflow"), "server", "--backend-store-uri", backend_uri, "--artifacts-destination",
            str(artifacts), "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    service = Service("the MLflow server", argv, server_env(workdir / "mlflow-home"), workdir / "mlflow-server.log",
                      health=f"http://127.0.0.1:{port}/health", cwd=workdir, url=f"http://127.0.0.1:{port}")
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
    service = Service("the Prefect server", argv, env, workdir / "prefect-server.log",
                      health=f"http://127.0.0.1:{port}/api/health", cwd=workdir, url=f"http://127.0.0.1:{port}/api")
    try:
        yield service.start()
    finally:
        service.stop()


def prefect_client_env(server: Service, home: Path) -> dict[str, str]:
    """The environment of a process that talks to SERVER (a Prefect server), with its Prefect home in HOME."""
    return server_env(home, PREFECT_API_URL=server.url)


def prefect(env: dict, cwd: Path, *args: str, check: bool = True, timeout: float = 300) -> str:
    """The `prefect` CLI; its output, or AssertionError with it when it fails and CHECK."""
    proc = subprocess.run([str(BIN / "prefect"), "--no-prompt", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"prefect {' '.join(args)} exited {proc.returncode}:\n{proc.stdout[-3000:]}"
                             f"{proc.stderr[-3000:]}")
    return proc.stdout + proc.stderr


def prefect_api(api: str, path: str, body: dict | None = None, method: str = "POST"):
    """One call of the Prefect REST API; the decoded JSON answer (None when empty)."""
    data = json.dumps(body or {}).encode() if method != "GET" else None
    req = urllib.request.Request(f"{api}{path}", data=data, headers={"Content-Type": "application/json"},
                                 method=method)
    with urllib.request.urlopen(req, timeout=30) as resp:
        raw = resp.read()
    return json.loads(raw) if raw else None


def worker(api_env: dict, home: Path, root: Path, name: str, pool: str = "gpu", **extra: str) -> Service:
    """A process worker NAME on POOL for the checkout ROOT (TEXTOPS_ROOT), not started yet. Flow runs it starts
    send a heartbeat every 30 s (the crash detection of docs/orchestration.md)."""
    env = {**api_env, "HOME": str(home), "PREFECT_HOME": str(home / "prefect"), "TEXTOPS_ROOT": str(root),
           "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "30", **extra}
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

    from textops.testing import REPO, git

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
    runs = prefect_api(api, "/flow_runs/filter", {"flow_runs": {"deployment_id": {"any_": [found[0]["id"]]}},
                                                  "sort": "EXPECTED_START_TIME_ASC", "limit": 100})  # fmt: skip
    return [r for r in runs if not r["auto_scheduled"]]


def run_deployment(api: str, env: dict, root: Path, deployment: str, timeout: float = 600) -> dict:
    """`prefect deployment run FLOW/DEPLOYMENT` (flow and deployment share the name here), then wait until that run
    is in a final state; the run."""
    before = {r["id"] for r in deployment_runs(api, deployment)}
    prefect(env, root, "deployment", "run", f"{deployment}/{deployment}")

    def done():
        new = [r for r in deployment_runs(api, deployment) if r["id"] not in before]
        return new[0] if new and new[0]["state_type"] in FINAL_STATES else None

    return wait_for(done, timeout, f"the {deployment} run", interval=0.5)


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
