"""Flow `data-rollback`: restore an earlier data version (a git revision, or the data a model version was
trained on, from MLflow alone), retrain on it, promote the result.

The restored pointer files (data.dvc, dvc.lock, the preprocess metric) are committed as a new commit where git
can, so the retrained model's lineage names a clean commit and `textops data versions` lists it first.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from textops.flows.pipeline import outcome, project, training_pipeline


@task(name="checkout-data", cache_policy=NO_CACHE)
def checkout_task(root: Path, params, rev: str | None, model: str | None, discard: bool) -> str:
    from textops.adapters.git import can_commit
    from textops.lifecycle.versions import checkout_data, checkout_model_data

    commit = can_commit(root)  # where git can (an identity): else the restore is left for a person to commit
    if model is not None:
        message = checkout_model_data(root, params, model, commit=commit, discard=discard)
    elif rev is not None:  # always, by the flow's check
        message = checkout_data(root, rev, params, commit=commit, discard=discard)
    else:
        raise ValueError("data-rollback needs exactly one of rev (a git revision) and model (a model version)")
    if not commit:
        message += " (not committed: git has no identity here; `git commit data.dvc dvc.lock` once it has)"
    get_run_logger().info(message)
    return message


@flow(name="data-rollback", log_prints=True)
def data_rollback(
    rev: str | None = None,
    model: str | None = None,
    force: bool = False,
    reason: str = "",
    discard: bool = False,
    project_dir: str = ".",
    params_file: str = "params.yaml",
    overrides: list[str] | None = None,
):
    """Check out the data of git revision REV or of model version MODEL, retrain on it (no skip), and promote: by
    policy, or always with FORCE."""
    if (rev is None) == (model is None):
        raise ValueError("data-rollback needs exactly one of rev (a git revision) and model (a model version)")
    root, params = project(project_dir, params_file, overrides)
    checkout_task(root, params, rev, model, discard)
    state = training_pipeline(
        project_dir=str(root),
        params_file=params_file,
        overrides=overrides,
        skip_unchanged=False,
        force_promote=force,
        reason=reason or f"data rollback to {f'model v{model}' if model else rev}",
        return_state=True,
    )
    return outcome(state)
