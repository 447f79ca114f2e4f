"""The MLflow model registry: who is champion, the champion history, and the model commands (list, show,
promote, rollback). The pure policy is in `textops.core.policy`; the register stage in `textops.lifecycle.register`.

Alias moves are single updates, so a model that had a champion always has one. Every champion change
(automatic, manual, rollback) is appended to the registered model's tag `textops.champion_history`; rollback
replays it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

from textops.adapters.locks import registry_lock
from textops.adapters.tracking import Session, connect, store_exists, tracking_uri
from textops.core import lineage
from textops.core.config import Params
from textops.core.errors import RegistryError
from textops.core.policy import rollback_target
from textops.registry.sqlstore import read_store

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion

HISTORY_MAX = 40  # entries kept in the tag (a tag value is limited to a few kB)


def champion(session: Session) -> ModelVersion | None:
    """The version the `champion` alias points at, or None: read once per session (its snapshot)."""
    return alias_version(session, lineage.CHAMPION_ALIAS)


def alias_version(session: Session, alias: str) -> ModelVersion | None:
    """The version ALIAS points at, or None, as this session first read it (`Session.once`): the no-op check, the
    register stage's comparison and the run report see one champion."""
    from mlflow.exceptions import MlflowException

    def read() -> ModelVersion | None:
        try:
            return session.client.get_model_version_by_alias(session.model_name, alias)
        except MlflowException:
            return None

    return session.once(f"alias:{alias}", read)


def set_alias(session: Session, alias: str, version: str) -> None:
    """Point ALIAS at VERSION; the session's snapshot is read again after."""
    session.client.set_registered_model_alias(session.model_name, alias, str(version))
    session.forget()


def history(session: Session) -> list[dict]:
    """The champion history (oldest first); [] before the first promotion."""
    from mlflow.exceptions import MlflowException

    try:
        raw = session.client.get_registered_model(session.model_name).tags.get(lineage.CHAMPION_HISTORY)
    except MlflowException:
        return []
    return json.loads(raw) if raw else []


def move_champion(session: Session, version: str, kind: str, reason: str, extra: dict | None = None) -> None:
    """Move the alias (one update: there is always a champion), then append the change to the history.

    In this order a process killed between the two writes leaves a history that lacks the last move, which
    `rollback_target` handles (it treats the alias as the newest entry); the other order would leave a
    history naming a champion that never served.
    """
    entry = {"version": str(version), "kind": kind, "reason": reason[:200], "at": int(time.time()), **(extra or {})}
    entries = (history(session) + [entry])[-HISTORY_MAX:]
    set_alias(session, lineage.CHAMPION_ALIAS, version)
    session.client.set_registered_model_tag(session.model_name, lineage.CHAMPION_HISTORY, json.dumps(entries))


def get_version(session: Session, version: str) -> ModelVersion:
    from mlflow.exceptions import MlflowException

    try:
        return session.client.get_model_version(session.model_name, str(version))
    except MlflowException as exc:
        raise RegistryError(f"{session.model_name} has no version {version!r}: see `textops model list`.") from exc


def aliases(session: Session) -> dict[str, str]:
    return {alias: str(v) for alias, v in session.client.get_registered_model(session.model_name).aliases.items()}


def registered_before(session: Session, run_id: str) -> ModelVersion | None:
    """The version already registered from the run RUN_ID (`textops register` run again: by hand after a hold, or
    after a kill between the registration and the alias moves), or None. A run is one model: it gets one version,
    decided again, never a second one. RegistryError when that version is the champion: nothing to decide."""
    found = [mv for mv in session.client.search_model_versions(f"run_id = '{run_id}'") if mv.name == session.model_name]
    if not found:
        return None
    before = min(found, key=lambda mv: int(mv.version))
    current = champion(session)
    if current is not None and str(current.version) == str(before.version):
        raise RegistryError(
            f"run {run_id} is registered already, as {session.model_name} v{before.version}, the champion: nothing "
            "to register. Train a new model with `textops run` (`--force` for the same data and params)."
        )
    return before


def write_version(session: Session, model_uri: str, tags: dict[str, str], before: ModelVersion | None) -> str:
    """Register MODEL_URI with TAGS in one call; or, when its run has a version already (BEFORE), write TAGS over
    that version's: the comparison's tags the new decision lacks are removed, the decision and reason go last."""
    if before is None:
        import mlflow

        from textops.adapters.logs import printed_to_log

        with session.active(), printed_to_log("mlflow"):
            return str(mlflow.register_model(model_uri, session.model_name, tags=tags).version)
    version, client = str(before.version), session.client
    sides = (lineage.champion_key(""), lineage.guard_key(""), lineage.mcnemar_key(""), "slice")  # slice: guards'
    compared = tuple(lineage.evidence_tag(k) for k in sides)
    for key in before.tags or {}:
        if key.startswith(compared) and key not in tags:
            client.delete_model_version_tag(session.model_name, version, key)
    last = (lineage.DECISION, lineage.REASON)
    for key, value in sorted(tags.items(), key=lambda kv: kv[0] in last):
        client.set_model_version_tag(session.model_name, version, key, value)
    return version


# --------------------------------------------------------------------------------------------------
# model commands


def list_versions(root: Path, params: Params, quick: bool = True) -> list[dict]:
    """Every version of the registered model, newest first, with aliases, metric, data version, time. Read from the
    project's SQLite store directly where `sqlstore.read_store` is sure (QUICK: no MLflow import), else from MLflow."""
    found = read_store(root, params) if quick else None
    if found is None:
        session = connect(root, params, experiment=False)
        versions = session.client.search_model_versions(f"name='{session.model_name}'")
        found = {
            "versions": [
                {"version": str(mv.version), "tags": mv.tags, "created_ms": mv.creation_timestamp, "run_id": mv.run_id}
                for mv in versions
            ],
            # search results do not carry aliases on every store: read them from the registered model
            "aliases": aliases(session) if versions else {},
        }
    metric = params.promotion.primary_metric
    rows = [version_row(v, found["aliases"], metric) for v in found["versions"]]
    return sorted(rows, key=lambda r: int(r["version"]), reverse=True)


def version_row(v: dict, by_version: dict[str, str], metric: str) -> dict:
    """One line of `textops model list`: V's version, tags, created_ms and run_id; BY_VERSION: alias -> version."""
    tags = v["tags"]
    return {
        "version": v["version"],
        "aliases": sorted(a for a, n in by_version.items() if str(n) == v["version"]),
        "metric": tags.get(lineage.challenger_evidence(metric), "") or None,
        "raw_md5": tags.get(lineage.challenger_evidence("data.raw_md5"), ""),
        "clean_md5": tags.get(lineage.challenger_evidence("data.clean_md5"), ""),
        "data_rev": tags.get(lineage.challenger_evidence("data.rev"), ""),
        "decision": tags.get(lineage.DECISION, ""),
        "created": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(v["created_ms"] / 1000)),
        "run_id": v["run_id"],
    }


def show_version(root: Path, params: Params, version: str) -> dict:
    """Lineage of one version: data hashes, git commit, params, metrics, and the promotion decision."""
    session = connect(root, params, experiment=False)
    return version_facts(root, session, get_version(session, version))


def version_facts(root: Path, session: Session, mv) -> dict:
    """`show_version` of the model version MV, through an open SESSION."""
    from textops.data.landing import data_licenses

    run = session.client.get_run(mv.run_id)
    t = run.data.tags
    return {
        "name": session.model_name,
        "version": str(mv.version),
        "aliases": sorted(mv.aliases),
        "run_id": mv.run_id,
        "source": mv.source,
        "base_model": t.get(lineage.BASE_MODEL),
        "license": ", ".join(data_licenses(root, t.get(lineage.RAW_MD5))) or None,
        "data": {
            "raw_md5": t.get(lineage.RAW_MD5),
            "clean_md5": t.get(lineage.CLEAN_MD5),
            "rev": t.get(lineage.DATA_REV),
        },
        "git": {
            "commit": t.get(lineage.GIT_COMMIT) or t.get("mlflow.source.git.commit"),
            "dirty": t.get(lineage.GIT_DIRTY),
            "params_md5": t.get(lineage.PARAMS_MD5),
        },
        "params": dict(sorted(run.data.params.items())),
        "metrics": dict(sorted(run.data.metrics.items())),
        "baseline": {  # the evaluation's TF-IDF + logistic regression on the same splits (textops.baseline)
            "model": t.get(lineage.BASELINE),
            **{
                k.removeprefix(lineage.BASELINE_METRIC_PREFIX): v
                for k, v in sorted(run.data.metrics.items())
                if k.startswith(lineage.BASELINE_METRIC_PREFIX)
            },
        },
        "decision": {
            k.removeprefix(lineage.PREFIX): v for k, v in sorted(mv.tags.items()) if k.startswith(lineage.PREFIX)
        },
    }


def promote(root: Path, params: Params, version: str, reason: str) -> str:
    """Manual override: make VERSION the champion, recording who-knows-why in `reason`."""
    if not reason.strip():
        raise RegistryError("a manual promotion needs a reason (--reason).")
    session = connect(root, params, experiment=False)
    with registry_lock(root):
        mv = get_version(session, version)
        session.client.set_model_version_tag(session.model_name, mv.version, lineage.MANUAL_PROMOTION, reason[:500])
        move_champion(session, mv.version, "manual", reason)
    note = workspace_note(root, params, mv)
    return f"{session.model_name} v{mv.version} is now the champion (manual: {reason}){note}"


def rollback(root: Path, params: Params, to: str | None = None) -> str:
    """Make the previous champion (from the history) or version TO the champion again."""
    session = connect(root, params, experiment=False)
    with registry_lock(root):
        current = champion(session)
        if current is None:
            raise RegistryError(f"{session.model_name} has no champion: nothing to roll back.")
        target = str(to) if to is not None else rollback_target(history(session), str(current.version))
        mv = get_version(session, target)
        if str(mv.version) == str(current.version):
            raise RegistryError(f"v{mv.version} is already the champion.")
        source, target_raw = (_raw_md5(session, v.run_id) for v in (current, mv))
        # The data is suspect only when the rollback changed it: between two models of the same data, the person
        # rolled back from the model (nothing_to_retrain still holds that version), not from its data.
        mark = {"from_raw_md5": source} if source and source != target_raw else {}
        move_champion(
            session, mv.version, "rollback", f"rollback from v{current.version}", {"from": str(current.version), **mark}
        )
    note = workspace_note(root, params, mv)
    return f"{session.model_name}: champion rolled back from v{current.version} to v{mv.version}{note}"


def workspace_note(root: Path, params: Params, mv) -> str:
    """What the project's own files describe when the champion is not the last model trained here: metrics/, the
    run page and `dvc plots` belong to that model, not to MV (said, not rewritten: they are that run's outputs)."""
    from textops.core.artifacts import read_run_info
    from textops.core.errors import StateError

    try:
        trained = read_run_info(root, params)["run_id"]
    except StateError:
        return ""
    if trained == mv.run_id:
        return ""
    return (
        f"\nmetrics/, reports/run.html and `dvc plots` still describe the last model trained here (run "
        f"{trained[:12]}), not v{mv.version}: `textops model show {mv.version}` has its figures, and `textops data "
        f"checkout --model {mv.version}` then `textops run --force` would rebuild them"
    )


def trained_data_versions(root: Path, params: Params) -> list[dict]:
    """The data version of every registered model version (raw md5, DVC's md5 of the cleaned splits, rows per
    split, the version, its date), from the version's tags; [] without a store or a registered model."""
    if not store_exists(tracking_uri(root, params)):
        return []
    session = connect(root, params, experiment=False)
    try:
        versions = session.client.search_model_versions(f"name='{session.model_name}'")
    except Exception:  # no registered model yet
        return []
    out = []
    for mv in versions:
        tags = mv.tags
        if lineage.RAW_MD5 not in tags:  # registered before versions carried their data: ask the run
            tags = {**session.client.get_run(mv.run_id).data.tags, **tags} if mv.run_id else tags
        raw = tags.get(lineage.RAW_MD5) or mv.tags.get(lineage.challenger_evidence("data.raw_md5"), "")
        if not raw or raw == "untracked":
            continue
        clean = tags.get(lineage.CLEAN_DVC_MD5)
        out.append(
            {
                "version": str(mv.version),
                "raw_md5": raw,
                "clean_md5": None if clean in (None, "untracked") else clean,
                "splits": json.loads(tags.get(lineage.DATA_SPLITS) or "{}"),
                "date": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(mv.creation_timestamp / 1000)),
                "restorable": lineage.DATA_POINTER in tags,
            }
        )
    return sorted(out, key=lambda v: int(v["version"]))


def artifacts_missing(session: Session, mv: ModelVersion) -> bool:
    """True when a version in a local store has lost its model files (deleted, or a copy of mlruns/ without
    them); a remote store's are assumed present (checking would mean a download)."""
    from mlflow.exceptions import MlflowException

    try:
        location = session.client.get_model_version_download_uri(mv.name, mv.version) or ""
    except MlflowException:
        return True
    if not location.startswith("file://"):
        return False
    return not (Path(location.removeprefix("file://")) / "MLmodel").exists()


def alias_state(session: Session, alias: str) -> dict | None:
    """The version an alias points at, what it was trained on (`lineage.run_state`) and its decision."""
    mv = alias_version(session, alias)
    if mv is None:
        return None
    tags = session.client.get_run(mv.run_id).data.tags if mv.run_id else {}
    return {
        "version": str(mv.version),
        "decision": mv.tags.get(lineage.DECISION, ""),
        "reason": mv.tags.get(lineage.REASON, ""),
        "broken": artifacts_missing(session, mv),
        **lineage.run_state(tags),
    }


def champion_state(root: Path, params: Params) -> dict | None:
    """The champion's version and what it was trained on (`lineage.run_state`); None when there is none."""
    if not store_exists(tracking_uri(root, params)):
        return None
    return alias_state(connect(root, params, experiment=False), lineage.CHAMPION_ALIAS)


def _raw_md5(session: Session, run_id: str | None) -> str:
    return session.client.get_run(run_id).data.tags.get(lineage.RAW_MD5, "") if run_id else ""


def rolled_back_from(session: Session) -> dict[str, str]:
    """Raw-data md5 -> the version a person rolled back from, for every rollback in the champion history that
    also went back to other data: that data is suspect, and a model trained on it again is not promoted without
    a person."""
    out = {}
    for entry in history(session):
        source = entry.get("from")
        if entry.get("kind") == "rollback" and source:
            raw = entry.get("from_raw_md5")
            if raw:
                out[raw] = str(source)
    return out


def rolled_back_versions(session: Session) -> set[str]:
    """Every version a person rolled back from (whatever its data)."""
    return {str(e["from"]) for e in history(session) if e.get("kind") == "rollback" and e.get("from")}
