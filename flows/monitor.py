"""Flow `monitor`: watch what arrives and tell Prefect, so that the `retrain` deployment's triggers can act.

Scheduled hourly by the `monitor` deployment (prefect.yaml). Each run:

- emits `textops.data.landed` when files are in the landing directory that no earlier run announced (a file
  held there for a person is announced once, not every hour), then monitors them against the champion. A file
  counts as announced only once the Prefect server has stored its event (`textops.runtime.events`); when it does
  not, the run fails and the next run announces the file again;
- monitors the serving request log when `serve.log_requests` is on and the log has rows;
- with promotion.live_min_labels, promotes the challenger that waits for live evidence once it has it;
- emits `textops.drift.detected` with the figures for each source that drifted, confirmed stored as well.

The `retrain` deployment has one deployment trigger on both events, with a cool-down (prefect.yaml). Monitoring
itself is `textops.monitor.monitor`, the function `textops monitor` calls; this file only wires it.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from textops.flows.pipeline import project

from textops.core import lineage
from textops.core.config import Params
from textops.core.errors import TextopsError
from textops.runtime.events import emit_confirmed

LANDED, DRIFT = lineage.EVENT_LANDED, lineage.EVENT_DRIFT


def resource(root: Path, what: str) -> dict[str, str]:
    """The event's resource: `textops.landing` or `textops.monitor`, labelled with the project it is about."""
    return {
        "prefect.resource.id": lineage.event_resource(what),
        "prefect.resource.name": f"{root.name} {what}",
        lineage.EVENT_PROJECT_LABEL: str(root),
    }


def figures(result: dict) -> dict:
    """What a drift event carries: the verdict, the source, the champion and every check that drifted."""
    keep = ("kind", "name", "test", "statistic", "p_value", "threshold", "reference", "current")
    drifted = [{k: c.get(k) for k in keep if k in c} for c in result["checks"] if c["drifted"]]
    return {
        "drift": result["drift"],
        "kinds": result["kinds"],
        "source": result["source"],
        "rows": result["rows"],
        "champion_version": result["champion"]["version"],
        "checks": drifted,
        "mlflow_run_id": result.get("mlflow_run_id"),
    }


@task(name="landed-files", cache_policy=NO_CACHE)
def landed_task(root: Path, params: Params) -> dict[str, str]:
    """Landing files not announced before: {key: path}."""
    from textops.lifecycle.landed import landed_files

    return {key: str(p) for key, p in landed_files(root, params).items()}


@task(name="announce-landed", cache_policy=NO_CACHE)
def announce_task(root: Path, params: Params, landed: dict[str, str]) -> None:
    """Emit `textops.data.landed` for LANDED, wait until the server stored it, then record the files announced."""
    from textops.lifecycle.landed import mark_announced

    names = [Path(f).name for f in landed.values()]
    payload = {"files": names, "landing_dir": params.data.landing_dir}
    emit_confirmed(LANDED, resource(root, "landing"), payload)
    mark_announced(root, params, list(landed))
    get_run_logger().info("%s: %s", LANDED, ", ".join(names))


@task(name="monitor", cache_policy=NO_CACHE)
def monitor_task(root: Path, params: Params, files: list[str] | None, requests: bool) -> dict | None:
    """The monitor on FILES or the request log; None (and a warning) when it cannot run: no champion yet, an
    unreadable file (the retrain that the landed event starts names it), too few rows."""
    from textops.lifecycle.monitor import monitor

    try:
        return monitor(root, params, [Path(f) for f in files or []] or None, requests)
    except TextopsError as exc:
        get_run_logger().warning("monitor skipped: %s", exc)
        return None


@task(name="promote-check", cache_policy=NO_CACHE)
def promote_check_task(root: Path, params: Params) -> dict:
    """promotion.live_min_labels: promote the challenger waiting for live evidence once it has enough of it."""
    from textops.lifecycle.live_promotion import live_check

    result = live_check(root, params)
    get_run_logger().info("promote-check: %s", result["message"])
    return result


def has_request_log(root: Path, params: Params) -> bool:
    from textops.live.request_log_reader import log_files

    return params.serve.log_requests and bool(log_files(root / params.serve.request_log_dir))


@flow(name="monitor", log_prints=True)
def monitor_flow(project_dir: str = ".", params_file: str = "params.yaml", overrides: list[str] | None = None) -> dict:
    """Announce newly landed files, monitor them and the request log against the champion, announce drift."""
    root, params = project(project_dir, params_file, overrides)
    logger = get_run_logger()
    landed = landed_task(root, params)
    if landed:
        announce_task(root, params, landed)
    results = {}
    if landed:
        results["landing"] = monitor_task(root, params, list(landed.values()), False)
    if has_request_log(root, params):
        results["requests"] = monitor_task(root, params, None, True)
    live = promote_check_task(root, params) if params.promotion.live_min_labels else None
    for source, result in results.items():
        if result and result["drift"]:
            emit_confirmed(DRIFT, resource(root, "monitor"), {"from": source, **figures(result)})
            logger.warning("%s (%s): %s", DRIFT, source, ", ".join(result["kinds"]))
    return {
        "landed": [Path(f).name for f in landed.values()],
        "drift": {s: (r["kinds"] if r else None) for s, r in results.items()},
        "promote_check": live["result"] if live else None,
    }
