"""The temporary Prefect server's start-up (runtime/) against real processes: waited for while it works,
failed when it stalls or exits. No server needed; the rest of Prefect's settings are
tests/unit/flows/test_flow_settings.py."""

from __future__ import annotations


def test_the_temporary_server_start_up_waits_for_progress_not_for_a_fixed_time(tmp_path, monkeypatch):
    """A server that is alive and working (CPU used) is waited for past any fixed time; one that stalls (no CPU,
    no log) fails after STALL_S; one that exits fails at once, naming its log. Real processes, no server needed."""
    import subprocess
    import sys

    import pytest

    from textops.core.errors import StateError
    from textops.runtime import prefect_server as server

    monkeypatch.setattr(server, "STALL_S", 2)
    log = tmp_path / "server.log"
    log.write_text("")
    url = "http://127.0.0.1:9/api"  # nothing answers there
    stalled = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with pytest.raises(StateError, match="made no progress"):
            server._wait_healthy(url, stalled, log)
    finally:
        stalled.kill()
        stalled.wait()
    gone = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    gone.wait()
    with pytest.raises(StateError, match="exited with code 3"):
        server._wait_healthy(url, gone, log)
    # Busy for longer than STALL_S, then gone: waited for the whole time it was busy (no stall reported).
    busy = subprocess.Popen([sys.executable, "-c", "import time\nt = time.time()\nwhile time.time() - t < 5: pass"])
    with pytest.raises(StateError, match="exited with code 0"):
        server._wait_healthy(url, busy, log)
