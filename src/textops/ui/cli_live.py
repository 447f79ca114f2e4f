"""The commands beyond the pipeline: `textops monitor`, `feedback` and `label` (what comes back from live
traffic, textops.live), `predict` and `tune` (batch scoring and the search, in-process or on Ray), `explain`.
Registered on the main app by textops.ui.cli; light imports only, as there."""

from __future__ import annotations

from pathlib import Path

import typer

from textops.ui.command import Project, command, fail, json_text, verbose

# CSV/TSV without a header row: columns by position (textops.data.columns.columns_by_position).
NO_HEADER = "No header row: columns by position (default: the text has the longest values"
feedback_app = typer.Typer(help="Labels people gave served answers (POST /feedback).", no_args_is_help=True)
label_app = typer.Typer(help="A labelling queue for Label Studio, from the served texts.", no_args_is_help=True)


@command(feedback_app, "export")
def feedback_export(
    output: Path | None = typer.Option(None, "--output", "-o", help="The CSV (default: landing/feedback-<time>.csv)."),
    *,
    project: Project,
) -> None:
    """Write the live texts people labelled (POST /feedback), not exported before, as a labelled CSV that the
    next retrain ingests from landing/ through the same checks as any file."""
    from textops.live.feedback import export

    r = export(project.root, project.params, output)
    if r["rows"]:
        typer.echo(f"feedback export: {r['rows']} labelled texts -> {r['output']}")
    elif not r.get("set_aside"):
        typer.echo("feedback export: no feedback since the last export")
    if r.get("set_aside"):
        typer.echo(
            f"feedback export: {r['set_aside']} labelled texts set aside (spreadsheet formulas, which the "
            f"ingest refuses) -> {r['set_aside_file']}"
        )


@command(label_app, "queue")
def label_queue(
    n: int = typer.Option(100, "-n", help="How many texts to queue."),
    output: Path = typer.Option(Path("tasks.json"), "--output", "-o", help="Label Studio tasks (.json) or .csv."),
    *,
    project: Project,
) -> None:
    """Queue the served texts the champion is least sure of (no feedback yet, one per text, spread over classes
    and hours) as Label Studio tasks with its answer as a pre-annotation; the labelling config goes beside them
    (.xml). Label Studio's JSON export of the project is read back by `textops ingest EXPORT.json`."""
    from textops.live.labelstudio import label_queue as queue

    r = queue(project.root, project.params, n, output)
    extra = f"; labelling config {Path(r['output']).with_suffix('.xml')}" if r["output"].endswith(".json") else ""
    typer.echo(f"label queue: {r['rows']} texts -> {r['output']}{extra}")


def promote_check(*, project: Project) -> None:
    """Decide on the challenger that waits for live evidence (promotion.live_min_labels): promote it once enough of
    its answers in shadow are labelled and it does not lose to the champion on them (the monitor flow runs this)."""
    from textops.lifecycle.live_promotion import live_check

    typer.echo(f"promote-check: {live_check(project.root, project.params)['message']}")


def add_model_commands(model_app: typer.Typer) -> None:
    """The live-evidence commands of `textops model`."""
    command(model_app, "promote-check")(promote_check)


def add_live_commands(app: typer.Typer) -> None:
    """`textops monitor`: the champion on new texts, landed files or the request log; `textops forget`."""
    command(app, "monitor")(monitor)
    command(app, "forget")(forget)


def forget(
    request_id: list[str] = typer.Option([], "--request-id", help="A served answer's X-Request-Id (repeatable)."),
    client_request_id: list[str] = typer.Option([], "--client-request-id", help="A client's own X-Request-Id."),
    text_file: Path | None = typer.Option(None, help="Texts the person sent, one per line: matched by their hash."),
    containing: list[str] = typer.Option([], "--containing", help="A piece of text the kept texts hold (a name)."),
    *,
    project: Project,
) -> None:
    """Delete one person's rows: from the request log, the feedback on those answers and the answers index
    (docs/privacy.md). Stop `textops serve` first."""
    from textops.live.forget import forget as forget_rows

    if not (request_id or client_request_id or text_file or containing):
        fail("forget: say whose rows: --request-id, --client-request-id, --text-file or --containing.", 2)
    texts = []
    if text_file is not None:
        try:
            texts = [t for t in text_file.read_text(encoding="utf-8").splitlines() if t]
        except (OSError, UnicodeDecodeError) as exc:
            fail(f"forget: cannot read {text_file} ({exc}): one text per line, UTF-8.", 2)
    directory = project.root / project.params.serve.request_log_dir
    r = forget_rows(directory, request_id, client_request_id, texts, containing)
    typer.echo(
        f"forget: {r['requests']} request-log rows, {r['feedback']} feedback rows and {r['answers']} indexed "
        f"answers deleted in {directory} ({r['files_removed']} files left empty, removed)"
    )


def add_scale_commands(app: typer.Typer) -> None:
    """Batch scoring (in-process, or `--engine ray`), explanations and the Ray Tune search."""
    command(app, "predict")(predict)
    command(app, "explain")(explain)
    command(app, "tune")(tune)
    command(app, "distill")(distill)


def distill(
    layers: int | None = typer.Option(
        None, "--layers", help="The student's encoder layers (default: half the champion's)."
    ),
    temperature: float = typer.Option(2.0, "--temperature", help="The softmax temperature of the soft labels."),
    *,
    project: Project,
) -> None:
    """Distill the champion into a student with every other encoder layer, trained on its soft labels (the train
    split and the request log's texts), and register it as the challenger: promoted when it beats the champion, or
    when it is at most promotion.max_distill_drop below it and promotion.min_distill_speedup times faster."""
    from textops.lifecycle.distill import distill as run_distill
    from textops.lifecycle.results import DistillResult

    r = run_distill(project.root, project.params, layers, temperature)
    typer.echo(f"distill: {DistillResult.from_dict(r).describe()}")


def predict_ray(
    project: Project,
    spec: str,
    output: Path,
    version: str | None,
    text_column: str,
    address: str | None,
    overwrite: bool,
) -> None:
    """`textops predict --engine ray` (textops.scale.batch_ray), with a clear message where Ray is not installed."""
    try:
        import ray.data  # noqa: F401  (before quiet_ray_logs: importing it sets up Ray's handlers)
    except ImportError:
        from textops.ui.command import fail

        fail('--engine ray needs Ray: pip install -e ".[ray]" (Ray Data and Tune), then run it again.')
    from textops.scale.batch_ray import predict_on_ray

    quiet_ray_logs()
    r = predict_on_ray(project.root, project.params, spec, output, version, text_column, address, overwrite)
    spread = ", ".join(f"{node[:8]} {n}" for node, n in sorted(r["nodes"].items()))
    typer.echo(
        f"predict: {r['rows']} rows scored with {r['model']} on Ray ({len(r['nodes'])} node(s): {spread}; "
        f"{r['seconds']} s){blank_note(r)} -> {r['output']}"
    )


def tune(
    address: str | None = typer.Option(None, help="The Ray cluster (default: ray.address, RAY_ADDRESS, else local)."),
    apply: bool = typer.Option(False, "--apply", help="Write the best trial's values into params.yaml (a diff)."),
    *,
    project: Project,
) -> None:
    """Search train params (tune.space) on the current cleaned data: Optuna's TPE through Ray Tune, ASHA stopping
    trailing trials; each trial the train stage's training, a child MLflow run; no model is kept or registered."""
    params = project.params  # a bad params file is named before Ray is imported
    try:
        import optuna  # noqa: F401
        import ray.tune  # noqa: F401
    except ImportError:
        from textops.ui.command import fail

        fail('tune needs Ray Tune and Optuna: pip install -e ".[ray]", then run it again.')
    from textops.scale.tune import describe
    from textops.scale.tune import tune as search
    from textops.scale.tune_results import apply_best

    quiet_ray_logs()
    r = search(project.root, params, address, echo=typer.echo, quiet=not verbose())
    metric = r["metric"]
    typer.echo(f"\n  {'val ' + metric:>14}  evals  trial")
    for row in r["trials"]:
        figure = "failed" if row[metric] is None else f"{row[metric]:.4f}"
        typer.echo(f"  {figure:>14}  {row['evaluations']:>5}  {describe(row['config'])}")
    start = r["start"]
    gain = ""
    if start and start[metric] is not None:
        delta = r["best"][metric] - start[metric]
        gain = " (the current params)" if start is r["best"] else f" ({delta:+.4f} over the current params)"
    typer.echo(
        f"tune: best val {metric} {r['best'][metric]:.4f}{gain}: {describe(r['best']['config'])}; "
        f"{len(r['trials'])} trials in run {r['run_id']} (experiment {r['experiment']})"
    )
    if apply:
        diff = apply_best(project.params_path, r["best"]["config"], r["current"], r["searched"])
        typer.echo(diff.rstrip() if diff else f"tune --apply: {project.params_path} already holds the best values")
    elif start is r["best"]:
        typer.echo("tune: the current params are the best of the search: nothing to apply")
    else:
        typer.echo("tune: `textops tune --apply` writes them into params.yaml; `textops run` then trains with them")


def quiet_ray_logs() -> None:
    """Ray's own log lines (per-operator progress every few seconds) go where the libraries' logs go (the log
    file, textops.adapters.logs), not to the console, unless -v."""
    import logging

    if verbose():
        return
    for name in ("ray", "ray.data"):
        logger = logging.getLogger(name)
        logger.handlers = [h for h in logger.handlers if isinstance(h, logging.FileHandler)]
        logger.propagate = True


def monitor(
    files: list[Path] = typer.Argument(None, help="Labelled or unlabelled files (default: the landing directory)."),
    requests: bool = typer.Option(False, "--requests", help="Monitor the request log of `textops serve` instead."),
    as_json: bool = typer.Option(False, "--json", help='Print the result as JSON (top-level "drift": true|false).'),
    *,
    project: Project,
) -> None:
    """Compare new texts with the champion's training data: input drift (length, vocabulary, embeddings, predicted
    classes, confidence), label shift and performance decay; to metrics/monitor.json, an HTML report and MLflow."""

    from textops.lifecycle.monitor import monitor as run_monitor
    from textops.ui.console import format_monitor

    result = run_monitor(project.root, project.params, files or None, requests)
    typer.echo(json_text(result) if as_json else format_monitor(result))


def explain(
    texts: list[str] = typer.Argument(..., help="The texts to explain (quote each one)."),
    model_version: str | None = typer.Option(None, help="Explain this version instead of the champion."),
    target: str | None = typer.Option(None, "--target", help="The class to explain (default: the predicted one)."),
    steps: int | None = typer.Option(
        None, min=2, max=1000, help="Integrated gradients' steps (default: serve.explain_steps)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the explanations as JSON."),
    *,
    project: Project,
) -> None:
    """Which words made the champion (or --model-version) answer as it did: each word's attribution to the logit of
    the predicted class (or --target), by layer integrated gradients from a [PAD] baseline, with the delta (how far
    the attributions' sum is from the logit difference they explain)."""
    from textops.modeling.explain import explain_version
    from textops.ui.console import format_explanations

    result = explain_version(project.root, project.params, texts, model_version, target, steps)
    typer.echo(json_text(result) if as_json else format_explanations(result))


def predict(
    input_path: Path = typer.Argument(..., help="CSV, TSV, Parquet, JSONL (a text column) or .txt (a text per line)."),
    output: Path = typer.Option(..., "--output", "-o", help="Where to write rows + predictions (same formats)."),
    model_version: str | None = typer.Option(None, help="Score with this version instead of the champion."),
    batch_size: int | None = typer.Option(None, min=1, help="Texts per batch (default: evaluate.batch_size)."),
    text_column: str = typer.Option("text", help="The column holding the texts; --no-header: a 0-based position."),
    no_header: bool = typer.Option(False, "--no-header", help=NO_HEADER + ")."),
    engine: str = typer.Option("local", help="local (this process) or ray: a directory or glob too (the [ray] extra)."),
    address: str | None = typer.Option(None, help="--engine ray: the cluster (default: ray.address, RAY_ADDRESS)."),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="--engine ray into a directory: replace the part files an earlier run wrote there."
    ),
    *,
    project: Project,
) -> None:
    """Score a file in batches with the champion (or --model-version), with a progress bar."""
    from textops.modeling.predict import predict_file

    if engine not in ("local", "ray"):
        fail(f"--engine {engine}: local or ray.", 2)
    if engine == "ray":
        return predict_ray(project, str(input_path), output, model_version, text_column, address, overwrite)
    result = predict_file(
        project.root, project.params, input_path, output, model_version, batch_size, text_column, header=not no_header
    )
    taken = f" (texts: column {result['text_column']})" if no_header else ""
    taken += "".join(f" (your column {a} is kept as {b})" for a, b in result["renamed"].items())
    typer.echo(
        f"predict: {result['rows']} rows scored with {result['model']}{taken}{blank_note(result)} -> {result['output']}"
    )


def blank_note(result: dict) -> str:
    """The rows of no text a predict left out, on either engine (textops.data.texts' rule)."""
    n = result.get("blank_rows", 0)
    return f" ({n} row(s) with an empty or blank text left out)" if n else ""
