"""The `textops` command line.

Start-up must stay light (`textops --help` well under a second): each command imports its stage
module, and through it torch, mlflow, dvc or great_expectations, only when it runs.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from textops.errors import TextopsError

if TYPE_CHECKING:
    from textops.config import Params

app = typer.Typer(
    help="Keep a transformers text classifier good over time: ingest, preprocess, validate, train, "
    "evaluate, register, serve.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
data_app = typer.Typer(help="Data versions (DVC): list them, restore one.", no_args_is_help=True)
model_app = typer.Typer(help="The MLflow model registry: list, show, promote, roll back.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(model_app, name="model")

PARAMS_OPTION = typer.Option(Path("params.yaml"), "--params", help="The parameters file.")


def fail(message: str, code: int = 1) -> None:
    """Print a user error as one paragraph on stderr and exit non-zero."""
    from rich.console import Console

    Console(stderr=True, soft_wrap=True).print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def user_errors(func):
    """Turn TextopsError (bad data, bad params, failed suite, bad state) into a message and exit code."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except TextopsError as exc:
            fail(str(exc), exc.exit_code)

    return wrapper


def load(params_path: Path) -> Params:
    from textops.config import load_params

    return load_params(params_path)


def root_of(params_path: Path) -> Path:
    """The project root: where params.yaml lives. Every path in params is relative to it."""
    return params_path.resolve().parent


# --------------------------------------------------------------------------------------------------
# data


@app.command()
@user_errors
def ingest(
    paths: list[Path] = typer.Argument(..., help="Labelled files: CSV, TSV, JSONL or Parquet."),
    text_column: str | None = typer.Option(None, help="Text column (default: data.text_column)."),
    label_column: str | None = typer.Option(None, help="Label column (default: data.label_column)."),
    commit: bool = typer.Option(False, "--commit", help="git commit data.dvc after ingesting."),
    allow_new_labels: bool = typer.Option(False, help="Accept labels the data has not had before."),
    params_path: Path = PARAMS_OPTION,
) -> None:
    """Add labelled files to data/raw as immutable batches, `dvc add` them and push to the remote."""
    from textops.data import ingest as ingest_files

    params = load(params_path)
    results = ingest_files(
        paths,
        root_of(params_path),
        params.data,
        text_column=text_column,
        label_column=label_column,
        commit=commit,
        allow_new_labels=allow_new_labels,
    )
    for r in results:
        typer.echo(r.describe())


@app.command()
@user_errors
def sample(
    ingest_it: bool = typer.Option(True, "--ingest/--no-ingest", help="Ingest the sample into data/raw."),
    output: Path | None = typer.Option(None, help="Also write the sample to this CSV file."),
    params_path: Path = PARAMS_OPTION,
) -> None:
    """Write the embedded default data set (deterministic synthetic reviews) and ingest it."""
    from textops.data import ingest_sample

    params = load(params_path)
    result = ingest_sample(root_of(params_path), params, output=output, ingest_it=ingest_it)
    if result is not None:
        typer.echo(result.describe())


@app.command()
@user_errors
def preprocess(params_path: Path = PARAMS_OPTION) -> None:
    """Clean, deduplicate and split data/raw into train/val/test (the `preprocess` DVC stage)."""
    from textops.data import preprocess as run_preprocess

    params = load(params_path)
    stats = run_preprocess(root_of(params_path), params.data)
    typer.echo(
        f"preprocess: {stats['rows_in']} rows in, {stats['rows_out']} out "
        f"(train {stats['splits']['train']}, val {stats['splits']['val']}, test {stats['splits']['test']}); "
        f"labels: {', '.join(stats['labels'])}"
    )


@app.command()
@user_errors
def validate(params_path: Path = PARAMS_OPTION) -> None:
    """Run the Great Expectations suites on the cleaned splits (the `validate` DVC stage)."""
    from textops.validation import validate_clean

    params = load(params_path)
    summary = validate_clean(root_of(params_path), params)
    typer.echo(
        f"validate: {summary['evaluated']} expectations passed; Data Docs: {summary['data_docs']}"
    )


@data_app.command("versions")
@user_errors
def data_versions(params_path: Path = PARAMS_OPTION) -> None:
    """One line per data version: git rev, date, raw data hash, rows per split."""
    from textops.versions import data_versions as list_versions
    from textops.versions import format_versions

    params = load(params_path)
    typer.echo(format_versions(list_versions(root_of(params_path), params)))


@data_app.command("checkout")
@user_errors
def data_checkout(
    rev: str = typer.Argument(..., help="A git revision (commit, tag, branch) from `textops data versions`."),
    params_path: Path = PARAMS_OPTION,
) -> None:
    """Restore data/ and the cleaned splits byte-exact at REV from the DVC cache or remote."""
    from textops.versions import checkout_data

    load(params_path)
    typer.echo(checkout_data(root_of(params_path), rev))


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
