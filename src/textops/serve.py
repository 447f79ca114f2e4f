"""Serving: `mlflow models serve` of the champion, and batch scoring of a file.

The server is MLflow's own scoring server (FastAPI under uvicorn) started as
`mlflow models serve -m models:/NAME@champion --env-manager local`. The alias is resolved when the server
starts, so after a promotion or rollback the server must be restarted to serve the new champion.
It runs in its own process group because `mlflow models serve` starts uvicorn as a child: stopping only
the parent would leave the child holding the port.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from textops.config import Params
from textops.errors import StateError
from textops.predict import model_uri


def serve_command(params: Params, host: str, port: int, version: str | None = None) -> list[str]:
    # `python -m mlflow`, not the `mlflow` script: the same interpreter (and virtualenv) as textops.
    return [
        sys.executable, "-m", "mlflow", "models", "serve",
        "-m", model_uri(params, version),
        "--env-manager", "local",
        "-h", host,
        "-p", str(port),
    ]  # fmt: skip


def server_env(root: Path, params: Params) -> dict[str, str]:
    from textops.env import child_env
    from textops.tracking import tracking_uri

    # so `models:/` resolves in the server, and against this project's registry whatever the caller exported
    uri = tracking_uri(root, params)
    return child_env(MLFLOW_TRACKING_URI=uri, MLFLOW_REGISTRY_URI=uri)


def start_server(
    root: Path, params: Params, host: str | None = None, port: int | None = None, version: str | None = None, log=None
) -> subprocess.Popen:
    """Start the scoring server in a new process group; returns at once (see `wait_ready`)."""
    host = host or params.serve.host
    port = port or params.serve.port
    return subprocess.Popen(
        serve_command(params, host, port, version),
        cwd=root,
        env=server_env(root, params),
        start_new_session=True,  # own process group: stop_server kills mlflow and its uvicorn child
        stdout=log if log is not None else None,
        stderr=subprocess.STDOUT if log is not None else None,
    )


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 180) -> float:
    """Poll GET /ping until the model is loaded; return seconds waited. Fails if the server exits."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if proc.poll() is not None:
            raise StateError(f"the model server exited with code {proc.returncode} before it was ready.")
        try:
            with urllib.request.urlopen(f"{url}/ping", timeout=2) as resp:
                if resp.status == 200:
                    return time.monotonic() - start
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.25)
    raise StateError(f"the model server at {url} was not ready after {timeout:.0f}s.")


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


def serve(
    root: Path, params: Params, host: str | None = None, port: int | None = None, version: str | None = None
) -> int:
    """Run the server in the foreground until Ctrl-C or SIGTERM, then stop its whole process group."""
    from textops.registry import champion
    from textops.tracking import connect

    if version is None and champion(connect(root, params, experiment=False)) is None:
        raise StateError(
            f"{params.mlflow.registered_model} has no champion: run `textops register` "
            "(or `textops model promote VERSION`) first."
        )
    proc = start_server(root, params, host, port, version)

    def _terminate(signum, frame):  # SIGTERM to textops: stop the group as for Ctrl-C
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        stop_server(proc)
        signal.signal(signal.SIGTERM, previous)
