"""Flow `data-rollback`: restore the data at a git revision (DVC), retrain on it, promote the result.

The pointer files (data.dvc, dvc.lock, the preprocess metric) of REV are committed as a new commit, so the
retrained model's lineage names a clean commit and `textops data versions` lists it as the newest version.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

_REPO = str(Path(__file__).resolve().parents[1])
if _REPO not in sys.path:  # loaded by path by `prefect deploy` / a worker
    sys.path.insert(0, _REPO)

from prefect import flow, get_run_logger, task  # noqa: E402
from prefect.cache_policies import NO_CACHE  # noqa: E402

from flows.pipeline import outcome, project, training_pipeline  # noqa: E402


@task(name="checkout-data", cache_policy=NO_CACHE)
def checkout_task(root: Path, rev: str, params) -> str:
    from textops.versions import POINTERS, checkout_data

    message = checkout_data(root, rev, params)
    # Only the pointers REV has: a dvc.lock left from a later version would pair REV's raw data with
    # another version's cleaned splits (the pipeline rewrites it anyway).
    present = [
        p for p in POINTERS
        if subprocess.run(["git", "cat-file", "-e", f"{rev}:{p}"], cwd=root, capture_output=True).returncode == 0
    ]
    subprocess.run(["git", "add", "--", *present], cwd=root, check=True, capture_output=True)
    done = subprocess.run(
        ["git", "commit", "-q", "-m", f"data: roll back to {rev}", "--", *present],
        cwd=root, capture_output=True, text=True,
    )
    if done.returncode != 0 and "nothing" not in done.stdout + done.stderr:
        get_run_logger().warning("git commit of the restored pointers failed: %s", done.stderr.strip())
    get_run_logger().info(message)
    return message


@flow(name="data-rollback", log_prints=True)
def data_rollback(
    rev: str,
    force: bool = False,
    reason: str = "",
    project_dir: str = ".",
    params_file: str = "params.yaml",
):
    """Check out the data of REV, retrain on it (no skip), and promote: by policy, or always with FORCE."""
    root, params = project(project_dir, params_file)
    checkout_task(root, rev, params)
    state = training_pipeline(
        project_dir=str(root),
        params_file=params_file,
        skip_unchanged=False,
        force_promote=force,
        reason=reason or f"data rollback to {rev}",
        return_state=True,
    )
    return outcome(state)
