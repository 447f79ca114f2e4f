"""The project's own SQLite MLflow store read directly: the standard library's sqlite3, read-only, no MLflow
import (importing MLflow alone takes seconds, tens of seconds on a loaded machine). The one place that reads
MLflow's tables; for the commands that only look: `textops run`'s no-op check (`registry.noop`), `textops status`
and `textops model list`.

Each reader answers only when it is sure MLflow would read the same: the store is the project's SQLite file (no
tracking server, no MLFLOW_REGISTRY_URI), in one workspace, with the experiment's artifacts in this project (a
moved or copied project's store is first repaired by `relocation.relocate_store`, which `tracking.connect` runs),
and in a layout it knows. Anything else gives None, and the caller asks MLflow.
"""

from __future__ import annotations

import math
import os
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from textops.adapters.tracking import artifact_location, tracking_uri
from textops.core import lineage
from textops.core.config import Params

DELETED = "Deleted_Internal"  # MLflow's mark on a deleted model version (its row stays)
WORKSPACE = "default"  # MLflow's only workspace unless workspaces are enabled


def store_file(root: Path, params: Params) -> Path | None:
    """The SQLite file of the project's store, when the store is one and the registry is in it."""
    if os.environ.get("MLFLOW_REGISTRY_URI"):
        return None
    uri = tracking_uri(root, params)
    if not uri.startswith("sqlite:///"):
        return None
    path = Path(uri.removeprefix("sqlite:///"))
    return path if path.is_file() else None


@contextmanager
def read_only(db: Path) -> Iterator[sqlite3.Connection]:
    """A connection that cannot write (SQLite's mode=ro), waiting up to 5 s for a writer."""
    with closing(sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=5)) as con:
        yield con


def champion_record(db: Path, model_name: str) -> dict | None:
    """The champion's version, model files and run tags read from MLflow's tables; None when it cannot be read."""
    try:
        with read_only(db) as con:
            # One row each, or not sure (MLflow's workspaces can hold the name twice).
            alias = con.execute(
                "SELECT version FROM registered_model_aliases WHERE name = ? AND alias = ?",
                (model_name, lineage.CHAMPION_ALIAS),
            ).fetchall()
            if len(alias) != 1:
                return None
            version = con.execute(
                "SELECT run_id, storage_location FROM model_versions WHERE name = ? AND version = ?",
                (model_name, alias[0][0]),
            ).fetchall()
            if len(version) != 1 or not version[0][0]:
                return None
            alias, version = alias[0], version[0]
            tags = dict(
                con.execute(
                    "SELECT key, value FROM tags WHERE run_uuid = ? AND key IN (?, ?)",
                    (version[0], lineage.RAW_MD5, lineage.PARAMS_MD5),
                ).fetchall()
            )
    except sqlite3.Error:
        return None
    return {"version": str(alias[0]), "location": version[1] or "", **lineage.run_state(tags)}


def model_files_present(location: str, root: Path | None = None) -> bool:
    """The version's MLmodel is at LOCATION (a `file:` URI) and, given ROOT, in that project (a moved project's store
    still names the old place: MLflow's path, `relocation.relocate_store`, repairs it)."""
    from urllib.parse import unquote, urlparse

    parsed = urlparse(location)
    if parsed.scheme != "file" or parsed.netloc not in ("", "localhost"):
        return False
    path = Path(unquote(parsed.path)).resolve()
    return (root is None or Path(root).resolve() in path.parents) and (path / "MLmodel").is_file()


def read_store(root: Path, params: Params, runs: int = 0) -> dict | None:
    """The registered model's versions (`versions`: version, created_ms, run_id, location, tags), its aliases
    (`aliases`: alias -> version) and, with RUNS, the experiment's last RUNS runs (`runs`: as `search_runs`
    orders them, with status, start_ms, tags and metrics) as MLflow would give them; None when not sure."""
    db = store_file(root, params)
    if db is None:
        return None
    try:
        with read_only(db) as con:
            if not _as_mlflow_sees_it(con, root, params):
                return None
            out = _registry(con, params.mlflow.registered_model)
            found = _last_runs(con, params.mlflow.experiment, runs) if runs else []
    except sqlite3.Error:  # locked past the wait, damaged, or a schema this does not know
        return None
    return None if out is None or found is None else {**out, "runs": found}


def _as_mlflow_sees_it(con: sqlite3.Connection, root: Path, params: Params) -> bool:
    """One workspace, and the experiment (if any) keeps its artifacts in this project: `connect` changes nothing."""
    for table in ("registered_models", "experiments"):
        columns = {row[1] for row in con.execute(f"PRAGMA table_info({table})")}
        if not columns:
            return False
        if (
            "workspace" in columns
            and con.execute(
                f"SELECT 1 FROM {table} WHERE workspace IS NOT NULL AND workspace != ? LIMIT 1", (WORKSPACE,)
            ).fetchall()
        ):
            return False
    rows = con.execute("SELECT artifact_location FROM experiments WHERE name = ?", (params.mlflow.experiment,))
    return all(location == artifact_location(root, params) for (location,) in rows.fetchall())


def _registry(con: sqlite3.Connection, model_name: str) -> dict | None:
    if len(con.execute("SELECT 1 FROM registered_models WHERE name = ?", (model_name,)).fetchall()) > 1:
        return None
    rows = con.execute(
        "SELECT version, creation_time, run_id, storage_location, source FROM model_versions "
        "WHERE name = ? AND current_stage != ?",
        (model_name, DELETED),
    ).fetchall()
    versions = {
        str(v): {"version": str(v), "created_ms": created, "run_id": run_id, "location": stored or source, "tags": {}}
        for v, created, run_id, stored, source in rows
    }
    if len(versions) != len(rows):
        return None
    for v, key, value in con.execute(
        "SELECT version, key, value FROM model_version_tags WHERE name = ?", (model_name,)
    ):
        if str(v) in versions:
            versions[str(v)]["tags"][key] = value
    aliases = con.execute("SELECT alias, version FROM registered_model_aliases WHERE name = ?", (model_name,))
    return {"versions": list(versions.values()), "aliases": {a: str(v) for a, v in aliases.fetchall()}}


def _last_runs(con: sqlite3.Connection, experiment: str, limit: int) -> list[dict] | None:
    found = con.execute("SELECT experiment_id FROM experiments WHERE name = ?", (experiment,)).fetchall()
    if len(found) != 1:
        return [] if not found else None
    # search_runs(order_by=["attributes.start_time DESC"]): NULLs last, then MLflow's tie-breaker, the run id.
    rows = con.execute(
        "SELECT run_uuid, status, start_time FROM runs WHERE experiment_id = ? AND lifecycle_stage = "
        "'active' ORDER BY start_time IS NULL, start_time DESC, run_uuid LIMIT ?",
        (found[0][0], limit),
    ).fetchall()
    out = []
    for run_id, status, start in rows:
        tags = dict(con.execute("SELECT key, value FROM tags WHERE run_uuid = ?", (run_id,)).fetchall())
        latest = con.execute("SELECT key, value, is_nan FROM latest_metrics WHERE run_uuid = ?", (run_id,))
        metrics = {key: math.nan if is_nan else value for key, value, is_nan in latest}
        out.append({"run_id": run_id, "status": status, "start_ms": start, "tags": tags, "metrics": metrics})
    return out
