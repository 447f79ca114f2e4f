""" "Nothing to retrain", decided in well under a second for the common case: the project's own SQLite MLflow
store read directly (the standard library's sqlite3, read-only), the data version from data.dvc and the DVC
cache, the params fingerprint; no MLflow, Prefect, DVC or torch import.

It answers only when it is sure: the `champion` alias points at a version whose run was trained on the current
data version with the current training params and whose model files are in the project. Anything else (a
tracking server, no champion, a changed input, a rejected challenger, a store MLflow laid out differently, a
moved project) gives None, and `registry.nothing_to_retrain` asks MLflow itself.
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from pathlib import Path

from textops.core import lineage, scm
from textops.core.config import Params, training_fingerprint
from textops.core.tracking import tracking_uri


def store_file(root: Path, params: Params) -> Path | None:
    """The SQLite file of the project's store, when the store is one and the registry is in it."""
    if os.environ.get("MLFLOW_REGISTRY_URI"):
        return None
    uri = tracking_uri(root, params)
    if not uri.startswith("sqlite:///"):
        return None
    path = Path(uri.removeprefix("sqlite:///"))
    return path if path.is_file() else None


def champion_record(db: Path, model_name: str) -> dict | None:
    """The champion's version, model files and run tags read from MLflow's tables; None when it cannot be read."""
    try:
        with closing(sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=5)) as con:
            # One row each, or not sure (MLflow's workspaces can hold the name twice).
            alias = con.execute("SELECT version FROM registered_model_aliases WHERE name = ? AND alias = ?",
                                (model_name, lineage.CHAMPION_ALIAS)).fetchall()  # fmt: skip
            if len(alias) != 1:
                return None
            version = con.execute("SELECT run_id, storage_location FROM model_versions WHERE name = ? AND version = ?",
                                  (model_name, alias[0][0])).fetchall()  # fmt: skip
            if len(version) != 1 or not version[0][0]:
                return None
            alias, version = alias[0], version[0]
            tags = dict(con.execute("SELECT key, value FROM tags WHERE run_uuid = ? AND key IN (?, ?)",
                                    (version[0], lineage.RAW_MD5, lineage.PARAMS_MD5)).fetchall())  # fmt: skip
    except sqlite3.Error:
        return None
    return {"version": str(alias[0]), "location": version[1] or "", **lineage.run_state(tags)}


def model_files_present(location: str, root: Path | None = None) -> bool:
    """The version's MLmodel is at LOCATION (a `file:` URI) and, given ROOT, in that project (a moved project's store
    still names the old place: MLflow's path, `tracking.relocate_store`, repairs it)."""
    from urllib.parse import unquote, urlparse

    parsed = urlparse(location)
    if parsed.scheme != "file" or parsed.netloc not in ("", "localhost"):
        return False
    path = Path(unquote(parsed.path)).resolve()
    return (root is None or Path(root).resolve() in path.parents) and (path / "MLmodel").is_file()


def quick_nothing_to_retrain(root: Path, params: Params) -> str | None:
    """The "nothing to retrain" message when the champion was surely trained on this data version with these
    params; None when that is not sure (then ask `registry.nothing_to_retrain`)."""
    db = store_file(root, params)
    raw = scm.raw_md5(root, params) if db else None
    if db is None or not raw or scm.raw_changes(root, params) != []:  # [] only when data/ is that version byte for byte
        return None
    record = champion_record(db, params.mlflow.registered_model)
    now = {"raw_md5": raw, "params_md5": training_fingerprint(params)}
    if record is None or (record["raw_md5"], record["params_md5"]) != (now["raw_md5"], now["params_md5"]):
        return None
    if not model_files_present(record["location"], root):
        return None
    return champion_unchanged(record["version"], raw)


def champion_unchanged(version: str, raw_md5: str) -> str:
    """The message for a champion trained on this data version with these params (both checks say it)."""
    return (
        f"nothing to retrain: champion v{version} was trained on this data version (raw md5 {raw_md5[:12]}) "
        "with these params"
    )
