""" "Nothing to retrain", decided in well under a second for the common case: the project's own SQLite MLflow
store read directly (`textops.registry.sqlstore`: the standard library's sqlite3, read-only), the data version from
data.dvc and the DVC cache, the params fingerprint; no MLflow, Prefect, DVC or torch import.

It answers only when it is sure: the `champion` alias points at a version whose run was trained on the current
data version with the current training params and whose model files are in the project. Anything else (a
tracking server, no champion, a changed input, a rejected challenger, a store MLflow laid out differently, a
moved project) gives None, and `nothing_to_retrain` (below) asks MLflow itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from textops.adapters import dvc
from textops.core.config import Params
from textops.core.lineage import training_fingerprint
from textops.registry.sqlstore import champion_record, model_files_present, store_file

if TYPE_CHECKING:
    from textops.adapters.tracking import Session


def quick_nothing_to_retrain(root: Path, params: Params) -> str | None:
    """The "nothing to retrain" message when the champion was surely trained on this data version with these
    params; None when that is not sure (then ask `nothing_to_retrain`)."""
    db = store_file(root, params)
    raw = dvc.raw_md5(root, params) if db else None
    # [] only when data/ is that version byte for byte
    if db is None or not raw or dvc.raw_changes(root, params) != []:
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


def retrain_check(root: Path, params: Params) -> tuple[str | None, Session | None]:
    """`textops run`'s no-op check: the quick one (no MLflow) and, when it is not sure, MLflow's through the session
    the whole command then uses (returned with the answer; None before the store exists or when the quick check
    answered)."""
    from textops.adapters.tracking import connect, store_exists, tracking_uri

    quick = quick_nothing_to_retrain(root, params)
    if quick:
        return quick, None
    session = connect(root, params) if store_exists(tracking_uri(root, params)) else None
    return nothing_to_retrain(root, params, session), session


def nothing_to_retrain(root: Path, params: Params, session: Session | None = None) -> str | None:
    """A message when a run now would train a model the registry has already judged: the champion, or the last
    challenger (rejected), was trained on the current data version with the current training params. None when
    there is something to train. SESSION: the command's (its snapshot of the aliases is what register compares
    with), else one opened here when the store exists."""
    from textops.adapters import data_version
    from textops.adapters.dvc import require_untouched_raw
    from textops.adapters.tracking import session_for, store_exists, tracking_uri
    from textops.core import lineage
    from textops.registry.registry import alias_state, rolled_back_versions

    require_untouched_raw(root, params)  # a hand edit is a change the pointer does not show
    now = data_version.current_state(root, params)
    if not now["raw_md5"] or (session is None and not store_exists(tracking_uri(root, params))):
        return None
    session = session_for(root, params, session, experiment=False)
    same = {
        alias: state
        for alias in (lineage.CHAMPION_ALIAS, lineage.CHALLENGER_ALIAS)
        if (state := alias_state(session, alias))
        and (state["raw_md5"], state["params_md5"]) == (now["raw_md5"], now["params_md5"])
    }
    champion, challenger = same.get(lineage.CHAMPION_ALIAS), same.get(lineage.CHALLENGER_ALIAS)
    if champion and not champion["broken"]:  # a champion that cannot load is replaced
        return champion_unchanged(champion["version"], now["raw_md5"])
    if challenger and not challenger["broken"]:
        state = challenger
        if state["version"] in rolled_back_versions(session):
            verdict = "rolled back from by a person"
        elif state["decision"] == lineage.REJECTED:
            verdict = f"not promoted ({state['reason']})"
        elif state["decision"] == lineage.AWAITING_LIVE:
            verdict = "waits for live evidence (promotion.live_min_labels; `textops model promote-check`)"
        else:
            return None  # promoted once and no longer champion otherwise: let the registry judge it again
        return (
            f"nothing to retrain: v{state['version']} was trained on this data version with these params and "
            f"{verdict}; change the data or the params, or promote it by hand (`textops model promote "
            f"{state['version']} --reason ...`)"
        )
    return None
