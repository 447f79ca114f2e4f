"""prefect.yaml's deployments say what the monitoring loop needs: `monitor` runs hourly and emits the events
`retrain`'s trigger expects, and `retrain` keeps its nightly cron and its concurrency limit. That the triggers,
entrypoints and schedules are valid for Prefect's own models is checked in a child interpreter:
tests/integration/test_deploy_files_checked.py."""

from __future__ import annotations

from helpers import deployments


def test_monitor_is_deployed_hourly_and_emits_the_events_the_triggers_expect():
    monitor = deployments()["monitor"]
    assert monitor["entrypoint"] == "flows/monitor.py:monitor_flow"
    assert [s.get("interval") for s in monitor["schedules"]] == [3600]
    from textops.core import lineage

    expected = {e for t in deployments()["retrain"]["triggers"] for e in t["expect"]}
    assert expected == {"textops.data.landed", "textops.drift.detected"}
    assert expected == {lineage.EVENT_LANDED, lineage.EVENT_DRIFT}  # the names the monitor flow emits


def test_retrain_keeps_its_cron_and_its_concurrency_limit():
    retrain = deployments()["retrain"]
    assert [s["cron"] for s in retrain["schedules"]] == ["0 2 * * *"]
    assert retrain["concurrency_limit"] == {"limit": 1, "collision_strategy": "ENQUEUE"}


def test_distill_is_deployed_to_run_by_hand_one_at_a_time():
    import importlib

    distill = deployments()["distill"]
    assert distill["entrypoint"] == "flows/distill.py:distill_flow"
    assert not distill.get("schedules") and not distill.get("triggers")  # by hand only
    assert distill["concurrency_limit"] == {"limit": 1, "collision_strategy": "ENQUEUE"}
    path, name = distill["entrypoint"].split(":")
    module = path.removeprefix("flows/").removesuffix(".py")
    flow = getattr(importlib.import_module(f"textops.flows.{module}"), name)
    assert flow.name == "distill"
    assert {"layers", "temperature", "project_dir"} <= set(flow.parameters.properties)
