"""Flow `training-pipeline`: preprocess → validate → train → evaluate → register, as Prefect tasks.

Each task calls the library's stage function in this process (so a stage's own error type reaches the
flow: retries can tell a transient failure from bad data, and a failed suite's message becomes the flow's)
and then records the stage's outputs in dvc.lock with `dvc commit`, so `dvc status` / `dvc repro` agree
with what the flow produced. The stage definitions (deps, outs, params) live only in dvc.yaml, the stage
logic only in src/textops/; this file adds retries, logging, the one-training-at-a-time limit and the
"nothing changed" check.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Loaded by path (`prefect deploy`, a worker: flows/pipeline.py:training_pipeline): make the repo root
# importable so `flows.*` resolves the same way as from `textops run`.
_REPO = str(Path(__file__).resolve().parents[1])
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)

from prefect import flow, get_run_logger, task  # noqa: E402
from prefect.cache_policies import NO_CACHE  # noqa: E402
from prefect.states import Completed, Failed  # noqa: E402
from prefect.tasks import exponential_backoff  # noqa: E402

from textops.config import Params, load_params  # noqa: E402
from textops.errors import TextopsError, ValidationFailed  # noqa: E402

# A global concurrency limit with one slot: two runs never train, evaluate or move aliases at once (the
# second waits for the slot). It covers the whole pipeline because all stages write the same project files.
TRAINING_LIMIT = "textops-training"
TRAIN_RETRIES = 2
NOTHING_TO_RETRAIN = "nothing to retrain"


def project(project_dir: str | Path, params_file: str) -> tuple[Path, Params]:
    """The project root (where params.yaml lives) and its validated params."""
    path = Path(project_dir).resolve() / params_file
    return path.parent, load_params(path)


def transient_only(task, task_run, state) -> bool:
    """Retry condition: retry anything but a TextopsError (bad data, bad params, bad state never heal)."""
    try:
        state.result()
    except TextopsError:
        return False
    except BaseException:
        return True
    return False


def record_stage(root: Path, stage: str) -> bool:
    """`dvc commit STAGE`: write its current deps/outs hashes to dvc.lock (when dvc.yaml defines it)."""
    import yaml

    dvc_yaml = root / "dvc.yaml"
    stages = (yaml.safe_load(dvc_yaml.read_text()) or {}).get("stages", {}) if dvc_yaml.exists() else {}
    if stage not in stages:
        return False
    from dvc.repo import Repo

    # DVC resolves a stage's paths against the working directory, whatever the target says: a flow called
    # from elsewhere (a notebook, a test, a worker without a pull step) would fail with "outside of DVC repo".
    cwd = os.getcwd()
    os.chdir(root)
    try:
        with Repo(str(root)) as repo:
            repo.commit(f"{root / 'dvc.yaml'}:{stage}", force=True)
    finally:
        os.chdir(cwd)
    return True


# --------------------------------------------------------------------------------------------------
# "Nothing changed": the data version and params of the current champion. No torch here.


def params_md5(params: Params) -> str:
    """The params fingerprint training tags runs with (`textops.params_md5`); textops.train imports torch lazily."""
    from textops.train import params_md5 as fingerprint

    return fingerprint(params)


def current_version(root: Path, params: Params) -> dict:
    """What a run now would train on: the raw data's md5 (data.dvc) and the params fingerprint."""
    from textops.data import dvc_md5

    data_dir = Path(params.data.raw_dir).parts[0]
    return {"raw_md5": dvc_md5(root / f"{data_dir}.dvc"), "params_md5": params_md5(params)}


def champion_version(root: Path, params: Params) -> dict | None:
    """The champion's model version and the data/params tags of its run; None when there is no champion."""
    from textops.tracking import tracking_uri

    uri = tracking_uri(root, params)
    # Opening a SQLite store creates it; with no database there is no champion.
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        return None
    from mlflow.exceptions import MlflowException

    from textops.registry import client as registry_client

    client = registry_client(root, params)
    try:
        mv = client.get_model_version_by_alias(params.mlflow.registered_model, "champion")
    except MlflowException:
        return None
    tags = client.get_run(mv.run_id).data.tags if mv.run_id else {}
    return {
        "version": str(mv.version),
        "raw_md5": tags.get("textops.data.raw_md5"),
        "params_md5": tags.get("textops.params_md5"),
    }


@task(name="check-changes", cache_policy=NO_CACHE)
def check_changes(root: Path, params: Params) -> str | None:
    """A message when the champion was trained on this data version with these params, else None."""
    now = current_version(root, params)
    champ = champion_version(root, params)
    logger = get_run_logger()
    if champ is None:
        logger.info("no champion yet: training")
        return None
    if now["raw_md5"] and now["raw_md5"] == champ["raw_md5"] and now["params_md5"] == champ["params_md5"]:
        return (
            f"{NOTHING_TO_RETRAIN}: champion v{champ['version']} was trained on this data version "
            f"(raw md5 {now['raw_md5'][:12]}) with these params"
        )
    logger.info("changed since champion v%s: %s -> %s", champ["version"], champ, now)
    return None


# --------------------------------------------------------------------------------------------------
# Stage tasks: call the stage function, record its outputs, return a small summary.


@task(name="preprocess", cache_policy=NO_CACHE)
def preprocess_task(root: Path, params: Params) -> dict:
    from textops.data import preprocess

    stats = preprocess(root, params.data)
    record_stage(root, "preprocess")
    get_run_logger().info("preprocess: %s rows out, splits %s", stats["rows_out"], stats["splits"])
    return {"rows_out": stats["rows_out"], "splits": stats["splits"], "raw_md5": stats.get("raw_md5")}


@task(name="validate", cache_policy=NO_CACHE)
def validate_task(root: Path, params: Params) -> dict:
    from textops.validation import validate_clean

    try:
        summary = validate_clean(root, params)
    finally:
        # The stage's metric records a failure too; dvc.lock should say what the suites saw.
        try:
            record_stage(root, "validate")
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
    from textops.train import train

    result = train(root, params)
    record_stage(root, "train")
    get_run_logger().info("train: %s", result)
    return result


@task(name="evaluate", cache_policy=NO_CACHE)
def evaluate_task(root: Path, params: Params) -> dict:
    from textops.evaluate import evaluate

    result = evaluate(root, params)
    record_stage(root, "evaluate")
    get_run_logger().info("evaluate: %s", {k: v for k, v in result.items() if not isinstance(v, dict | list)})
    return result


@task(name="register", cache_policy=NO_CACHE)
def register_task(root: Path, params: Params, force: bool = False, reason: str = "") -> dict:
    from textops import registry

    result = registry.register(root, params)
    logger = get_run_logger()
    logger.info("register: v%s %s (%s)", result["version"], "promoted" if result["promote"] else "not promoted",
                result["reason"])
    if force and not result["promote"]:
        why = reason or "forced by data rollback"
        message = registry.promote(root, params, result["version"], f"{why} (policy said: {result['reason']})")
        logger.info(message)
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


@flow(name="training-pipeline", log_prints=True)
def training_pipeline(
    project_dir: str = ".",
    params_file: str = "params.yaml",
    skip_unchanged: bool = True,
    force_promote: bool = False,
    reason: str = "",
    wait_timeout_s: float | None = 6 * 3600,
):
    """Preprocess → validate → train → evaluate → register; ends early when nothing changed.

    Returns a summary dict, or a Completed("nothing to retrain ...") / Failed(...) state.
    """
    from prefect.concurrency.sync import concurrency

    root, params = project(project_dir, params_file)
    logger = get_run_logger()
    ensure_limit()
    try:
        with concurrency(TRAINING_LIMIT, occupy=1, timeout_seconds=wait_timeout_s):
            # Checked inside the slot: a run that waited behind one on the same data finds nothing to do.
            if skip_unchanged:
                unchanged = check_changes(root, params)
                if unchanged:
                    logger.info(unchanged)
                    return Completed(message=unchanged)
            summary: dict = {"preprocess": preprocess_task(root, params)}
            try:
                summary["validate"] = validate_task(root, params)
            except ValidationFailed as exc:
                return Failed(message=f"data validation failed, nothing trained or registered: {exc}")
            summary["train"] = train_task(root, params)
            summary["evaluate"] = evaluate_task(root, params)
            summary["register"] = register_task(root, params, force=force_promote, reason=reason)
            return summary
    except TimeoutError:
        return Failed(
            message=f"another training run held the concurrency limit {TRAINING_LIMIT!r} for more than "
            f"{wait_timeout_s} s; try again later (see running flow runs in the Prefect UI)."
        )

