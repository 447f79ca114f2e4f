"""`textops serve`: the champion over REST, following the registry, as one process tree that dies with its parent.

The app is textops' own (`textops.serving.serving_app`, FastAPI under uvicorn, MLflow's scoring protocol) over a model
loaded with `mlflow.pyfunc.load_model`; it follows `models:/NAME@champion` (`textops.serving.follow`). The listening
socket is bound here first, so a busy or bad port is a one-paragraph error before any model loads.

- One worker (the default): uvicorn runs in this process. SIGHUP checks the registry now; SIGINT/SIGTERM stop
  it gracefully; SIGKILL leaves nothing behind (there is no child).
- `--workers N`: uvicorn's multiprocess supervisor in this process, N spawned workers on the one socket. Each
  worker loads the model and follows the alias itself; SIGHUP to this process is passed on to every worker; each
  worker asks the kernel to SIGTERM it when this process dies (Linux `prctl(PR_SET_PDEATHSIG)`, elsewhere a
  watchdog thread), so a SIGKILL of `textops serve` leaves no worker holding the port.

`wait_ready` and `stop_server` are for whoever starts `textops serve` as a process (tests, benchmarks).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from textops.adapters.tracking import Session
from textops.core import lineage
from textops.core.config import Params
from textops.core.errors import ParamsError, StateError, TextopsError

SERVING_DIR = "serving"  # .textops/serving/PID.json: where each running server listens

log = logging.getLogger("textops.serve")
GRACEFUL_SHUTDOWN_S = 10  # requests in flight get this long to finish on SIGTERM
BACKLOG = 2048


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on HOST:PORT, inheritable by workers; StateError when it cannot be had."""
    if not 1 <= port <= 65535:
        raise ParamsError(f"--port {port}: a port is a number from 1 to 65535 (default serve.port, 5001).")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise StateError(f"cannot serve on {host!r}: not an address of this machine ({exc.strerror}).") from exc
    family, kind, proto, _, address = infos[0]
    # with the protocol named (IPPROTO_TCP), asyncio sets TCP_NODELAY on every accepted connection; without it a
    # response written in two parts waits ~40 ms for the client's delayed ACK (Nagle)
    sock = socket.socket(family, kind, proto or socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        if exc.errno == 98:  # EADDRINUSE
            why = "another process is listening on it (an earlier `textops serve`? see `ss -ltnp`); pick --port"
        elif exc.errno == 13:  # EACCES
            why = "ports below 1024 need privileges; pick a port from 1024 to 65535"
        else:
            why = f"{exc.strerror or exc}; check serve.host / --host"
        raise StateError(f"cannot serve on {host}:{port}: {why}.") from exc
    sock.set_inheritable(True)
    return sock


def serve(
    root: Path,
    params: Params,
    host: str | None = None,
    port: int | None = None,
    version: str | None = None,
    workers: int | None = None,
) -> int:
    """Serve the champion (or VERSION) until SIGINT/SIGTERM; 0 on a clean stop."""
    host, port = host or params.serve.host, port or params.serve.port
    workers = workers or params.serve.workers
    if workers < 1:
        raise ParamsError(f"--workers {workers}: at least 1.")
    from textops.adapters.tracking import connect

    session = connect(root, params, experiment=False)  # this process's one session (each worker opens its own)
    served = resolve_version(session, params, version)
    sock = bind_socket(host, port)
    url = f"http://{'[' + host + ']' if ':' in host else host}:{sock.getsockname()[1]}"
    record = announce(root, url)
    try:
        if workers == 1:
            return run_single(root, params, version, sock, url, session)
        return run_workers(root, params, version, sock, url, workers, served)
    finally:
        sock.close()
        record.unlink(missing_ok=True)


def announce(root: Path, url: str) -> Path:
    """Say where this server listens (`.textops/serving/PID.json`), so `textops status` finds one started with
    --host/--port; removed on a clean stop, and skipped by status once its process is gone."""
    import psutil

    from textops.adapters.locks import state_dir
    from textops.core.artifacts import atomic_write_json

    folder = state_dir(root, SERVING_DIR)
    for old in folder.glob("*.json"):  # servers that were killed (SIGKILL) could not remove theirs
        if old.stem.isdigit() and not psutil.pid_exists(int(old.stem)):
            old.unlink(missing_ok=True)
    record = folder / f"{os.getpid()}.json"
    atomic_write_json(record, {"url": url, "pid": os.getpid(), "started": time.time()})
    return record


def announced(root: Path) -> list[str]:
    """The URLs of the servers of this project whose process is alive (`announce`), newest first."""
    import json

    import psutil

    from textops.adapters.locks import state_path

    folder = state_path(root, SERVING_DIR)
    records = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True) if folder.is_dir() else []
    out = []
    for record in records:
        try:
            entry = json.loads(record.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(entry, dict) and psutil.pid_exists(int(entry.get("pid", 0))) and entry.get("url"):
            out.append(str(entry["url"]))
    return out


def resolve_version(session: Session, params: Params, version: str | None) -> str:
    """The version to serve first: VERSION (it must exist) or the champion's; a clear error when there is none."""
    from textops.registry.registry import champion, get_version

    if version is not None:
        return str(get_version(session, version).version)
    mv = champion(session)
    if mv is None:
        raise StateError(
            f"{params.mlflow.registered_model} has no champion: run `textops register` "
            "(or `textops model promote VERSION`) first."
        )
    return str(mv.version)


def banner(url: str, name: str, version: str, pinned: bool, params: Params, workers: int) -> str:
    follows = (
        f"v{version} pinned (--model-version)"
        if pinned
        else f"v{version}, follows @{lineage.CHAMPION_ALIAS}"
        + (f" (checks every {params.serve.poll_seconds:g} s)" if params.serve.poll_seconds else " (on reload only)")
    )
    serve = params.serve
    shadow = (
        f"@{lineage.CHALLENGER_ALIAS} in shadow on {serve.shadow_fraction:.0%} of the requests, none while others are "
        "answered (its answers logged, never sent)"
        if serve.shadow
        else "no shadow"
    )
    logged = "off" if not serve.log_requests else f"on, in {serve.request_log_dir}"
    if serve.log_requests and serve.log_texts:
        kept = "redacted, docs/privacy.md" if serve.redact else "in clear: personal data, serve.redact is off"
        logged += f", with the texts ({kept})"
    logged += f", kept {serve.request_log_days:g} days" if serve.log_requests else ""
    return (
        f"textops serve: {name} {follows} at {url} ({workers} worker{'s' if workers > 1 else ''}, pid {os.getpid()})\n"
        f"  {shadow}; request log {logged}\n"
        f"  curl -s {url}/invocations -H 'Content-Type: application/json' "
        '-d \'{"inputs": ["what a wonderful film"]}\'\n'
        f"  GET {url}/version  /health  /metrics   check the registry now: kill -HUP {os.getpid()} "
        f"or curl -X POST {url}/reload   stop: Ctrl-C"
    )


def _uvicorn_config(app, workers: int = 1):
    import uvicorn

    return uvicorn.Config(
        app,
        factory=workers > 1,
        workers=workers,
        log_level="info" if workers > 1 else "warning",  # the supervisor says when a worker starts or dies
        access_log=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        lifespan="on",
    )


def install_sighup(follower, shadow=None) -> None:
    """SIGHUP: check the registry now (the followers' pollers do the work; the handler only wakes them)."""

    def wake(signum, frame) -> None:
        follower.request_reload()
        if shadow is not None:
            shadow.request_reload()

    signal.signal(signal.SIGHUP, wake)


def run_single(
    root: Path, params: Params, version: str | None, sock: socket.socket, url: str, session: Session | None = None
) -> int:
    """uvicorn in this process: load the model first (a failure is a clear error), then serve."""
    import uvicorn

    from textops.serving.serving_app import build_state, create_app

    state = build_state(root, params, version, session=session)
    install_sighup(state.follower, state.shadow)  # before the load: a SIGHUP during it must not kill the server
    try:
        loaded = state.follower.load_initial()
    except TextopsError:
        raise
    except Exception as exc:
        raise StateError(f"cannot load the model to serve: {type(exc).__name__}: {exc}") from exc
    print(banner(url, loaded.model_name, loaded.model_version, version is not None, params, 1), flush=True)
    # uvicorn restores these after a graceful stop and raises the signal again: let that be a clean exit
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, frame: None)
    uvicorn.Server(_uvicorn_config(create_app(state))).run(sockets=[sock])
    return 0


@dataclass(frozen=True)
class WorkerApp:
    """The app factory uvicorn calls in each spawned worker (pickled to it): the worker dies with its parent,
    logs like the CLI, writes its metrics to the shared directory and handles SIGHUP itself."""

    root: Path
    params: Params
    version: str | None
    parent_pid: int
    metrics_dir: str

    def __call__(self):
        die_with_parent(self.parent_pid)
        logger = logging.getLogger("textops")
        if not logger.handlers:
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(logging.Formatter(f"textops [worker {os.getpid()}]: %(message)s"))
            logger.addHandler(handler)
            logger.setLevel(logging.INFO)
            logger.propagate = False
        from textops.serving.serving_app import build_state, create_app

        state = build_state(self.root, self.params, self.version, self.metrics_dir)
        install_sighup(state.follower, state.shadow)
        return create_app(state)  # its lifespan loads the model: a failure stops every worker and the parent


def run_workers(
    root: Path, params: Params, version: str | None, sock: socket.socket, url: str, workers: int, served: str
) -> int:
    """uvicorn's multiprocess supervisor: WORKERS spawned processes on SOCK, SIGHUP passed on to them."""
    import shutil

    from uvicorn.supervisors.multiprocess import Multiprocess

    from textops.serving.serve_metrics import worker_exited

    class Supervisor(Multiprocess):
        startup_failed = False

        def handle_hup(self) -> None:  # uvicorn restarts the workers on SIGHUP; textops reloads the model
            for process in self.processes:
                if process.pid is not None and process.exitcode is None:
                    os.kill(process.pid, signal.SIGHUP)

        def keep_subprocess_alive(self) -> None:
            before = {p.pid for p in self.processes}
            super().keep_subprocess_alive()
            for pid in before - {p.pid for p in self.processes}:
                worker_exited(metrics_dir, pid)
            self.startup_failed = self.startup_failed or any(p.exitcode == 3 for p in self.processes)

    metrics_dir = metrics_directory(root)
    try:
        app = WorkerApp(Path(root), params, version, os.getpid(), metrics_dir)
        supervisor = Supervisor(_uvicorn_config(app, workers), sockets=[sock])
        print(banner(url, params.mlflow.registered_model, served, version is not None, params, workers), flush=True)
        supervisor.run()
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
    if supervisor.startup_failed:
        raise StateError("a worker could not load the model and the server stopped: see the messages above.")
    return 0


def metrics_directory(root: Path) -> str:
    """A new `.textops/serve-metrics-PID` for the workers' metrics; those of servers that are gone (a SIGKILL
    leaves its directory behind) are removed."""
    import shutil

    import psutil

    from textops.adapters.locks import STATE_DIR

    base = Path(root) / STATE_DIR
    for old in base.glob("serve-metrics-*"):
        pid = old.name.rsplit("-", 1)[1]
        if pid.isdigit() and not psutil.pid_exists(int(pid)):
            shutil.rmtree(old, ignore_errors=True)
    path = base / f"serve-metrics-{os.getpid()}"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return str(path)


def die_with_parent(parent_pid: int) -> None:
    """Have this process get SIGTERM when PARENT_PID (its parent) dies, and exit at once if it already has."""
    from textops.runtime.processes import parent_death_signal

    done = parent_death_signal(signal.SIGTERM)
    if os.getppid() != parent_pid:  # it died before prctl: nobody would tell us
        os._exit(0)
    if not done:

        def watch() -> None:
            while os.getppid() == parent_pid:
                time.sleep(1)
            os.kill(os.getpid(), signal.SIGTERM)

        threading.Thread(target=watch, name="textops-parent-watch", daemon=True).start()


# --------------------------------------------------------------------------------------------------
# `textops serve` as a child process


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 180) -> float:
    """Poll GET /ping until the model is loaded; return seconds waited. Fails if the server exits."""
    import httpx
    from tenacity import RetryError, Retrying, retry_if_result, stop_after_delay, wait_fixed

    def ready() -> bool:
        if proc.poll() is not None:
            raise StateError(f"the model server exited with code {proc.returncode} before it was ready.")
        try:
            return httpx.get(f"{url}/ping", timeout=2).status_code == 200
        except (httpx.TransportError, OSError):
            return False

    start = time.monotonic()
    try:
        Retrying(retry=retry_if_result(lambda ok: not ok), stop=stop_after_delay(timeout), wait=wait_fixed(0.25))(ready)
    except RetryError:
        raise StateError(f"the model server at {url} was not ready after {timeout:.0f}s.") from None
    return time.monotonic() - start


def stop_server(proc: subprocess.Popen, timeout: float = 15) -> None:
    """Stop the whole process group: SIGTERM, then SIGKILL if it does not exit in time."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=timeout)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=timeout)
