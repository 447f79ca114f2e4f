"""Flow `retrain`: ingest new labelled files from the landing directory, then run the training pipeline.

Scheduled nightly by the `retrain` deployment (prefect.yaml). With no new files and an unchanged champion
the pipeline ends early with "nothing to retrain".
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

_REPO = str(Path(__file__).resolve().parents[1])
if _REPO not in sys.path:  # loaded by path by `prefect deploy` / a worker
    sys.path.insert(0, _REPO)

from prefect import flow, get_run_logger, task  # noqa: E402
from prefect.cache_policies import NO_CACHE  # noqa: E402

from flows.pipeline import outcome, project, training_pipeline  # noqa: E402

DONE_DIR = "ingested"  # under the landing directory: files already ingested are moved here
# Files still being written by whoever drops them here (upload tools write aside, then rename).
IN_FLIGHT = (".part", ".tmp", ".crdownload")


def landing_files(landing: Path) -> list[Path]:
    """Files waiting in LANDING, by name. Every file counts, whatever its type: one ingest cannot read (a
    spreadsheet, a link) fails the run and stays here for a person, instead of being skipped forever.
    Hidden files and files still being uploaded are left alone."""
    if not landing.is_dir():
        return []
    return sorted(
        p
        for p in landing.iterdir()
        if (p.is_file() or p.is_symlink()) and not p.name.startswith(".") and not p.name.endswith(IN_FLIGHT)
    )


@task(name="ingest-landing", cache_policy=NO_CACHE)
def ingest_landing(root: Path, params) -> list[dict]:
    """Ingest every landing file as one batch (all are checked before any is written), commit data.dvc."""
    from textops.data import ingest

    landing = root / params.data.landing_dir
    files = landing_files(landing)
    logger = get_run_logger()
    if not files:
        logger.info("no new files in %s", landing)
        return []
    # gate: a landing file that would make the cleaned data fail its checks is not ingested at all; it
    # stays in the landing directory and the run fails, naming the failed expectations.
    results = ingest(files, root, params, commit=True, gate=True)
    done = landing / DONE_DIR
    done.mkdir(exist_ok=True)
    for path in files:  # moved only after a successful ingest: a refused file stays for a person to fix
        shutil.move(str(path), done / path.name)
    for r in results:
        logger.info(r.describe())
    return [{"source": Path(r.source).name, "batch": r.batch, "rows": r.rows, "added": r.added} for r in results]


@flow(name="retrain", log_prints=True)
def retrain(project_dir: str = ".", params_file: str = "params.yaml"):
    """Ingest the landing directory, then run `training-pipeline` (which skips when nothing changed)."""
    root, params = project(project_dir, params_file)
    ingested = ingest_landing(root, params)
    result = training_pipeline(project_dir=str(root), params_file=params_file, return_state=True)
    get_run_logger().info("ingested %d file(s); pipeline %s: %s", len(ingested), result.type.value, result.message)
    return outcome(result)
