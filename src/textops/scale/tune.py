"""Hyperparameter search (`textops tune`, the `[ray]` extra): Optuna's TPE proposes train params from `tune.space`
through Ray Tune, and ASHA stops the trials that trail at the same number of evaluations.

Every trial is the train stage's own training (`train.training_arguments` + `train.build_trainer`: the same
Trainer, early stopping, length grouping and logging) on the current cleaned data version, with one extra callback
that reports each val evaluation to Ray Tune. Each trial is a child MLflow run of one parent run (experiment
`<mlflow.experiment>-tune`) that records the data version, the space, every trial and the best. Trials write their
checkpoints under `.textops/tune/` (removed after) and nothing else: no model is saved or registered, the data and
the registry stay as they were, whatever stops the search. On a cluster (`--address`) every node reads the same
project path: a shared checkout (a network file system), as for multi-node training.

The first trial is the current params (when the space holds every one of them), so the search starts from what
`textops run` would train and the table says how much the best trial gains over it. `--apply` writes the best
trial's values for the searched keys that differ from the current ones into params.yaml
(`tune_results.values_to_apply`), showing the diff. A search stopped by Ctrl-C or SIGTERM, or cut short, records
no best, applies nothing, ends its runs KILLED and exits 130/143 (`tune_stop`).
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
from pathlib import Path

from textops.adapters import data_version
from textops.core import lineage
from textops.core.config import Params, TrainParams
from textops.core.errors import DataError, StateError
from textops.scale.tune_results import end_trials, record, summarise
from textops.scale.tune_stop import PoliteStop, SearchStopped, stopped_message, verdict

log = logging.getLogger("textops")
TRIAL_STAGE, TUNE_STAGE = "tune-trial", "tune"


def experiment_name(params: Params) -> str:
    """The MLflow experiment of the search runs: apart from the training runs that `status` lists."""
    return f"{params.mlflow.experiment}-tune"


def search_space(params: Params) -> dict:
    """tune.space as Ray Tune domains."""
    from ray import tune

    kinds = {
        "loguniform": lambda v: tune.loguniform(*v),
        "uniform": lambda v: tune.uniform(*v),
        "int": lambda v: tune.randint(int(v[0]), int(v[1]) + 1),
        "choice": tune.choice,
    }
    return {key: kinds[kind](values) for key, spec in params.tune.space.items() for kind, values in spec.items()}


def current_values(params: Params) -> dict:
    """What the current (resolved) train params hold for each key of tune.space: presets settled."""
    return {key: getattr(params.train, key) for key in params.tune.space}


def start_point(params: Params) -> dict:
    """The current (resolved) train params as the first trial, when the space holds all of them; else {} (Optuna
    takes a start point only with every dimension of the space)."""
    point = {}
    for key, spec in params.tune.space.items():
        (kind, values), value = next(iter(spec.items())), getattr(params.train, key)
        inside = value in values if kind == "choice" else values[0] <= value <= values[1]
        if not inside:
            return {}
        point[key] = int(value) if kind == "int" else value
    return point


def trial_params(params: Params, config: dict, threads: int, checkpoint_dir: str) -> Params:
    """PARAMS with the trial's CONFIG in train (validated like params.yaml), its own threads and checkpoints."""
    train = TrainParams.model_validate(
        {**params.train.model_dump(), **config, "threads": threads, "checkpoint_dir": checkpoint_dir}
    )
    return params.model_copy(update={"train": train})


def reporter(metric: str):
    """A Trainer callback that reports each val evaluation to Ray Tune (ASHA decides on these)."""
    from ray import tune
    from transformers import TrainerCallback

    class TuneReport(TrainerCallback):
        def on_evaluate(self, args, state, control, metrics=None, **kwargs):
            if metrics and f"eval_{metric}" in metrics:
                tune.report(
                    {
                        metric: float(metrics[f"eval_{metric}"]),
                        "epoch": float(state.epoch or 0),
                        "step": state.global_step,
                    }
                )

    return TuneReport()


def run_trial(
    config: dict, *, root: str, params: Params, uri: str, experiment_id: str, parent_run_id: str, work_dir: str
) -> None:
    """One trial, in a Ray worker: the train stage's training with CONFIG, as a child run of PARENT_RUN_ID."""
    import mlflow
    import ray
    from mlflow import MlflowClient
    from ray import tune

    from textops.adapters.tracking import Session, owner_tags
    from textops.core.artifacts import load_train_rows, read_labels
    from textops.core.env import set_offline_env, set_torch_threads
    from textops.modeling.train import build_trainer, log_inputs, training_arguments

    set_offline_env()
    os.environ["TQDM_DISABLE"] = "1"  # Trainer's own bar and metric prints: nobody reads a worker's stdout
    trial = tune.get_context().get_trial_id()
    threads = max(1, int(params.tune.cpus_per_trial))
    params = trial_params(params, config, threads, f"{work_dir}/{trial}")  # relative, as params.yaml's paths
    root_path = Path(root)
    checkpoints = root_path / params.train.checkpoint_dir
    set_torch_threads(threads)
    log.info("tune: trial %s starts: %s", trial, config)
    frame, labels = load_train_rows(root_path, params), read_labels(root_path, params)
    args = training_arguments(params, checkpoints, len(frame))
    args.save_total_limit = 1  # nothing of a trial is kept: the best checkpoint only, for load_best_model_at_end
    trainer = build_trainer(root_path, params, frame, labels, None, args, (reporter(params.tune.metric),))
    session = Session(uri, MlflowClient(tracking_uri=uri, registry_uri=uri), experiment_id, "")
    try:
        with (
            session.active(),
            mlflow.start_run(
                experiment_id=experiment_id, parent_run_id=parent_run_id, run_name=f"trial-{trial}"
            ) as run,
        ):
            tags = {
                lineage.TUNE_TRIAL: trial,
                lineage.TUNE_CONFIG: json.dumps(config),
                **owner_tags(),
                lineage.TUNE_NODE: ray.get_runtime_context().get_node_id(),
            }
            log_inputs(params, tags, trainer, labels, stage=TRIAL_STAGE)
            mlflow.set_tag(lineage.TUNE_STOPPED_EARLY, "true")  # until it ends by itself: ASHA's stop kills the process
            trainer.train()
            evals = [e for e in trainer.state.log_history if f"eval_{params.tune.metric}" in e]
            best = max(evals, key=lambda e: e[f"eval_{params.tune.metric}"])
            mlflow.log_metrics(
                {
                    f"best_{lineage.val_metric(k.removeprefix('eval_'))}": float(v)
                    for k, v in best.items()
                    if k in ("eval_accuracy", "eval_macro_f1", "eval_loss")
                }
            )
            mlflow.set_tag(lineage.TUNE_STOPPED_EARLY, "false")
            log.info("tune: trial %s ended in run %s", trial, run.info.run_id)
    finally:
        shutil.rmtree(checkpoints, ignore_errors=True)


def trial_printer(total: int, metric: str, echo):
    """A Ray Tune callback printing a line per finished trial (the driver's console)."""
    from ray import tune

    class Printer(tune.Callback):
        def __init__(self):
            self.done = 0

        def on_trial_complete(self, iteration, trials, trial, **info):
            self.done += 1
            values = trial.last_result or {}
            evals = values.get("training_iteration", 0)
            best = (trial.metric_analysis.get(metric) or {}).get("max")
            figure = f"val {metric} {best:.4f} after {evals} evaluation(s)" if best is not None else "no evaluation"
            echo(f"tune: trial {self.done}/{total} {describe(trial.config)}: {figure}")

        def on_trial_error(self, iteration, trials, trial, **info):
            self.done += 1
            path = getattr(trial, "error_file", None)
            error = Path(path).read_text(errors="replace").strip() if path and Path(path).is_file() else ""
            log.error("tune: trial %s failed: %s", trial.trial_id, error)
            lines = [line for line in error.splitlines() if line.strip() and not line[0].isspace()]
            why = lines[-1][:300] if lines else "see the log"
            echo(f"tune: trial {self.done}/{total} {describe(trial.config)}: failed: {why}")

    return Printer()


def describe(config: dict) -> str:
    short = {
        "learning_rate": "lr",
        "epochs": "epochs",
        "batch_size": "batch",
        "warmup_ratio": "warmup",
        "weight_decay": "wd",
    }
    return " ".join(
        f"{short[k]}={v:.3g}" if isinstance(v, float) else f"{short[k]}={v}" for k, v in config.items() if k in short
    )


def check_ready(root: Path, params: Params) -> None:
    """The cleaned data must exist: trials train on it and never preprocess (that writes a data version)."""
    from textops.core.artifacts import clean_dir

    if not (clean_dir(root, params) / "labels.json").is_file():
        raise DataError(
            f"{clean_dir(root, params)}: no cleaned data to tune on; run `textops run` (or `textops "
            "preprocess`) first: a search trains on the current cleaned data version."
        )


def make_tuner(
    root: Path, params: Params, start: dict, uri: str, experiment_id: str, parent_run_id: str, work: Path, say
):
    """The Ray Tune search: run_trial with its resources, Optuna's TPE from START (at most tune.max_concurrent trials
    at once), ASHA on the val metric's evaluations, a console line per trial (SAY)."""
    import ray
    from ray import tune as ray_tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.optuna import OptunaSearch

    t = params.tune
    gpus = t.gpus_per_trial
    if gpus is None:
        gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
    if ray.cluster_resources().get("CPU", 0) < t.cpus_per_trial:
        raise StateError(
            f"the Ray cluster has {ray.cluster_resources().get('CPU', 0):g} CPUs, fewer than "
            f"tune.cpus_per_trial = {t.cpus_per_trial:g}: lower it or add nodes."
        )
    searcher = OptunaSearch(metric=t.metric, mode="max", points_to_evaluate=[start] if start else None, seed=t.seed)
    assert params.train.epochs is not None  # tune passes resolved params (model.resolved)
    most_epochs = max([params.train.epochs, *t.space.get("epochs", {}).get("int", [])])
    # An iteration is an evaluation: the longest trial has epochs x evals_per_epoch of them.
    scheduler = ASHAScheduler(
        time_attr="training_iteration",
        max_t=max(1, int(most_epochs * params.train.evals_per_epoch) + 1),
        grace_period=1,
        reduction_factor=2,
    )
    trainable = ray_tune.with_resources(
        ray_tune.with_parameters(
            run_trial,
            root=str(root),
            params=params,
            uri=uri,
            experiment_id=experiment_id,
            parent_run_id=parent_run_id,
            work_dir=str(work.relative_to(root)),
        ),
        {"cpu": t.cpus_per_trial, "gpu": gpus},
    )
    return ray_tune.Tuner(
        trainable,
        param_space=search_space(params),
        tune_config=ray_tune.TuneConfig(
            metric=t.metric,
            mode="max",
            num_samples=t.trials,
            scheduler=scheduler,
            search_alg=ConcurrencyLimiter(searcher, t.max_concurrent),
            reuse_actors=True,
        ),  # torch and transformers imported once a worker
        run_config=ray_tune.RunConfig(
            name="search", storage_path=str(work / "ray"), verbose=0, callbacks=[trial_printer(t.trials, t.metric, say)]
        ),
    )


def log_search(params: Params, tags: dict, choice, start: dict) -> None:
    """The parent run's tags (the data version, the base model CHOICE) and the search's settings as params."""
    import mlflow

    base = lineage.base_model_tags(choice.base, choice.reason, choice.unknown_share, choice.truncated_share)
    mlflow.set_tags({**tags, **base, lineage.STAGE: TUNE_STAGE})
    t = params.tune
    mlflow.log_params(
        {
            "tune.space": json.dumps(t.space),
            "tune.trials": t.trials,
            "tune.metric": t.metric,
            "tune.max_concurrent": t.max_concurrent,
            "tune.seed": t.seed,
            "tune.start": json.dumps(start),
            "model.base": params.model.base,
        }
    )


def tune(root: Path, params: Params, address: str | None = None, echo=print, quiet: bool = True) -> dict:
    """Search tune.space with tune.trials trials (see the module docstring); with QUIET Ray Tune's and Optuna's own
    console output goes to the log, ECHO prints a line per trial. Returns the parent run id, the trials (config,
    best val metric, evaluations, failed), the best and the start point's row."""
    import contextlib
    import sys

    import mlflow
    import optuna

    from textops.adapters.locks import state_dir
    from textops.adapters.tracking import connect, ensure_experiment, owner_tags, reap_stale_runs
    from textops.modeling.model import choose_base, resolved
    from textops.scale.batch_ray import ray_session

    root = Path(root)
    check_ready(root, params)
    t = params.tune
    tags = data_version.lineage_tags(root, params)
    choice = choose_base(root, params)
    params = resolved(root, params, choice)  # the trials train what `textops run` would: base and presets settled
    session = connect(root, params, experiment=False)
    experiment_id = ensure_experiment(session.client, root, params, session.uri, experiment_name(params))
    reap_stale_runs(session.client, experiment_id)  # a killed search's runs: KILLED, not RUNNING for ever
    work = state_dir(root, "tune", time.strftime("%Y%m%d-%H%M%S"))
    start = start_point(params)
    if quiet:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
    stdout = sys.stdout
    say = (lambda line: print(line, file=stdout, flush=True)) if quiet else echo
    cpus = max(1, math.ceil(t.max_concurrent * t.cpus_per_trial))  # a local Ray's: the trials at once
    try:
        with (
            PoliteStop() as stop,
            ray_session(params, address, "run the search", cpus),
            session.active(),
            mlflow.start_run(experiment_id=experiment_id, run_name=f"tune-{work.name}") as parent,
        ):
            stop.arm()  # after ray.init, whose SIGTERM handler exits from wherever the main thread is
            log_search(params, {**tags, **owner_tags()}, choice, start)
            tuner = make_tuner(root, params, start, session.uri, experiment_id, parent.info.run_id, work, say)
            try:
                # Ray Tune prints its tables and paths whatever `verbose` says: into the log file, unless -v.
                with contextlib.redirect_stdout(LogWriter()) if quiet else contextlib.nullcontext():
                    grid = stop.fit(tuner)
                check_complete(grid, stop.signum, t.trials, parent.info.run_id, experiment_name(params))
            except BaseException:  # a failure, a signal, a search cut short: its runs end KILLED, nothing applied
                end_trials(session.client, experiment_id, parent.info.run_id)
                mlflow.end_run("KILLED")
                raise
            outcome = summarise(grid, t.metric, start)
            record(session, parent.info.run_id, experiment_id, outcome, t.metric, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    current = current_values(params)
    return {
        **outcome,
        "current": current,
        "searched": list(t.space),
        "run_id": parent.info.run_id,
        "experiment": experiment_name(params),
    }


def check_complete(grid, signum: int | None, expected: int, run_id: str, experiment: str) -> None:
    """SearchStopped unless GRID (what tuner.fit handed back) ran all EXPECTED trials with no stop signal (SIGNUM)."""
    finished = grid.num_terminated + grid.num_errors
    stopped = verdict(signum, finished, expected)
    if stopped is not None:
        code, why = stopped
        raise SearchStopped(stopped_message(why, len(grid), expected, run_id, experiment), code)


class LogWriter:
    """A stdout that writes lines to textops' log."""

    def write(self, text: str) -> int:
        for line in text.splitlines():
            if line.strip():
                log.info("ray.tune: %s", line)
        return len(text)

    def flush(self) -> None:
        pass
