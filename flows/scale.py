"""Flows `batch-score` and `tune`: the Ray jobs (the `[ray]` extra) as Prefect deployments (prefect.yaml).

`batch-score` scores what is in an input file or directory with the champion, on the cluster `ray.address` names
(a directory or glob, or any input once a cluster is named) or in the worker's process (one file, no cluster), and
writes the scores beside a timestamp under `scored/`; an input that is missing or empty ends "nothing to score".
Its input and output parameters name paths inside the project, and an output that exists already is refused: a
deployment's parameters can come from anyone who may start a run, and a run never replaces what it did not write.
`tune` searches train params (`textops tune`) and, with `apply`, writes the best into the worker checkout's
params.yaml. Both wrap the functions the CLI calls (`textops predict --engine ray`, `textops tune`); this file only
wires them.
"""

from __future__ import annotations

import time
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from textops.flows.pipeline import project, transient_only

from textops.core.errors import DataError


def scored_path(root: Path, source: Path) -> Path:
    """Where a run's scores go: scored/<input name>-<UTC time>, a directory for a directory, else Parquet."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    name = f"{source.name}-{stamp}" if source.is_dir() else f"{source.stem}-{stamp}.parquet"
    return root / "scored" / name


def in_project(root: Path, relative: str, what: str) -> Path:
    """ROOT/RELATIVE, or DataError when it leaves the project (absolute, `..`, a link out of it)."""
    path = (root / relative).resolve()
    if not path.is_relative_to(root.resolve()):
        raise DataError(
            f"batch-score: the {what} {relative!r} is outside the project {root}; name a path inside it (relative "
            "to the project), such as incoming/ or scored/."
        )
    return path


@task(name="score", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=60, retry_condition_fn=transient_only)
def score_task(root: Path, params, source: Path, output: Path, model_version: str | None) -> dict:
    """Score SOURCE into OUTPUT: on Ray where a cluster is named or SOURCE is a directory, else in this process."""
    import os

    logger = get_run_logger()
    if source.is_dir() or params.ray.address or os.environ.get("RAY_ADDRESS"):
        from textops.scale.batch_ray import predict_on_ray

        result = predict_on_ray(root, params, str(source), output, model_version)
        logger.info("%d rows scored on Ray (%d node(s)) -> %s", result["rows"], len(result["nodes"]), output)
    else:
        from textops.modeling.predict import predict_file

        result = predict_file(root, params, source, output, model_version)
        logger.info("%d rows scored in-process -> %s", result["rows"], output)
    return {k: result[k] for k in ("rows", "output", "model")}


@flow(name="batch-score", log_prints=True)
def batch_score(
    input: str = "incoming",
    output: str | None = None,
    model_version: str | None = None,
    project_dir: str = ".",
    params_file: str = "params.yaml",
    overrides: list[str] | None = None,
):
    """Score INPUT (a file or a directory of CSV/TSV/Parquet/JSONL, relative to the project) with the champion (or
    MODEL_VERSION) into OUTPUT (default scored/<input>-<time>)."""
    root, params = project(project_dir, params_file, overrides)
    source = in_project(root, input, "input")
    target = in_project(root, output, "output") if output else None
    if target is not None and target.exists() and (target.is_file() or any(target.iterdir())):
        raise DataError(
            f"batch-score: the output {output!r} exists already; name a new path (or leave it out: "
            "scored/<input>-<time>), so that nothing there is replaced."
        )
    if not source.exists() or (source.is_dir() and not any(p.is_file() for p in source.iterdir())):
        get_run_logger().info("nothing to score in %s", source)
        return {"rows": 0, "output": None}
    return score_task(root, params, source, target or scored_path(root, source), model_version)


@task(name="tune", cache_policy=NO_CACHE)
def tune_task(root: Path, params, apply: bool, params_path: Path) -> dict:
    """`textops tune` on the worker's checkout; with APPLY, the best params into its params.yaml."""
    from textops.scale.tune import describe, tune
    from textops.scale.tune_results import apply_best

    logger = get_run_logger()
    result = tune(root, params, echo=logger.info)
    logger.info(
        "best val %s %.4f: %s", result["metric"], result["best"][result["metric"]], describe(result["best"]["config"])
    )
    if apply:
        diff = apply_best(params_path, result["best"]["config"], result["current"], result["searched"])
        logger.info(diff or "params.yaml already holds the best values")
    return {"run_id": result["run_id"], "best": result["best"]}


@flow(name="tune", log_prints=True)
def tune_flow(
    apply: bool = False, project_dir: str = ".", params_file: str = "params.yaml", overrides: list[str] | None = None
):
    """Search train params (tune.space) on the current cleaned data on Ray (ray.address, else a local Ray); each
    trial a child MLflow run; with APPLY the best go into params.yaml for the next retrain."""
    root, params = project(project_dir, params_file, overrides)
    return tune_task(root, params, apply, root / params_file)
