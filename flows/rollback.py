"""Flow `data-rollback`: restore the data at a git revision (DVC), retrain on it, promote the result.

The pointer files (data.dvc, dvc.lock, the preprocess metric) of REV are committed as a new commit, so the
retrained model's lineage names a clean commit and `textops data versions` lists it as the newest version.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from textops.flows.pipeline import outcome, project, training_pipeline


@task(name="checkout-data", cache_policy=NO_CACHE)
def checkout_task(root: Path, rev: str, params) -> str:
    from textops.versions import checkout_data

    message = checkout_data(root, rev, params, commit=True)
    get_run_logger().info(message)
    return message


@flow(name="data-rollback", log_prints=True)
def data_rollback(
    rev: str,
    force: bool = False,
    reason: str = "",
    project_dir: str = ".",
    params_file: str = "params.yaml",
    overrides: list[str] | None = None,
):
    """Check out the data of REV, retrain on it (no skip), and promote: by policy, or always with FORCE."""
    root, params = project(project_dir, params_file, overrides)
    checkout_task(root, rev, params)
    state = training_pipeline(
        project_dir=str(root),
        params_file=params_file,
        overrides=overrides,
        skip_unchanged=False,
        force_promote=force,
        reason=reason or f"data rollback to {rev}",
        return_state=True,
    )
    return outcome(state)
