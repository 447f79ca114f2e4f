"""Flow `distill`: the champion distilled into a student with half its encoder layers, registered as the
challenger (`textops.lifecycle.distill`). Deployed to be run by hand (prefect.yaml's `distill`): it holds the one
training slot like the training pipeline, so it never trains beside a retrain."""

from __future__ import annotations

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.states import Completed, Failed
from textops.flows.pipeline import project

from textops.runtime.training_slot import TRAINING_LIMIT, SlotWaitTimeout, ensure_limit, training_slot


@task(name="distill", cache_policy=NO_CACHE)
def distill_task(root, params, layers: int | None, temperature: float) -> dict:
    from textops.lifecycle.distill import distill
    from textops.lifecycle.results import DistillResult

    r = distill(root, params, layers, temperature)
    reg = r["registered"]
    get_run_logger().info("distill: %s", DistillResult.from_dict(r).describe())
    return {"version": reg["version"], "promote": reg["promote"], "reason": reg["reason"], "latency": r["latency"]}


@flow(name="distill", log_prints=True)
def distill_flow(
    layers: int | None = None,
    temperature: float = 2.0,
    project_dir: str = ".",
    params_file: str = "params.yaml",
    overrides: list[str] | None = None,
    wait_timeout_s: float | None = 6 * 3600,
):
    """Distill the champion (LAYERS: the student's encoder layers, default half; TEMPERATURE of the soft labels) and
    register the student, in the training slot."""
    root, params = project(project_dir, params_file, overrides)
    ensure_limit()
    try:
        with training_slot(root, wait_timeout_s):
            summary = distill_task(root, params, layers, temperature)
    except SlotWaitTimeout:
        return Failed(message=f"another training run held the concurrency limit {TRAINING_LIMIT!r}; try again later.")
    return Completed(message=f"v{summary['version']}: {summary['reason']}", data=summary)
