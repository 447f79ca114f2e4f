"""The `textops` command line.

Start-up must stay light (`textops --help` well under a second): each command imports its stage
module, and through it torch, mlflow, dvc or great_expectations, only when it runs. Every command is
registered with `textops.ui.command.command`: the same --params/-S options, a `Project`, one error mapping.
"""

from __future__ import annotations

from pathlib import Path

import typer

from textops.ui.cli_data import data_app
from textops.ui.cli_live import (
    NO_HEADER,
    add_live_commands,
    add_model_commands,
    add_scale_commands,
    feedback_app,
    label_app,
)
from textops.ui.command import Project, command, fail, finish, json_text, run_flow

app = typer.Typer(
    help="Keep a transformers text classifier good over time: ingest, preprocess, validate, train, "
    "evaluate, register, serve.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
model_app = typer.Typer(help="The MLflow model registry: list, show, promote, roll back.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(model_app, name="model")
add_model_commands(model_app)
app.add_typer(feedback_app, name="feedback")
app.add_typer(label_app, name="label")


@app.callback()
def _setup(
    verbose: bool = typer.Option(
        False, "--verbose", "-v", help="Show the libraries' logs, warnings and progress bars, and tracebacks."
    ),
) -> None:
    """Offline switches first (before any heavy import). Where the output goes: textops.adapters.logs."""
    from textops.core.env import set_offline_env

    set_offline_env()


# --------------------------------------------------------------------------------------------------
# data


@command(app)
def ingest(
    paths: list[Path] = typer.Argument(..., help="Labelled files: CSV, TSV, JSONL or Parquet."),
    text_column: str | None = typer.Option(None, help="Text column (data.text_column); --no-header: a position."),
    label_column: str | None = typer.Option(None, help="Label column (data.label_column); --no-header: a position."),
    no_header: bool = typer.Option(False, "--no-header", help=NO_HEADER + " and the label the fewest distinct ones)."),
    commit: bool = typer.Option(False, "--commit", help="git commit data.dvc after ingesting."),
    allow_new_labels: bool = typer.Option(False, help="Accept labels the data has not had before."),
    allow_relabel: bool = typer.Option(False, help="Accept a file that gives texts in the data other labels."),
    gate: bool = typer.Option(
        False,
        "--gate/--no-gate",
        help="Also refuse files with which the cleaned data would fail its checks (the retrain flow always does).",
    ),
    accept_shift: bool = typer.Option(
        False,
        "--accept-shift",
        help="Skip the champion check: ingest files the champion scores far below its test "
        "accuracy on (you checked their labels).",
    ),
    license: str | None = typer.Option(None, "--license", help="The data's licence (SPDX: CC-BY-4.0), recorded."),
    source: str | None = typer.Option(None, "--source", help="Where the data comes from (a URL or words), recorded."),
    keep_demo: bool = typer.Option(
        False,
        "--keep-demo",
        help="Add to the built-in demo sample instead of replacing it (the first ingest of "
        "your own files into a project that holds only the demo replaces it).",
    ),
    *,
    project: Project,
) -> None:
    """Add labelled files to data/raw as immutable batches, `dvc add` them and push to the remote. Into a project
    whose data is the demo `textops run` ingested, your files replace it."""
    from textops.lifecycle.ingest import ingest_settled as ingest_files

    results = ingest_files(
        paths,
        project.root,
        project.params,
        text_column=text_column,
        label_column=label_column,
        commit=commit,
        allow_new_labels=allow_new_labels,
        gate=gate,
        accept_shift=accept_shift,
        header=not no_header,
        allow_relabel=allow_relabel,
        keep_demo=keep_demo,
        license=license,
        source=source,
    )
    for r in results:
        typer.echo(r.describe())


@command(app)
def sample(
    ingest_it: bool = typer.Option(True, "--ingest/--no-ingest", help="Ingest the sample into data/raw."),
    output: Path | None = typer.Option(None, help="Also write the sample to this CSV file."),
    *,
    project: Project,
) -> None:
    """Write the embedded default data set (deterministic synthetic reviews) and ingest it."""
    from textops.lifecycle.ingest import ingest_sample

    result = ingest_sample(project.root, project.params, output=output, ingest_it=ingest_it)
    if result is not None:
        typer.echo(result.describe())


@command(app)
def preprocess(*, project: Project) -> None:
    """Clean, deduplicate and split data/raw into train/val/test (the `preprocess` DVC stage)."""
    from textops.data.preprocess import preprocess as run_preprocess
    from textops.data.results import PreprocessResult

    stats = run_preprocess(project.root, project.params)
    typer.echo(f"preprocess: {PreprocessResult.from_dict(stats).describe()}")


@command(app)
def validate(*, project: Project) -> None:
    """Run the Great Expectations suites on the cleaned splits (the `validate` DVC stage)."""
    from textops.data.validate import validate as run_validate

    summary = run_validate(project.root, project.params)
    typer.echo(f"validate: {summary['evaluated']} expectations passed; report: {summary['report']}")


@command(app)
def train(*, project: Project) -> None:
    """Fine-tune model.base on the train split, tracked in MLflow; resumes a killed run (the `train` stage)."""
    from textops.modeling.results import TrainResult
    from textops.modeling.train import train as run_train

    m = run_train(project.root, project.params)
    if m:  # empty on non-zero ranks under torchrun
        typer.echo(f"train: {TrainResult.from_dict(m).describe()}")


@command(app)
def evaluate(*, project: Project) -> None:
    """Score the test split; metrics, plots and errors to metrics/, artifacts/eval and the MLflow run."""
    from textops.modeling.evaluate import evaluate as run_evaluate
    from textops.modeling.results import EvalResult

    m = run_evaluate(project.root, project.params)
    typer.echo(f"evaluate: {EvalResult.from_dict(m).describe()}")


# --------------------------------------------------------------------------------------------------
# registry and serving


@command(app)
def register(
    as_json: bool = typer.Option(False, "--json", help="Print the decision and its evidence as JSON."),
    *,
    project: Project,
) -> None:
    """Register the evaluated model as `challenger`; promote it to `champion` if it beats the champion."""
    from textops.lifecycle.register import register as run_register
    from textops.lifecycle.results import RegisterResult

    result = RegisterResult.from_dict(run_register(project.root, project.params))
    typer.echo(json_text(result.to_dict()) if as_json else result.describe())


@command(model_app, "list")
def model_list(*, project: Project) -> None:
    """Versions with aliases, primary metric, data version, decision and creation time."""
    from textops.registry.registry import list_versions
    from textops.ui.console import format_list

    rows = list_versions(project.root, project.params)
    typer.echo(format_list(rows, project.params.promotion.primary_metric))


@command(app)
def status(
    as_json: bool = typer.Option(False, "--json", help="Print the machine-readable status."),
    *,
    project: Project,
) -> None:
    """The project on one screen: champion and challenger, data/, landing files, serving, schedules, last runs."""

    from textops.ui.status import format_status, project_status

    st = project_status(project.root, project.params)
    typer.echo(json_text(st) if as_json else format_status(st, project.params.promotion.primary_metric))


@command(model_app, "show")
def model_show(
    version: str = typer.Argument(..., help="A version number from `textops model list`."),
    card: bool = typer.Option(False, "--card", help="Its model card (Hugging Face's README.md) instead of JSON."),
    *,
    project: Project,
) -> None:
    """Lineage of VERSION: data hashes, git commit, params, metrics and the promotion decision (JSON)."""
    from textops.registry.registry import show_version

    shown = show_version(project.root, project.params, version)
    if card:
        from textops.registry.card import model_card

        return typer.echo(model_card(shown))
    typer.echo(json_text(shown))


@command(app)
def export(
    output: Path = typer.Argument(..., help="A new (or empty) folder."),
    model: str | None = typer.Option(None, "--model", help="The version (default: the champion)."),
    onnx: bool = typer.Option(False, "--onnx", help="Also the ONNX graphs textops serves (onnx/)."),
    *,
    project: Project,
) -> None:
    """A model version as a Hugging Face folder: transformers.pipeline("text-classification", model=FOLDER) loads it
    offline with the same labels; its model card is README.md."""
    from textops.registry.hub_export import export_version

    r = export_version(project.root, project.params, model, output, onnx)
    typer.echo(f"export: v{r['version']} -> {r['output']} ({len(r['files'])} files: {', '.join(r['files'][:6])}...)")


@command(model_app, "promote")
def model_promote(
    version: str = typer.Argument(..., help="The version to make champion."),
    reason: str = typer.Option(..., "--reason", help="Why the policy is overridden (recorded in the registry)."),
    *,
    project: Project,
) -> None:
    """Manual override: make VERSION the champion, recording the reason."""
    from textops.registry.registry import promote

    typer.echo(promote(project.root, project.params, version, reason))


@command(model_app, "rollback")
def model_rollback(
    to: str | None = typer.Option(None, "--to", help="Version to restore (default: the previous champion)."),
    *,
    project: Project,
) -> None:
    """Make the previous champion (from the promotion history) or --to VERSION the champion again."""
    from textops.registry.registry import rollback

    typer.echo(rollback(project.root, project.params, to))


@command(app)
def serve(
    host: str | None = typer.Option(None, help="Interface to bind (default: serve.host, 127.0.0.1)."),
    port: int | None = typer.Option(None, min=1, max=65535, help="Port (default: serve.port)."),
    model_version: str | None = typer.Option(None, help="Serve this version only instead of following the champion."),
    workers: int | None = typer.Option(None, min=1, help="Server processes (default: serve.workers, 1)."),
    *,
    project: Project,
) -> None:
    """Serve the champion over REST (MLflow's scoring protocol, POST /invocations) until Ctrl-C, following
    `champion` as it moves (every serve.poll_seconds, on SIGHUP or POST /reload) without dropping a request."""
    from textops.serving.serve import serve as run_serve

    raise typer.Exit(run_serve(project.root, project.params, host, port, model_version, workers))


# --------------------------------------------------------------------------------------------------
# orchestration: the Prefect flows (flows/, installed as textops.flows; imported here only)


@command(app)
def run(
    force: bool = typer.Option(False, "--force", help="Retrain even when data and params equal the champion's."),
    commit: bool = typer.Option(
        False, "--commit", help="git commit data.dvc, dvc.lock and metrics/ afterwards, naming the model version."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the run's summary as JSON (stage lines on stderr)."),
    *,
    project: Project,
) -> None:
    """Run the whole pipeline (Prefect flow `training-pipeline`): sample data if data/ is empty, preprocess,
    validate, train, evaluate, register and promote. In-process, or on the server in PREFECT_API_URL."""
    import os

    from textops.adapters import dvc, git
    from textops.core.artifacts import has_raw_data
    from textops.ui.console import next_steps, run_summary

    params, root = project.params, project.root
    checked, session = False, None
    if as_json:
        from textops.adapters.logs import stage_lines_to_stderr

        stage_lines_to_stderr()
    if commit:
        git.require_commit(root)
    if not has_raw_data(root, params):
        from textops.lifecycle.ingest import ingest_sample

        if (root / dvc.raw_pointer(params)).exists():
            fail(f"{params.data.raw_dir} is empty but {dvc.raw_pointer(params)} exists: run `dvc pull` first.")
        typer.echo(
            f"{params.data.raw_dir} is empty: ingesting the built-in sample ({params.sample.rows} rows)", err=as_json
        )
        typer.echo(ingest_sample(root, params, demo=True).describe(), err=as_json)
    elif not force and not os.environ.get("PREFECT_API_URL"):
        # Decided before any server starts, first from the SQLite store directly (no MLflow import), then by
        # MLflow when that is not sure: a no-op costs about a second. (With a server the flow records the no-op.)
        from textops.registry.noop import retrain_check

        unchanged, session = retrain_check(root, params)
        if unchanged:
            if as_json:
                return typer.echo(json_text({"nothing_to_retrain": unchanged}))
            typer.echo(f"{unchanged} (`textops run --force` retrains anyway){'; nothing to commit' * commit}")
            return
        checked = True
    # The flow runs in this process: it takes the session the check opened (one store, one champion snapshot).
    state = run_flow(
        project, "pipeline", "training_pipeline", session, skip_unchanged=not force, commit=commit, checked=checked
    )
    summary = finish(state)
    if as_json:
        return typer.echo(json_text(summary))
    typer.echo("\n" + run_summary(summary))
    if "register" in summary:
        typer.echo(next_steps(root, params, summary))


@command(app, "rollback")
def rollback_data(
    data: str | None = typer.Option(None, "--data", help="A git revision of the data (`textops data versions`)."),
    model: str | None = typer.Option(None, "--model", help="Roll back to the data this model version was trained on."),
    force: bool = typer.Option(False, "--force", help="Promote the retrained model even if the policy would not."),
    reason: str = typer.Option("", help="Why (recorded on the model version when --force promotes)."),
    discard: bool = typer.Option(False, "--discard", help="Replace data/ even when it holds an uncommitted ingest."),
    *,
    project: Project,
) -> None:
    """Roll the data back (flow `data-rollback`) to a git revision or to a model version's data: restore it with
    DVC, retrain, promote."""
    from textops.ui.console import run_summary

    if (data is None) == (model is None):
        fail("name one data version: `--data REV` (a git revision) or `--model N` (a model version).", 2)
    project.params  # a bad params file stops here, before any data moves  # noqa: B018
    if data is not None:  # an unknown revision is said before any server starts
        from textops.adapters import git

        if not git.resolve_commit(project.root, data):
            fail(f"unknown revision {data!r}: see `textops data versions` for the data versions.")
    state = run_flow(
        project, "rollback", "data_rollback", rev=data, model=model, force=force, reason=reason, discard=discard
    )
    typer.echo(run_summary(finish(state)))
    where = f"at {data}" if data else f"model v{model}'s"
    typer.echo(f"the data is now {where}: see `textops data versions`")


add_live_commands(app)  # after the pipeline's own commands, in `--help` too
add_scale_commands(app)
