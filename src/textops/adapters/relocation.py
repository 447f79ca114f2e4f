"""SQLite stores on disk: a consistent copy for the migrated templates new projects start from (`backup_sqlite`),
and a moved or copied project's MLflow store repaired: MLflow records artifact locations as absolute paths.
`tracking.connect` runs it on the store it has just checked (one open of the file)."""

from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path

from textops.core.config import Params
from textops.core.params_file import relative_sqlite_path


def artifact_location(root: Path, params: Params) -> str:
    """The artifact root for new experiments, as a file URI under the project root."""
    return (Path(root).resolve() / params.mlflow.artifact_location).as_uri()


# Where MLflow's SQL store keeps absolute artifact locations of a local store.
LOCATION_COLUMNS = (
    ("experiments", "artifact_location"),
    ("runs", "artifact_uri"),
    ("logged_models", "artifact_location"),
    ("model_versions", "storage_location"),
    ("model_versions", "source"),
)


def relocate_store(root: Path, params: Params, con: sqlite3.Connection | None = None) -> str | None:
    """Keep the project's own SQLite store usable after the project directory moved (a new clone path, a renamed
    folder): MLflow records artifact locations as absolute paths, so every run, logged model and model version
    would point at the old place. When the experiment's artifact location names another project directory that
    is gone (moved) or still there (copied: the copy's own artifacts were copied with it), rewrite that prefix to
    this one (one transaction) and say so; None when nothing moved. CON: the store already open (`connect`)."""
    db = relative_sqlite_path(params.mlflow.tracking_uri)
    if db is None or os.environ.get("MLFLOW_TRACKING_URI") or not (Path(root) / db).exists():
        return None  # a server or a store you chose: its locations are yours
    if con is not None:
        return _relocate(root, params, db, con)
    own = sqlite3.connect(Path(root) / db, timeout=10)
    try:
        return _relocate(root, params, db, own)
    finally:
        own.close()


def _relocate(root: Path, params: Params, db: str, con: sqlite3.Connection) -> str | None:
    from textops.core.errors import StateError

    new_root = Path(root).resolve()
    expected = artifact_location(root, params)
    try:
        row = con.execute("SELECT artifact_location FROM experiments WHERE name = ?", (params.mlflow.experiment,))
        found = row.fetchone()
        old = found[0] if found else None
        suffix = "/" + params.mlflow.artifact_location.strip("/")
        if not old or old == expected or not old.startswith("file://") or not old.endswith(suffix):
            return None
        old_root = old.removeprefix("file://")[: -len(suffix)]
        # The store file is inside this project (params cannot point it elsewhere), so an original that still
        # exists means a copy (`cp -a project copy`): left as it is, the copy would write its models into the
        # original's artifacts, and lose its champion when the original is deleted.
        copied = Path(old_root).exists()
        if copied and not (new_root / params.mlflow.artifact_location).is_dir():
            raise StateError(
                f"this project's MLflow store ({db}) records its models in {old_root}: it was copied from there "
                f"without its {params.mlflow.artifact_location}/. Copy that folder "
                "along (or copy the whole project, e.g. `cp -a`), or remove the copied store to start an empty one; "
                "textops will not write into another project's artifacts."
            )
        with con:
            for table, column in LOCATION_COLUMNS:
                for before, after in ((f"file://{old_root}/", f"file://{new_root}/"), (f"{old_root}/", f"{new_root}/")):
                    pattern = before.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
                    con.execute(
                        f'UPDATE "{table}" SET "{column}" = ? || substr("{column}", ?) '
                        f"WHERE \"{column}\" LIKE ? ESCAPE '\\'",
                        (after, len(before) + 1, pattern),
                    )
    except sqlite3.OperationalError:
        return None  # an older or newer MLflow schema: leave it to MLflow
    if copied:
        message = (
            f"the project was copied from {old_root}: this copy's MLflow store now points at its own "
            f"artifacts in {new_root} (the original is untouched)"
        )
    else:
        message = f"the project moved from {old_root} to {new_root}: its MLflow store now points at the new place"
    logging.getLogger("textops").warning(message)
    return message


def backup_sqlite(db: Path, target: Path) -> None:
    """A consistent copy of the SQLite database DB (SQLite's backup API, safe while others use it) at TARGET,
    unless TARGET exists. Failures are left unsaid: a template is only a speed-up."""
    import sqlite3

    if target.is_file():
        return
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        src, dst = sqlite3.connect(db), sqlite3.connect(tmp)
        try:
            src.backup(dst)
        finally:
            src.close()
            dst.close()
        os.replace(tmp, target)
    except (OSError, sqlite3.Error):
        pass
