"""The files under deploy/ say what tests/production runs: the systemd unit starts the worker with the command and
settings the worker fixture uses (and systemd accepts it), the crash automation is a valid Prefect automation."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO

from textops.testing.servers import worker

UNIT = REPO / "deploy/systemd/textops-worker.service"


def unit_settings() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith(("#", "[")):
            key, value = line.split("=", 1)
            out.setdefault(key.strip(), []).append(value.strip())
    return out


def test_the_worker_unit_runs_the_tested_worker_command(tmp_path):
    settings = unit_settings()
    tested = worker({}, tmp_path, tmp_path, "NAME")
    command = settings["ExecStart"][0].split()
    assert command[0].endswith("/.venv/bin/prefect")
    # the same arguments as the production tests' workers, the name aside
    assert command[1:-1] == tested.argv[1:-1] and command[-1] == "%H"
    environment = dict(e.split("=", 1) for e in settings["Environment"])
    assert environment["PREFECT_FLOWS_HEARTBEAT_FREQUENCY"] == tested.env["PREFECT_FLOWS_HEARTBEAT_FREQUENCY"]
    assert "TEXTOPS_ROOT" in environment
    assert settings["KillSignal"] == ["SIGINT"]  # a Prefect worker ignores SIGTERM


def test_systemd_accepts_the_worker_unit(tmp_path):
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    unit = tmp_path / UNIT.name  # with this virtualenv's prefect: systemd checks that ExecStart exists
    unit.write_text(UNIT.read_text().replace("/srv/textops/.venv/bin/", f"{Path(sys.executable).parent}/"))
    proc = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_crash_automation_is_a_valid_prefect_automation(tmp_path):
    # In a child with its own PREFECT_HOME: importing Prefect creates its home directory.
    check = (
        "import sys, yaml\n"
        "from prefect.events.schemas.automations import AutomationCore\n"
        "a = AutomationCore.model_validate(yaml.safe_load(open(sys.argv[1])))\n"
        "assert a.trigger.posture == 'Proactive' and a.trigger.within.total_seconds() == 90, a.trigger\n"
        "assert a.actions[0].type == 'change-flow-run-state' and a.actions[0].state.value == 'CRASHED'\n"
    )
    proc = subprocess.run([sys.executable, "-c", check, str(REPO / "deploy/prefect/crash-zombie-flow-runs.yaml")],
                          env={**os.environ, "PREFECT_HOME": str(tmp_path)}, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
