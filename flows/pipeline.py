"""Flow `training-pipeline`: preprocess → validate → train → evaluate → register, as Prefect tasks.

Each task calls the library's stage function in this process (so a stage's own error type reaches the
flow: retries can tell a transient failure from bad data, and a failed suite's message becomes the flow's);
the stage records its outputs in dvc.lock itself, so `dvc status` / `dvc repro` agree with what the flow
produced. The stage definitions (deps, outs, params) live only in dvc.yaml, the stage logic only in
src/textops/; this file adds retries, logging, the one-training-at-a-time limit, the "nothing changed" check
and, when asked, the git commit of the data version and metrics.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.states import Completed, Failed
from prefect.tasks import exponential_backoff

from textops.adapters.logs import note, stage
from textops.adapters.tracking import Session, lent, session_for
from textops.core.config import Params, load_params
from textops.core.env import set_offline_env
from textops.core.errors import TextopsError, ValidationFailed
from textops.runtime.training_slot import TRAINING_LIMIT, SlotWaitTimeout, ensure_limit, training_slot

TRAIN_RETRIES = 2


def project(project_dir: str | Path, params_file: str, overrides: list[str] | None = None) -> tuple[Path, Params]:
    """The project root (where the params file lives) and its validated params, with OVERRIDES applied. The first
    call of every flow: a flow is an entry point (a worker's flow-run process loads it by path), so this is where
    the offline switches are set, before the stages import MLflow, DVC or transformers."""
    set_offline_env()
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
def check_changes(root: Path, params: Params, session: Session | None = None) -> str | None:
    """A message when the champion was trained on this data version with these params, else None (the quick
    check first: no MLflow import when it is sure)."""
    from textops.registry.noop import nothing_to_retrain, quick_nothing_to_retrain

    return quick_nothing_to_retrain(root, params) or nothing_to_retrain(root, params, session)


# --------------------------------------------------------------------------------------------------
# Stage tasks: call the stage function, record its outputs, return a small summary.


@task(name="preprocess", cache_policy=NO_CACHE)
def preprocess_task(root: Path, params: Params) -> dict:
    from textops.data.preprocess import preprocess
    from textops.data.results import PreprocessResult

    with stage("preprocess", "[1/5]") as done:
        stats = preprocess(root, params)
        done["note"] = PreprocessResult.from_dict(stats).describe()
    return {"rows_out": stats["rows_out"], "splits": stats["splits"], "raw_md5": stats.get("raw_md5")}


@task(name="validate", cache_policy=NO_CACHE)
def validate_task(root: Path, params: Params) -> dict:
    from textops.data.validate import validate

    with stage("validate", "[2/5]") as done:
        summary = validate(root, params)
        done["note"] = f"{summary.get('evaluated', '')} expectations passed; report {summary.get('report', '')}"
    return {k: summary[k] for k in ("evaluated", "report") if k in summary}


@task(
    name="train",
    retries=TRAIN_RETRIES,
    retry_delay_seconds=exponential_backoff(backoff_factor=10),
    retry_jitter_factor=0.5,
    retry_condition_fn=transient_only,
    cache_policy=NO_CACHE,
)
def train_task(root: Path, params: Params, session: Session, fallback: str | None = None) -> dict:
    # The Trainer picks CUDA when the worker's machine has it; nothing to choose here.
    from textops.modeling.results import TrainResult
    from textops.modeling.train import train

    with stage("train", "[3/5]") as done:
        result = train(root, params, fallback, session)
        done["note"] = TrainResult.from_dict(result).describe()
    return result


@task(name="evaluate", cache_policy=NO_CACHE)
def evaluate_task(root: Path, params: Params, session: Session) -> dict:
    from textops.modeling.evaluate import evaluate
    from textops.modeling.results import EvalResult

    with stage("evaluate", "[4/5]") as done:
        result = evaluate(root, params, session)
        done["note"] = EvalResult.from_dict(result).describe()
    return result


@task(name="register", cache_policy=NO_CACHE)
def register_task(root: Path, params: Params, session: Session, force: bool = False, reason: str = "") -> dict:
    from textops.lifecycle.register import register
    from textops.lifecycle.results import RegisterResult
    from textops.registry.registry import promote

    with stage("register", "[5/5]") as done:
        result = register(root, params, session)
        if force and not result["promote"]:  # inside the stage: its line says what happened in the end
            why = reason or "forced by data rollback"
            get_run_logger().info(promote(root, params, result["version"], f"{why} (policy said: {result['reason']})"))
            result = {**result, "promote": True, "forced": True, "reason": why}
        done["note"] = RegisterResult.from_dict(result).describe()
    return result


@task(name="report", cache_policy=NO_CACHE)
def report_task(root: Path, params: Params, summary: dict, session: Session) -> str | None:
    """The run on one page (reports/run.html, also on the MLflow run). A report that cannot be written is a
    warning: the model is registered either way."""
    from textops.data.reports import write_run_report

    try:
        return str(write_run_report(root, params, summary, session))
    except Exception as exc:  # noqa: BLE001 - nothing downstream depends on the page
        note("the run report was not written: %s", exc, warning=True)
        return None


@task(name="commit", cache_policy=NO_CACHE)
def commit_task(root: Path, params: Params, summary: dict) -> str | None:
    """git commit the data version and metrics, naming the model version (a missing git identity is a warning:
    the model and its data are recorded in MLflow either way)."""
    from textops.core.errors import StateError
    from textops.lifecycle.versions import commit_run

    try:
        commit = commit_run(root, params, summary["register"])
    except StateError as exc:
        note("not committed: %s", exc, warning=True)
        return None
    note("committed %s", commit or "nothing (no change)")
    return commit


def outcome(state, what: str = "training-pipeline"):
    """A subflow's final state as the calling flow's own: its message and summary survive (returning the
    state itself would collapse to Prefect's generic "All states completed.")."""
    if state.is_completed():
        return Completed(message=state.message or f"{what} completed", data=state.result(raise_on_failure=False))
    return Failed(message=f"{what} {state.type.value.lower()}: {state.message}")


def fallback_to_baseline(root: Path, params: Params, session: Session, summary: dict) -> None:
    """With model.base auto, a transformer that lost to the TF-IDF baseline on the same test rows is set aside
    (`summary["transformer"]`: its figures) and the tfidf model trained and evaluated in its place, to register."""
    from textops.modeling.model import baseline_fallback

    trained, evaluated = summary["train"].get("base_model") or "", summary["evaluate"]
    reason = baseline_fallback(params.model.base, trained, evaluated, params.promotion.primary_metric)
    if reason is None:
        return
    note("%s", reason)
    figures = {k: evaluated.get(k) for k in ("accuracy", "macro_f1", "run_id")}
    summary["transformer"] = {"base_model": trained, **figures}
    summary["train"] = train_task(root, params, session, fallback=reason)
    summary["evaluate"] = evaluate_task(root, params, session)


def run_stages(root: Path, params: Params, session: Session | None, force_promote: bool, reason: str, commit: bool):
    """The stages in order; a failed data gate ends the run Failed before anything is trained. SESSION: the one the
    CLI lent or the no-op check opened, else one opened once the data passed (the stages share it)."""
    summary: dict = {"preprocess": preprocess_task(root, params)}
    try:
        summary["validate"] = validate_task(root, params)
    except ValidationFailed as exc:
        return Failed(message=f"data validation failed, nothing trained or registered: {exc}")
    session = session_for(root, params, session)
    summary["train"] = train_task(root, params, session)
    summary["evaluate"] = evaluate_task(root, params, session)
    fallback_to_baseline(root, params, session, summary)
    summary["register"] = register_task(root, params, session, force=force_promote, reason=reason)
    summary["report"] = report_task(root, params, summary, session)
    if commit:
        summary["commit"] = commit_task(root, params, summary)
    return summary


@flow(name="training-pipeline", log_prints=True)
def training_pipeline(
    project_dir: str = ".",
    params_file: str = "params.yaml",
    overrides: list[str] | None = None,
    skip_unchanged: bool = True,
    force_promote: bool = False,
    reason: str = "",
    commit: bool = False,
    wait_timeout_s: float | None = 6 * 3600,
    checked: bool = False,
):
    """Preprocess → validate → train → evaluate → register (→ git commit with COMMIT); ends early when nothing
    changed. CHECKED: the caller (`textops run`) found something to retrain just before; checked again only when
    this run waited for the training slot. In-process, the stages share the session `textops run` lent.

    Returns a summary dict, or a Completed("nothing to retrain ...") / Failed(...) state.
    """
    root, params = project(project_dir, params_file, overrides)
    session = lent(root, params)
    logger = get_run_logger()
    ensure_limit()
    try:
        with training_slot(root, wait_timeout_s) as waited:
            # Checked inside the slot: a run that waited behind one on the same data finds nothing to do.
            if skip_unchanged and (waited or not checked):
                unchanged = check_changes(root, params, session)
                if unchanged:
                    logger.info(unchanged)
                    return Completed(message=unchanged)
            return run_stages(root, params, session, force_promote, reason, commit)
    except SlotWaitTimeout:
        return Failed(
            message=f"another training run held the concurrency limit {TRAINING_LIMIT!r} for more than "
            f"{wait_timeout_s} s; try again later (see running flow runs in the Prefect UI)."
        )
