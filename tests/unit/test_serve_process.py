"""The model server as a process: its command line, stopping its whole process group, failing fast when it
exits early. No model needed."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import free_port

from textops.config import Params
from textops.errors import StateError
from textops.serve import serve_command, stop_server, wait_ready


def test_serve_command_serves_the_champion_alias_locally():
    cmd = serve_command(Params(), "127.0.0.1", 5999)
    assert cmd[:5] == [sys.executable, "-m", "mlflow", "models", "serve"]
    assert cmd[cmd.index("-m", 3) + 1] == "models:/textops-classifier@champion"
    assert cmd[cmd.index("--env-manager") + 1] == "local"
    assert cmd[cmd.index("-h") + 1] == "127.0.0.1" and cmd[cmd.index("-p") + 1] == "5999"
    assert serve_command(Params(), "127.0.0.1", 1, version="3")[6] == "models:/textops-classifier/3"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0): look at its state
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(")")[-1].split()[0] != "Z"


def test_stop_server_stops_the_whole_process_group(tmp_path: Path):
    # a parent that starts a child, as `mlflow models serve` starts uvicorn
    pidfile = tmp_path / "child.pid"
    proc = subprocess.Popen(
        ["sh", "-c", f"sleep 300 & echo $! > {pidfile}; wait"], start_new_session=True
    )
    for _ in range(100):
        if pidfile.exists() and pidfile.read_text().strip():
            break
        time.sleep(0.05)
    child = int(pidfile.read_text())
    assert _alive(child)
    stop_server(proc)
    assert proc.returncode is not None
    for _ in range(100):
        if not _alive(child):
            break
        time.sleep(0.05)
    assert not _alive(child), "the child of the server survived stop_server"


def test_wait_ready_fails_fast_when_the_server_exits():

    proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    with pytest.raises(StateError, match="exited with code 3"):
        wait_ready(f"http://127.0.0.1:{free_port()}", proc, timeout=30)
