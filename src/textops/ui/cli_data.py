"""`textops data`: the data versions (DVC) listed, restored, and batches taken out. Registered on the main app by
textops.ui.cli; light imports only, as there."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from textops.ui.command import Project, command, fail

data_app = typer.Typer(help="Data versions (DVC): list them, restore one, remove batches.", no_args_is_help=True)


@command(data_app, "versions")
def data_versions(*, project: Project) -> None:
    """One line per data version, committed (git) or trained on (MLflow): rev, date, raw and cleaned data hashes,
    rows per split, the model versions trained on it."""
    from textops.lifecycle.versions import data_versions as list_versions
    from textops.registry.registry import trained_data_versions
    from textops.ui.console import format_versions

    trained = trained_data_versions(project.root, project.params)
    typer.echo(format_versions(list_versions(project.root, project.params, trained)))


@command(data_app, "remove")
def data_remove(
    batches: list[str] = typer.Argument(..., help="Batches of data/raw: file names or unique prefixes (batch-3f2a)."),
    commit: bool = typer.Option(False, "--commit", help="git commit data.dvc afterwards."),
    *,
    project: Project,
) -> None:
    """Take batches out of the data as a new data version (the DVC cache keeps them: `data checkout` of an earlier
    version brings them back)."""
    from textops.lifecycle.versions import remove_batches

    typer.echo(remove_batches(project.root, project.params, batches, commit))


@command(data_app, "checkout")
def data_checkout(
    rev: str | None = typer.Argument(None, help="A git revision (commit, tag, branch) from `textops data versions`."),
    model: str | None = typer.Option(None, "--model", help="Restore the data this model version was trained on."),
    commit: bool = typer.Option(False, "--commit", help="git commit the restored data.dvc and dvc.lock."),
    discard: bool = typer.Option(
        False, "--discard", help="Replace data/ even when it holds an ingest nothing records (not committed)."
    ),
    *,
    project: Project,
) -> None:
    """Restore data/ and the cleaned splits byte-exact, as at git revision REV or as model version --model N was
    trained on (from MLflow alone), from the DVC cache or remote."""
    from textops.lifecycle.versions import checkout_data, checkout_model_data

    if (rev is None) == (model is None):
        fail("name one data version: a git revision (`textops data checkout REV`) or a model version (`--model N`).", 2)
    if model is not None:
        typer.echo(checkout_model_data(project.root, project.params, model, commit=commit, discard=discard))
    elif rev is not None:  # always, by the check above
        typer.echo(checkout_data(project.root, rev, project.params, commit=commit, discard=discard))


@command(data_app, "card")
def data_card(
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Also write it here (it is always kept at artifacts/croissant.json)."
    ),
    *,
    project: Project,
) -> None:
    """The current data version as MLCommons Croissant 1.0 JSON-LD: the cleaned splits with their sha256, the
    label set, the licences, the cleaning in words; `mlcroissant.Dataset(jsonld=FILE)` reads its records. Kept at
    artifacts/croissant.json (the `croissant` stage of dvc.yaml), which preprocess and every training write too."""
    from textops.core.artifacts import croissant_path
    from textops.core.errors import StateError
    from textops.data.croissant import data_card as write_card
    from textops.data.croissant import has_splits, write_current

    if not has_splits(project.root, project.params):
        raise StateError("no cleaned splits to describe: run `textops preprocess` (or `dvc repro preprocess`) first.")
    path = output or croissant_path(project.root, project.params)
    if output is None:
        write_current(project.root, project.params)
        card = json.loads(path.read_text(encoding="utf-8"))
    else:
        card = write_card(project.root, project.params, path)
    sets = [r["name"] for r in card.get("recordSet", [])]
    typer.echo(f"data card: {card.get('identifier')} -> {path} (record sets: {', '.join(sets)})")
