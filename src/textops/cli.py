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


@app.callback()
def _setup() -> None:
    """Warnings of the library (e.g. a repaired interrupted ingest) go to stderr, one line each."""
    import logging

    logger = logging.getLogger("textops")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("textops: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def fail(message: str, code: int = 1) -> None:
    """Print a user error as one paragraph on stderr and exit non-zero."""
    from rich.console import Console

    Console(stderr=True, soft_wrap=True).print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def _disk_full(exc: BaseException) -> OSError | None:
    """The ENOSPC/EDQUOT error in EXC's chain (libraries wrap it), if any."""
    import errno

    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return exc
        if "No space left on device" in str(exc):
            return OSError(errno.ENOSPC, "No space left on device")
        exc = exc.__cause__ or exc.__context__
    return None


def user_errors(func):
    """Turn TextopsError (bad data, bad params, failed suite, bad state) and a full disk into a message and a
    non-zero exit code instead of a traceback."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except TextopsError as exc:
            fail(str(exc), exc.exit_code)
        except Exception as exc:
            full = _disk_full(exc)
            if full is None:
                raise
            fail(
                f"no space left on the device ({full.filename or 'while writing outputs'}): `textops "
                f"{func.__name__.replace('_', ' ')}` stopped. Every stage writes its outputs aside and swaps them in "
                "at the end, so what was there before is unchanged, and a training resumes from its last complete "
                "checkpoint. Free some space and run it again."
            )

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
    gate: bool = typer.Option(
        False,
        "--gate/--no-gate",
        help="Also refuse files with which the cleaned data would fail its checks (the retrain flow always does).",
    ),
    params_path: Path = PARAMS_OPTION,
) -> None:
    """Add labelled files to data/raw as immutable batches, `dvc add` them and push to the remote."""
    from textops.data import ingest as ingest_files

    params = load(params_path)
    results = ingest_files(
        paths,
        root_of(params_path),
        params,
        text_column=text_column,
        label_column=label_column,
        commit=commit,
        allow_new_labels=allow_new_labels,
        gate=gate,
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


@app.command()
@user_errors
def train(params_path: Path = PARAMS_OPTION) -> None:
    """Fine-tune model.base on the train split, tracked in MLflow; resumes a killed run (the `train` stage)."""
    from textops.train import train as run_train

    m = run_train(root_of(params_path), load(params_path))
    if m:  # empty on non-zero ranks under torchrun
        typer.echo(
            f"train: val accuracy {m['val_accuracy']:.4f}, macro-F1 {m['val_macro_f1']:.4f} "
            f"({m['global_step']} steps, {m['train_samples_per_second']:.1f} samples/s on {m['device']}"
            f"{', resumed from step ' + str(m['resumed_from_step']) if m['resumed_from_step'] else ''}); "
            f"MLflow run {m['run_id']}"
        )


@app.command()
@user_errors
def evaluate(params_path: Path = PARAMS_OPTION) -> None:
    """Score the test split; metrics, plots and errors to metrics/, artifacts/eval and the MLflow run."""
    from textops.evaluate import evaluate as run_evaluate

    m = run_evaluate(root_of(params_path), load(params_path))
    typer.echo(
        f"evaluate: test accuracy {m['accuracy']:.4f}, macro-F1 {m['macro_f1']:.4f} on {m['rows']} rows "
        f"({m['texts_per_second']:.0f} texts/s); MLflow run {m['run_id']}"
    )


@data_app.command("versions")
@user_errors
def data_versions(params_path: Path = PARAMS_OPTION) -> None:
    """One line per data version: git rev, date, raw data hash, rows per split."""
    from textops.registry import models_by_data_version
    from textops.versions import data_versions as list_versions
    from textops.versions import format_versions

    params = load(params_path)
    versions = list_versions(root_of(params_path), params)
    models = models_by_data_version(root_of(params_path), params)  # registry versions trained on each
    for v in versions:
        v["models"] = models.get(v["raw_md5"], [])
    typer.echo(format_versions(versions))


@data_app.command("checkout")
@user_errors
def data_checkout(
    rev: str = typer.Argument(..., help="A git revision (commit, tag, branch) from `textops data versions`."),
    params_path: Path = PARAMS_OPTION,
) -> None:
    """Restore data/ and the cleaned splits byte-exact at REV from the DVC cache or remote."""
    from textops.versions import checkout_data

    typer.echo(checkout_data(root_of(params_path), rev, load(params_path)))


# --------------------------------------------------------------------------------------------------
# registry and serving (src/textops/registry.py, src/textops/serve.py)


@app.command()
@user_errors
def register(params_path: Path = PARAMS_OPTION) -> None:
    """Register the evaluated model as `challenger`; promote it to `champion` if it beats the champion."""
    from textops.registry import register as run_register

    result = run_register(root_of(params_path), load(params_path))
    verdict = "PROMOTED to champion" if result["promote"] else "not promoted"
    typer.echo(f"{result['name']} v{result['version']} (challenger): {verdict}: {result['reason']}")


@model_app.command("list")
@user_errors
def model_list(params_path: Path = PARAMS_OPTION) -> None:
    """Versions with aliases, primary metric, data version, decision and creation time."""
    from textops.registry import format_list, list_versions

    params = load(params_path)
    typer.echo(format_list(list_versions(root_of(params_path), params), params.promotion.primary_metric))


@model_app.command("show")
@user_errors
def model_show(
    version: str = typer.Argument(..., help="A version number from `textops model list`."),
    params_path: Path = PARAMS_OPTION,
) -> None:
    """Lineage of VERSION: data hashes, git commit, params, metrics and the promotion decision (JSON)."""
    import json

    from textops.registry import show_version

    typer.echo(json.dumps(show_version(root_of(params_path), load(params_path), version), indent=2, default=str))


@model_app.command("promote")
@user_errors
def model_promote(
    version: str = typer.Argument(..., help="The version to make champion."),
    reason: str = typer.Option(..., "--reason", help="Why the policy is overridden (recorded in the registry)."),
    params_path: Path = PARAMS_OPTION,
) -> None:
    """Manual override: make VERSION the champion, recording the reason."""
    from textops.registry import promote

    typer.echo(promote(root_of(params_path), load(params_path), version, reason))


@model_app.command("rollback")
@user_errors
def model_rollback(
    to: str | None = typer.Option(None, "--to", help="Version to restore (default: the previous champion)."),
    params_path: Path = PARAMS_OPTION,
) -> None:
    """Make the previous champion (from the promotion history) or --to VERSION the champion again."""
    from textops.registry import rollback

    typer.echo(rollback(root_of(params_path), load(params_path), to))


@app.command()
@user_errors
def serve(
    host: str | None = typer.Option(None, help="Interface to bind (default: serve.host, 127.0.0.1)."),
    port: int | None = typer.Option(None, help="Port (default: serve.port)."),
    model_version: str | None = typer.Option(None, help="Serve this version instead of the champion."),
    params_path: Path = PARAMS_OPTION,
) -> None:
    """Serve the champion over REST with `mlflow models serve` (POST /invocations) until Ctrl-C."""
    from textops.serve import serve as run_serve

    raise typer.Exit(run_serve(root_of(params_path), load(params_path), host, port, model_version))


@app.command()
@user_errors
def predict(
    input_path: Path = typer.Argument(..., help="CSV, TSV, Parquet or JSONL file with a text column."),
    output: Path = typer.Option(..., "--output", "-o", help="Where to write rows + predictions (same formats)."),
    model_version: str | None = typer.Option(None, help="Score with this version instead of the champion."),
    batch_size: int | None = typer.Option(None, help="Texts per batch (default: evaluate.batch_size)."),
    text_column: str = typer.Option("text", help="The column holding the texts."),
    params_path: Path = PARAMS_OPTION,
) -> None:
    """Score a file in batches with the champion (or --model-version), with a progress bar."""
    from textops.serve import predict_file

    result = predict_file(
        root_of(params_path), load(params_path), input_path, output, model_version, batch_size, text_column
    )
    typer.echo(f"predict: {result['rows']} rows scored with {result['model']} -> {result['output']}")


# --------------------------------------------------------------------------------------------------
# orchestration: the Prefect flows in flows/ (imported here only, never by the library)


def _import_flows(root: Path) -> None:
    """Make `flows` importable (the project's own, else this checkout's) and set Prefect's env first."""
    candidates = [root, Path(__file__).resolve().parents[2]]
    home = next((c for c in candidates if (c / "flows" / "pipeline.py").exists()), None)
    if home is None:
        fail(f"flows/pipeline.py not found in {root}: run textops from the textops repository.")
    if str(home) not in sys.path:
        sys.path.insert(0, str(home))
    from flows import configure_prefect

    configure_prefect(root)


def _finish(state) -> dict:
    """A flow's final state: its summary when it completed; a user error or the failure message otherwise."""
    if state.is_completed():
        result = state.result(raise_on_failure=False)
        return result if isinstance(result, dict) else {"message": state.message}
    error = state.result(raise_on_failure=False)
    if isinstance(error, TextopsError):
        raise error
    fail(f"{state.name}: {state.message}")


def _print_summary(summary: dict) -> None:
    if "register" not in summary:
        typer.echo(summary.get("message") or "done")
        return
    reg, ev = summary["register"], summary.get("evaluate", {})
    metrics = {k: ev[k] for k in ("accuracy", "macro_f1") if isinstance(ev.get(k), int | float)}
    typer.echo(
        f"trained and evaluated: {', '.join(f'{k} {v:.4f}' for k, v in metrics.items()) or ev}; "
        f"registered {reg.get('name')} v{reg['version']}: "
        f"{'now the champion' if reg['promote'] else 'not promoted'} ({reg['reason']})"
    )


@app.command()
@user_errors
def run(
    force: bool = typer.Option(False, "--force", help="Retrain even when data and params equal the champion's."),
    params_path: Path = PARAMS_OPTION,
) -> None:
    """Run the whole pipeline (Prefect flow `training-pipeline`): sample data if data/ is empty, preprocess,
    validate, train, evaluate, register and promote. In-process, or on the server in PREFECT_API_URL."""
    from textops.data import has_raw_data, ingest_sample

    params = load(params_path)
    root = root_of(params_path)
    if not has_raw_data(root, params.data):
        if (root / f"{Path(params.data.raw_dir).parts[0]}.dvc").exists():
            fail(f"{params.data.raw_dir} is empty but data.dvc exists: run `dvc pull` to fetch the data first.")
        typer.echo(f"{params.data.raw_dir} is empty: ingesting the built-in sample ({params.sample.rows} rows)")
        result = ingest_sample(root, params)
        typer.echo(result.describe())
    _import_flows(root)
    from flows.pipeline import training_pipeline

    summary = _finish(training_pipeline(project_dir=str(root), skip_unchanged=not force, return_state=True))
    _print_summary(summary)
    uri = params.mlflow.tracking_uri
    typer.echo(
        "\nnext steps:\n"
        f"  mlflow ui --backend-store-uri {uri} --port 5000     # runs, metrics, the registry\n"
        "  textops model list                                   # versions, aliases, data versions\n"
        "  textops serve                                        # serve the champion over REST\n"
        "  textops ingest NEW.csv --commit && textops run       # retrain on new data\n"
        "  docs/orchestration.md                                # schedules and GPU workers"
    )


@app.command("rollback")
@user_errors
def rollback_data(
    data: str = typer.Option(..., "--data", help="The git revision of the data version (`textops data versions`)."),
    force: bool = typer.Option(False, "--force", help="Promote the retrained model even if the policy would not."),
    reason: str = typer.Option("", help="Why (recorded on the model version when --force promotes)."),
    params_path: Path = PARAMS_OPTION,
) -> None:
    """Roll the data back to REV (flow `data-rollback`): restore it with DVC, retrain, promote."""
    load(params_path)  # a bad params.yaml stops here, before any data moves
    root = root_of(params_path)
    _import_flows(root)
    from flows.rollback import data_rollback

    summary = _finish(data_rollback(data, force=force, reason=reason, project_dir=str(root), return_state=True))
    _print_summary(summary)
    typer.echo(f"data is now at {data}: see `textops data versions`")


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
