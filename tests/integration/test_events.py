"""A landed file's event is never lost (issue 39): the monitor flow counts a file as announced only once the
Prefect server has stored its `textops.data.landed` event, and fails otherwise, so the next run announces it again.

Both tests run the flow in a process that ends with `os._exit` the moment the flow returns: nothing Prefect still
held in its queues (the events worker sends at some point before a normal exit) gets out after that. Whatever the
server has when the process is gone is all it will ever have, so the test asserts at once, with no wait to race.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers import REPO
from support.servers import events_named, prefect_client_env, prefect_server

from textops.lifecycle.landed import LANDED_STATE

pytestmark = pytest.mark.slow

MONITOR_THEN_EXIT = """
import json, os, sys
import textops.runtime.events as events
events.RESEND_AFTER_S, events.CEILING_S = float(sys.argv[1]), float(sys.argv[2])
from textops.flows.monitor import monitor_flow
state = monitor_flow(project_dir='.', return_state=True)
print(json.dumps({'state': state.type.value, 'message': state.message}), flush=True)
os._exit(0)  # at once: no exit handler sends what the flow left queued
"""


def monitor_then_exit(root: Path, env: dict, resend_after_s: float = 60, ceiling_s: float = 300) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", MONITOR_THEN_EXIT, str(resend_after_s), str(ceiling_s)],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def landing_project(root: Path) -> Path:
    """A project with no champion (the monitor itself skips) and one labelled file in its landing directory."""
    (root / "landing").mkdir(parents=True)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    (root / "landing" / "reviews.csv").write_text("text,label\na fine film,positive\na dull film,negative\n")
    return root


def announced(root: Path) -> list[str]:
    state = root / ".textops" / LANDED_STATE
    return [key.split(":")[0] for key in json.loads(state.read_text())] if state.exists() else []


def test_a_landed_event_is_stored_before_the_flow_returns(tmp_path):
    root = landing_project(tmp_path / "proj")
    with prefect_server(f"sqlite+aiosqlite:///{tmp_path / 'prefect.db'}", tmp_path) as server:
        env = prefect_client_env(server, tmp_path / "client")
        first = monitor_then_exit(root, env)
        assert first["state"] == "COMPLETED", first
        stored = events_named(server.url, "textops.data.landed")
        assert [e["payload"]["files"] for e in stored] == [["reviews.csv"]]
        assert announced(root) == ["reviews.csv"]

        again = monitor_then_exit(root, env)  # nothing new landed: nothing announced twice
        assert again["state"] == "COMPLETED", again
        assert len(events_named(server.url, "textops.data.landed")) == 1


def test_a_file_whose_event_is_not_stored_stays_unannounced_and_the_run_fails(tmp_path):
    root = landing_project(tmp_path / "proj")
    # A server that takes events in but never stores them: what a persister that drops its batches looks like.
    no_store = {"PREFECT_SERVER_SERVICES_EVENT_PERSISTER_ENABLED": "false"}
    with prefect_server(f"sqlite+aiosqlite:///{tmp_path / 'prefect.db'}", tmp_path, **no_store) as server:
        env = prefect_client_env(server, tmp_path / "client")
        lost = monitor_then_exit(root, env, resend_after_s=3, ceiling_s=8)
        assert lost["state"] == "FAILED", lost
        assert "did not store the event textops.data.landed" in lost["message"], lost
        assert announced(root) == []  # so the next hourly run announces the file again
