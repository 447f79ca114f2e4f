"""Flow `training-pipeline`: preprocess → validate → train → evaluate → register, as Prefect tasks.

Each task calls the library's stage function in this process (so a stage's own error type reaches the
flow: retries can tell a transient failure from bad data, and a failed suite's message becomes the flow's)
and then records the stage's outputs in dvc.lock with `dvc commit`, so `dvc status` / `dvc repro` agree
with what the flow produced. The stage definitions (deps, outs, params) live only in dvc.yaml, the stage
logic only in src/textops/; this file adds retries, logging, the one-training-at-a-time limit and the
"nothing changed" check.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.states import Completed, Failed
from prefect.tasks import exponential_backoff

from textops.config import Params, load_params
from textops.errors import TextopsError, ValidationFailed

# A global concurrency limit with one slot: two runs never train, evaluate or move aliases at once (the
# second waits for the slot). It covers the whole pipeline because all stages write the same project files.
TRAINING_LIMIT = "textops-training"
# The slot is a lease the run renews every 45 s while it lives. A run whose machine died (SIGKILL, power) cannot
# give it back: the server takes it back when the lease runs out, about when the heartbeat automation of
# docs/orchestration.md marks that run Crashed. Prefect's default (300 s) would stall the next run for minutes.
TRAINING_LEASE_S = 60
TRAIN_RETRIES = 2


def project(project_dir: str | Path, params_file: str, overrides: list[str] | None = None) -> tuple[Path, Params]:
    """The project root (where the params file lives) and its validated params, with OVERRIDES applied."""
    path = Path(project_dir).resolve() / params_file
    return path.parent, load_params(path, tuple(overrides or ()))


def transient_only(task, task_run, state) -> bool:
    """Retry condition: retry anything but a TextopsError (bad data, bad params, bad state never heal)."""
    try:
        state.result()
    except TextopsError:
        return False
    except BaseException:
        return True
    return False


@task(name="check-changes", cache_policy=NO_CACHE)
def check_changes(root: Path, params: Params) -> str | None:
    """A message when the champion was trained on this data version with these params, else None."""
    from textops.registry import nothing_to_retrain

    return nothing_to_retrain(root, params)


# --------------------------------------------------------------------------------------------------
# Stage tasks: call the stage function, record its outputs, return a small summary.


@task(name="preprocess", cache_policy=NO_CACHE)
def preprocess_task(root: Path, params: Params) -> dict:
    from textops.preprocess import preprocess
    from textops.scm import commit_stage

    stats = preprocess(root, params)
    commit_stage(root, "preprocess")
    get_run_logger().info("preprocess: %s rows out, splits %s", stats["rows_out"], stats["splits"])
    return {"rows_out": stats["rows_out"], "splits": stats["splits"], "raw_md5": stats.get("raw_md5")}


@task(name="validate", cache_policy=NO_CACHE)
def validate_task(root: Path, params: Params) -> dict:
    from textops.scm import commit_stage
    from textops.validate import validate

    try:
        summary = validate(root, params)
    finally:
        # The stage's metric records a failure too; dvc.lock should say what the suites saw.
        try:
            commit_stage(root, "validate")
        except Exception as exc:  # the metrics file is missing when the suites could not run at all
            get_run_logger().warning("dvc commit validate skipped: %s", exc)
    return {k: summary[k] for k in ("evaluated", "data_docs") if k in summary}


@task(
    name="train",
    retries=TRAIN_RETRIES,
    retry_delay_seconds=exponential_backoff(backoff_factor=10),
    retry_jitter_factor=0.5,
    retry_condition_fn=transient_only,
    cache_policy=NO_CACHE,
)
def train_task(root: Path, params: Params) -> dict:
    # The Trainer picks CUDA when the worker's machine has it; nothing to choose here.
    from textops.scm import commit_stage
    from textops.train import train

    result = train(root, params)
    commit_stage(root, "train")
    get_run_logger().info("train: %s", result)
    return result


@task(name="evaluate", cache_policy=NO_CACHE)
def evaluate_task(root: Path, params: Params) -> dict:
    from textops.evaluate import evaluate
    from textops.scm import commit_stage

    result = evaluate(root, params)
    commit_stage(root, "evaluate")
    get_run_logger().info("evaluate: %s", {k: v for k, v in result.items() if not isinstance(v, dict | list)})
    return result


@task(name="register", cache_policy=NO_CACHE)
def register_task(root: Path, params: Params, force: bool = False, reason: str = "") -> dict:
    from textops.register import register
    from textops.registry import promote

    result = register(root, params)
    logger = get_run_logger()
    logger.info("register: v%s %s (%s)", result["version"], "promoted" if result["promote"] else "not promoted",
                result["reason"])
    if force and not result["promote"]:
        why = reason or "forced by data rollback"
        logger.info(promote(root, params, result["version"], f"{why} (policy said: {result['reason']})"))
        result = {**result, "promote": True, "forced": True, "reason": why}
    return {k: v for k, v in result.items() if k != "evidence"}


def outcome(state, what: str = "training-pipeline"):
    """A subflow's final state as the calling flow's own: its message and summary survive (returning the
    state itself would collapse to Prefect's generic "All states completed.")."""
    if state.is_completed():
        return Completed(message=state.message or f"{what} completed", data=state.result(raise_on_failure=False))
    return Failed(message=f"{what} {state.type.value.lower()}: {state.message}")


def ensure_limit(name: str = TRAINING_LIMIT, slots: int = 1) -> None:
    """Create the global concurrency limit if the Prefect server does not have it yet."""
    from prefect import get_client

    with get_client(sync_client=True) as client:
        client.upsert_global_concurrency_limit_by_name(name, slots)


def run_stages(root: Path, params: Params, force_promote: bool, reason: str):
    """The stages in order; a failed data gate ends the run Failed before anything is trained."""
    summary: dict = {"preprocess": preprocess_task(root, params)}
    try:
        summary["validate"] = validate_task(root, params)
    except ValidationFailed as exc:
        return Failed(message=f"data validation failed, nothing trained or registered: {exc}")
    summary["train"] = train_task(root, params)
    summary["evaluate"] = evaluate_task(root, params)
    summary["register"] = register_task(root, params, force=force_promote, reason=reason)
    return summary


@flow(name="training-pipeline", log_prints=True)
def training_pipeline(
    project_dir: str = ".",
    params_file: str = "params.yaml",
    overrides: list[str] | None = None,
    skip_unchanged: bool = True,
    force_promote: bool = False,
    reason: str = "",
    wait_timeout_s: float | None = 6 * 3600,
):
    """Preprocess → validate → train → evaluate → register; ends early when nothing changed.

    Returns a summary dict, or a Completed("nothing to retrain ...") / Failed(...) state.
    """
    from prefect.concurrency.sync import concurrency

    root, params = project(project_dir, params_file, overrides)
    logger = get_run_logger()
    ensure_limit()
    try:
        with concurrency(TRAINING_LIMIT, occupy=1, timeout_seconds=wait_timeout_s, lease_duration=TRAINING_LEASE_S):
            # Checked inside the slot: a run that waited behind one on the same data finds nothing to do.
            if skip_unchanged:
                unchanged = check_changes(root, params)
                if unchanged:
                    logger.info(unchanged)
                    return Completed(message=unchanged)
            return run_stages(root, params, force_promote, reason)
    except TimeoutError:
        return Failed(
            message=f"another training run held the concurrency limit {TRAINING_LIMIT!r} for more than "
            f"{wait_timeout_s} s; try again later (see running flow runs in the Prefect UI)."
        )
