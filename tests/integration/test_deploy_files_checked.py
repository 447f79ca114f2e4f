"""The deploy files checked by the tools that read them, in a child process: prefect.yaml's `retrain` triggers are
valid Prefect deployment triggers with a cool-down, every deployment names a flow that takes its parameters (what
`prefect deploy --all` would otherwise find out on the server), systemd accepts the worker unit and the crash
automation is a valid Prefect automation. What the files say is tests/unit/flows/test_prefect_yaml.py and
tests/unit/flows/test_deploy_files.py."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import DEPLOYED_UNIT as UNIT
from helpers import REPO, deployments


def test_retrain_triggers_are_valid_prefect_deployment_triggers_with_a_cool_down(tmp_path):
    # In a child with its own PREFECT_HOME: importing Prefect creates its home directory.
    check = (
        "import sys, json, yaml\n"
        "from prefect.events import DeploymentEventTrigger\n"
        "from prefect.events.schemas.deployment_triggers import DeploymentTriggerTypes\n"
        "from pydantic import TypeAdapter\n"
        "ds = {d['name']: d for d in yaml.safe_load(open(sys.argv[1]))['deployments']}\n"
        "out = []\n"
        "for raw in ds['retrain']['triggers']:\n"
        "    t = TypeAdapter(DeploymentTriggerTypes).validate_python(raw)\n"
        "    assert isinstance(t, DeploymentEventTrigger), type(t)\n"
        "    out.append({'name': t.name, 'posture': t.posture.value, 'threshold': t.threshold,\n"
        "                'within': t.within.total_seconds(), 'expect': sorted(t.expect), 'enabled': t.enabled,\n"
        "                'match': t.match.model_dump(mode='json')})\n"
        "print(json.dumps(out))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", check, str(REPO / "prefect.yaml")],
        env={**os.environ, "PREFECT_HOME": str(tmp_path)},
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    triggers = json.loads(proc.stdout.strip().splitlines()[-1])
    # One trigger for both events: one cool-down, so files that land and the drift they bring start one retrain.
    assert len(triggers) == 1, [t["name"] for t in triggers]
    trigger = triggers[0]
    assert trigger["expect"] == ["textops.data.landed", "textops.drift.detected"]
    # Reactive, once per window: the first event fires, the rest of the window only counts (the cool-down)
    assert trigger["posture"] == "Reactive" and trigger["threshold"] == 1 and trigger["enabled"]
    assert trigger["within"] >= 600, f"a cool-down of {trigger['within']} s"
    assert trigger["match"]["prefect.resource.id"] == ["textops.landing", "textops.monitor"]


def test_every_deployment_names_a_flow_that_takes_its_parameters(tmp_path):
    """Each entrypoint loads as a Prefect flow, each deployment's parameters are the flow's, and each schedule is
    one Prefect accepts: what `prefect deploy --all` would otherwise find out on the server."""
    check = (
        "import sys, json, yaml\n"
        "from prefect.flows import load_flow_from_entrypoint\n"
        "from prefect.client.schemas.schedules import construct_schedule\n"
        "out = {}\n"
        "for d in yaml.safe_load(open(sys.argv[1]))['deployments']:\n"
        "    f = load_flow_from_entrypoint(d['entrypoint'])\n"
        "    for s in d.get('schedules') or []:\n"
        "        construct_schedule(**{k: v for k, v in s.items() if k in ('cron', 'interval', 'timezone')})\n"
        "    out[d['name']] = {'flow': f.name, 'takes': sorted(f.parameters.properties),\n"
        "                      'given': sorted(d.get('parameters') or {})}\n"
        "print(json.dumps(out))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", check, str(REPO / "prefect.yaml")],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "PREFECT_HOME": str(tmp_path)},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    assert {"retrain", "rollback", "monitor", "batch-score", "tune"} <= set(found)
    for name, d in found.items():
        assert set(d["given"]) <= set(d["takes"]), (name, d)
    assert found["batch-score"]["flow"] == "batch-score" and "input" in found["batch-score"]["given"]
    assert found["tune"]["flow"] == "tune" and not deployments()["tune"].get("schedules")  # by hand only
    assert [s["cron"] for s in deployments()["batch-score"]["schedules"]] == ["0 4 * * *"]


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
    proc = subprocess.run(
        [sys.executable, "-c", check, str(REPO / "deploy/prefect/crash-zombie-flow-runs.yaml")],
        env={**os.environ, "PREFECT_HOME": str(tmp_path)},
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
