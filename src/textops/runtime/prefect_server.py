"""The temporary Prefect server of an in-process run (`textops run`, `textops rollback` with no PREFECT_API_URL).

Prefect would start one itself, but as an ordinary child process: when textops is killed (SIGKILL, the OOM
killer) that server outlives it, holding a port and, in its database, the run's concurrency slot. textops
starts the same server (Prefect's API app under uvicorn, its database in the project's `.prefect/`) as a child
that the kernel stops when textops dies (PR_SET_PDEATHSIG on Linux), and stops it when the run ends.

No Prefect import here: the server's settings must be in the environment before Prefect is first imported.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from textops.adapters.relocation import backup_sqlite
from textops.core.env import copy_if_absent, template_dir
from textops.core.errors import StateError
from textops.runtime.processes import free_port, parent_death_signal

# The start-up waits while the server makes progress (CPU used or its log growing): a fresh database's migrations
# take minutes on a loaded machine. It fails when the server exits, stalls for STALL_S, or passes the ceiling.
STALL_S = 120
CEILING_S = 1200


def server_command(port: int) -> list[str]:
    """Prefect's own temporary-server command line (prefect.server.api.server.SubprocessASGIServer)."""
    spec = importlib.util.find_spec("prefect")
    if spec is None or spec.origin is None:
        raise StateError("Prefect is not installed: pip install -e . (textops depends on it).")
    app_dir = str(Path(spec.origin).parent.parent)
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "--app-dir",
        app_dir,
        "--factory",
        "prefect.server.api.server:create_app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "error",
        "--lifespan",
        "on",
    ]


@contextmanager
def temporary_server(home: Path, log_path: Path) -> Iterator[str]:
    """A Prefect API server for this process, its database in HOME; yields its API URL (also exported as
    PREFECT_API_URL for the block, then put back). Stopped when the block ends, and by the kernel if this
    process dies."""
    port = free_port()
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_UI_ENABLED": "0",
        "PREFECT__SERVER_EPHEMERAL": "1",
        "PREFECT__SERVER_FINAL": "1",
    }
    env.pop("PREFECT_API_URL", None)
    home.mkdir(parents=True, exist_ok=True)
    fresh = not (home / DB).exists()
    if fresh:
        seed_database(home)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        # Its own session: Ctrl-C in the terminal (SIGINT to the foreground group) must not stop the server before
        # the run, stopping, has given back its training slot through it; the run stops it after that.
        proc = subprocess.Popen(
            server_command(port),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=parent_death_signal,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}/api"
    before = os.environ.get("PREFECT_API_URL")
    try:
        _wait_healthy(url, proc, log_path)
        if fresh:
            save_template(home)
        os.environ["PREFECT_API_URL"] = url
        yield url
    finally:
        if before is None:
            os.environ.pop("PREFECT_API_URL", None)
        else:
            os.environ["PREFECT_API_URL"] = before
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


DB, MEMO = "prefect.db", "memo_store.toml"


def seed_database(home: Path) -> bool:
    """Start a new project's Prefect database from the migrated template, if there is one: a fresh database
    otherwise spends most of the server's start-up in migrations (BENCHMARKS.md, "Orchestration")."""
    template = template_dir("prefect", "prefect")
    if not (template / DB).is_file():
        return False
    if (template / MEMO).is_file() and not (home / MEMO).exists():
        copy_if_absent(template / MEMO, home / MEMO)
    return copy_if_absent(template / DB, home / DB)


def save_template(home: Path) -> None:
    """Keep a consistent copy of a just-migrated database as the template, once."""
    template = template_dir("prefect", "prefect")
    if (home / MEMO).is_file() and not (template / MEMO).exists():
        template.mkdir(parents=True, exist_ok=True)
        copy_if_absent(home / MEMO, template / MEMO)
    backup_sqlite(home / DB, template / DB)


def _cpu_seconds(proc: subprocess.Popen) -> float | None:
    """CPU time the server process has used so far (user + system); None once it is gone."""
    import psutil

    try:
        times = psutil.Process(proc.pid).cpu_times()
    except psutil.Error:
        return None
    return times.user + times.system


def _wait_healthy(url: str, proc: subprocess.Popen, log_path: Path) -> None:
    """Until the server answers /health. A busy machine (a CI runner, a laptop running a browser) can take minutes
    over a fresh database's migrations, so the wait is for progress, not for a fixed time: it fails when the
    process exits, or when it has used no CPU and written nothing to its log for STALL_S seconds (stuck), or after
    the ceiling PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS (default 20 minutes) whatever it does."""
    ceiling = float(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", CEILING_S))
    start = time.monotonic()
    progress_at, last = start, (_cpu_seconds(proc), _log_size(log_path))
    while time.monotonic() - start < ceiling:
        if proc.poll() is not None:
            raise StateError(
                f"the temporary Prefect server exited with code {proc.returncode} before it answered; its log is "
                f"{log_path}."
            )
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except (httpx.TransportError, OSError):
            pass
        now = (_cpu_seconds(proc), _log_size(log_path))
        if now != last:
            progress_at, last = time.monotonic(), now
        elif time.monotonic() - progress_at > STALL_S:
            proc.kill()
            raise StateError(
                f"the temporary Prefect server made no progress for {STALL_S:.0f} s (no CPU used, nothing logged) "
                f"before it answered; see {log_path}."
            )
        time.sleep(0.2)
    proc.kill()
    raise StateError(f"the temporary Prefect server did not answer within {ceiling:.0f} s; see {log_path}.")


def _log_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
