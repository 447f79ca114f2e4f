"""The files under deploy/ say what tests/production runs: the systemd unit starts the worker with the command and
settings the worker fixture uses. That systemd accepts the unit and Prefect the crash automation is checked by
their own tools in tests/integration/test_deploy_files_checked.py."""

from __future__ import annotations

from helpers import DEPLOYED_UNIT as UNIT
from support.servers import worker


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
