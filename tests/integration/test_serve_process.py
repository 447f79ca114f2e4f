"""The model server as a process: its workers dying with it, stopping its whole process group, failing fast when
it exits early, no metrics left by dead servers. Real processes, no model needed (the socket it binds is
tests/unit/serving/test_serve_socket.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import free_port, wait_for

from textops.core.errors import StateError
from textops.serving.serve import stop_server, wait_ready


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
    proc = subprocess.Popen(["sh", "-c", f"sleep 300 & echo $! > {pidfile}; wait"], start_new_session=True)
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


def test_a_worker_dies_with_its_parent(tmp_path: Path):
    """What `textops serve --workers N` relies on: SIGKILL of the parent leaves no worker behind."""
    pidfile = tmp_path / "worker.pid"
    worker = (
        "import os, sys, time\n"
        "from textops.serving.serve import die_with_parent\n"
        "die_with_parent(int(sys.argv[1]))\n"
        f"open({str(pidfile)!r}, 'w').write(str(os.getpid()))\n"
        "time.sleep(300)\n"
    )
    parent = (
        "import os, subprocess, sys, time\n"
        f"subprocess.Popen([sys.executable, '-c', {worker!r}, str(os.getpid())])\n"
        "time.sleep(300)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", parent], start_new_session=True)
    try:
        wait_for(lambda: pidfile.exists() and pidfile.read_text(), 60, "the worker to start", interval=0.1)
        child = int(pidfile.read_text())
        assert _alive(child)
        proc.kill()
        proc.wait(10)
        wait_for(lambda: not _alive(child), 10, "the worker to die with its parent", interval=0.1)
    finally:
        stop_server(proc)


def test_workers_metrics_live_in_the_project_and_dead_servers_leave_none(tmp_path: Path):
    from textops.serving.serve import metrics_directory

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / ".textops" / f"serve-metrics-{dead.pid}"
    stale.mkdir(parents=True)
    (stale / "counter_1.db").write_bytes(b"x")
    alive = tmp_path / ".textops" / f"serve-metrics-{os.getppid()}"  # a server still running keeps its own
    alive.mkdir()
    path = Path(metrics_directory(tmp_path))
    assert path == tmp_path / ".textops" / f"serve-metrics-{os.getpid()}" and path.is_dir()
    assert not stale.exists() and alive.exists()
