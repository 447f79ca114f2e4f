"""Flow `retrain`: ingest new labelled files from the landing directory, then run the training pipeline.

Scheduled nightly by the `retrain` deployment (prefect.yaml). With no new files and an unchanged champion
the pipeline ends early with "nothing to retrain".
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from textops.flows.pipeline import outcome, project, training_pipeline


@task(name="ingest-landing", cache_policy=NO_CACHE)
def ingest_landing_task(root: Path, params) -> list[dict]:
    """Ingest every landing file as one gated batch and commit data.dvc; a refused file stays for a person."""
    from textops.lifecycle.ingest import ingest_landing

    results = ingest_landing(root, params)
    logger = get_run_logger()
    if not results:
        logger.info("no new files in %s", root / params.data.landing_dir)
    for r in results:
        logger.info(r.describe())
    return [{"source": Path(r.source).name, "batch": r.batch, "rows": r.rows, "added": r.added} for r in results]


@flow(name="retrain", log_prints=True)
def retrain(project_dir: str = ".", params_file: str = "params.yaml"):
    """Ingest the landing directory, then run `training-pipeline` (which skips when nothing changed) and, where
    the checkout can commit, commit the data version and metrics naming the model version."""
    from textops.adapters.git import can_commit

    root, params = project(project_dir, params_file)
    ingested = ingest_landing_task(root, params)
    result = training_pipeline(
        project_dir=str(root), params_file=params_file, commit=can_commit(root), return_state=True
    )
    get_run_logger().info("ingested %d file(s); pipeline %s: %s", len(ingested), result.type.value, result.message)
    return outcome(result)
