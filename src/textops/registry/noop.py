""" "Nothing to retrain", decided in well under a second for the common case: the project's own SQLite MLflow
store read directly (`textops.registry.sqlstore`: the standard library's sqlite3, read-only), the data version from
data.dvc and the DVC cache, the params fingerprint; no MLflow, Prefect, DVC or torch import.

It answers only when it is sure: the `champion` alias points at a version whose run was trained on the current
data version with the current training params and whose model files are in the project. Anything else (a
tracking server, no champion, a changed input, a rejected challenger, a store MLflow laid out differently, a
moved project) gives None, and `registry.nothing_to_retrain` asks MLflow itself.
"""

from __future__ import annotations

from pathlib import Path

from textops.core import dvc_cache, scm
from textops.core.config import Params
from textops.core.lineage import training_fingerprint
from textops.registry.sqlstore import champion_record, model_files_present, store_file


def quick_nothing_to_retrain(root: Path, params: Params) -> str | None:
    """The "nothing to retrain" message when the champion was surely trained on this data version with these
    params; None when that is not sure (then ask `registry.nothing_to_retrain`)."""
    db = store_file(root, params)
    raw = scm.raw_md5(root, params) if db else None
    # [] only when data/ is that version byte for byte
    if db is None or not raw or dvc_cache.raw_changes(root, params) != []:
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
