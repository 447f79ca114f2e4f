"""Data versions: what DVC records of the data (the raw pointer `data.dvc` and the `preprocess` stage's entry in
`dvc.lock`), where a version is kept (git commits, and the MLflow run of every model trained on it), listing
them, and restoring one byte-exact.

A training records the working tree's data version on its MLflow run (`dvc.working_version`) and pushes the data
to the DVC remote (`dvc.push_data`), so a model version alone names data that can be restored, with or without a
git commit: `checkout_model_data` writes the recorded pointer and lock entry back and lets DVC restore the
files from the cache or the remote. `checkout_data` does the same from a git revision.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from textops.adapters import dvc, git
from textops.core.artifacts import PREPROCESS_METRICS, atomic_write_text
from textops.core.config import Params
from textops.core.errors import StateError
from textops.data.recovery import backup_dirs, data_lock, drop_backup, journal, read_text

log = logging.getLogger("textops")


def pointers(params: Params) -> tuple[str, ...]:
    """The files that name a data version: the raw pointer, dvc.lock and the preprocess metric."""
    return (dvc.raw_pointer(params), dvc.DVC_LOCK, PREPROCESS_METRICS)


# --------------------------------------------------------------------------------------------------
# the data version of the working tree, recorded with every training


# --------------------------------------------------------------------------------------------------
# listing


def version_at(root: Path, rev: str, params: Params) -> dict:
    """The data version recorded at REV: raw md5 (data.dvc), cleaned md5 (dvc.lock), rows per split."""
    stats_text = git.show(root, rev, PREPROCESS_METRICS)
    stats = json.loads(stats_text) if stats_text else {}
    return {
        "raw_md5": dvc.pointer_md5(git.show(root, rev, dvc.raw_pointer(params))),
        "clean_md5": dvc.lock_out_md5(git.show(root, rev, dvc.DVC_LOCK), "preprocess", params.data.clean_dir),
        "splits": stats.get("splits", {}),
    }


def data_versions(root: Path, params: Params, trained: list[dict] | None = None) -> list[dict]:
    """Every data version: each commit that changed data.dvc or dvc.lock's preprocess output (newest first),
    and each version that trained a model (TRAINED: dicts with raw_md5, clean_md5, splits, version) whether
    committed or not. One entry per (raw md5, cleaned md5), with the model versions trained on it."""
    root = Path(root)
    versions: dict[tuple, dict] = {}
    if git.head(root) is not None:
        log_text = git.git(root, "log", "--format=%H%x09%cI%x09%s", "--", dvc.raw_pointer(params), dvc.DVC_LOCK)
        for line in log_text.splitlines():
            rev, date, subject = line.split("\t", 2)
            version = version_at(root, rev, params)
            key = (version["raw_md5"], version["clean_md5"])
            if version["raw_md5"] is None or key in versions:
                continue  # dvc.lock changed for train/evaluate only, or the same data committed again
            versions[key] = {"rev": rev, "date": date, "subject": subject, "models": [], **version}
    for model in trained or []:
        key = (model["raw_md5"], model["clean_md5"])
        entry = versions.setdefault(
            key,
            {
                "rev": None,
                "date": model.get("date", ""),
                "subject": f"(not committed: restore with `textops data checkout --model {model['version']}`)",
                "models": [],
                **{k: model[k] for k in ("raw_md5", "clean_md5", "splits")},
            },
        )
        entry["models"].append(str(model["version"]))
        if not entry["splits"]:
            entry["splits"] = model["splits"]
    return sorted(versions.values(), key=lambda v: v["date"], reverse=True)


# --------------------------------------------------------------------------------------------------
# restoring


def checkout_data(root: Path, rev: str, params: Params, commit: bool = False, discard: bool = False) -> str:
    """Restore data/ and the cleaned splits as they were at git revision REV (from the DVC cache or the remote);
    with COMMIT, commit the restored pointer files."""
    root = Path(root)
    commit_id = git.resolve_commit(root, rev)
    if not commit_id:
        raise StateError(f"unknown revision {rev!r}: see `textops data versions` for the data versions.")
    pointer = dvc.raw_pointer(params)
    if git.show(root, commit_id, pointer) is None:
        raise StateError(f"{rev} has no {pointer}: there is no data version at that revision.")
    shown = {p: git.show(root, commit_id, p) for p in pointers(params)}
    files = {p: text for p, text in shown.items() if text is not None}
    return restore(root, params, files, f"{commit_id[:8]} ({rev})", commit, discard)


def model_version_files(root: Path, params: Params, version: str) -> dict[str, str]:
    """The pointer files of the data model VERSION was trained on, rebuilt from what its run recorded."""
    from textops.adapters.tracking import connect
    from textops.core import lineage
    from textops.registry.registry import get_version

    session = connect(root, params, experiment=False)
    mv = get_version(session, version)
    tags = session.client.get_run(mv.run_id).data.tags if mv.run_id else {}
    pointer, lock = tags.get(lineage.DATA_POINTER), tags.get(lineage.DATA_PREPROCESS)
    if not pointer:
        raise StateError(
            f"model v{version} was trained before textops recorded data versions on the model (or on untracked "
            "data): restore its data from git with `textops data checkout REV` (see `textops data versions`)."
        )
    files = {dvc.raw_pointer(params): dvc.pointer_text(json.loads(pointer))}
    if lock:
        files[dvc.DVC_LOCK] = dvc.lock_with_stage(read_text(root / dvc.DVC_LOCK), "preprocess", json.loads(lock))
    stats = tags.get(lineage.DATA_PREPROCESS_STATS)
    if stats:
        files[PREPROCESS_METRICS] = stats
    return files


def checkout_model_data(root: Path, params: Params, version: str, commit: bool = False, discard: bool = False) -> str:
    """Restore byte-exact the raw and cleaned data model VERSION was trained on, from what its MLflow run
    recorded and the DVC cache or remote; with COMMIT, commit the restored pointer files."""
    files = model_version_files(Path(root), params, version)
    return restore(Path(root), params, files, f"model v{version}", commit, discard)


def unsaved_data(root: Path, params: Params) -> str | None:
    """The raw md5 of data/ when it is a version nothing else records: data.dvc changed since the last commit
    (an ingest without --commit) and no model was trained on it. A checkout would leave it findable only by that
    hash."""
    from textops.registry.registry import trained_data_versions

    current = read_text(Path(root) / dvc.raw_pointer(params))
    if current is None or current == git.show(root, "HEAD", dvc.raw_pointer(params)):
        return None
    md5 = dvc.pointer_md5(current)
    if md5 is None or dvc.data_rev(root, params, {"pointer": {"md5": md5}}) is not None:
        return None  # an earlier commit holds it (e.g. a checkout of an older version)
    if any(v["raw_md5"] == md5 for v in trained_data_versions(root, params)):
        return None
    return md5


def restore(root: Path, params: Params, files: dict[str, str], label: str, commit: bool, discard: bool = False) -> str:
    """Write FILES (pointer files, relative path -> content) and let DVC restore the data they name. Refuses to
    replace data that nothing records (see unsaved_data) unless DISCARD.

    Only the pointer files and the data they name change. If the data cannot be restored, or the process is
    killed half way, the pointer files and the data are put back (at once, or by the next textops command), so
    nothing stays half-switched.
    """
    if commit:
        git.require_commit(root)  # before anything changes: not a restore left staged and uncommitted
    pointer = dvc.raw_pointer(params)
    unsaved = None if discard else unsaved_data(root, params)
    if unsaved:
        raise StateError(
            f"data/ holds data that is neither committed nor trained on (an ingest since the last commit: {pointer} "
            f"md5 {unsaved}); the checkout would replace it. Commit it first (`git commit {pointer} .gitignore -m "
            "...`), or pass --discard to replace it anyway (its batches stay in the DVC cache under that md5)."
        )
    with_clean = dvc.DVC_LOCK in files and "preprocess" in dvc.stage_names(root)
    targets = dvc.raw_targets(root, params, with_clean=with_clean)
    outs = [d for d in (dvc.tracked_dir(params), params.data.clean_dir) if (root / d).exists()]
    with data_lock(root):
        saved = {p: read_text(root / p) for p in pointers(params)}
        try:
            # The journal puts the pointers and data back if this raises, and the next command does it if
            # the process is killed half way (textops.data.recovery). The data comes back from a hard-linked copy
            # taken first, not from the DVC cache, which need not hold it (a wiped or shared cache).
            with journal(root, "checkout", rev=label, pointer=pointer, pointers=saved, backup=backup_dirs(root, outs)):
                for path, content in files.items():
                    atomic_write_text(root / path, content)
                how = dvc_restore(root, targets)
                how = verify_restored(root, params, files, targets) or how
        except Exception as exc:
            raise StateError(
                f"could not restore the data of {label}: {exc}. data/, {pointer} and dvc.lock are back as they "
                "were; check the DVC remote (`dvc remote list`) and try again."
            ) from exc
        drop_backup(root)
        if with_clean:
            restored_card(root, params)
        if commit:
            try:
                git.commit_files(root, list(files), f"data: restore the data of {label}")
            except StateError as exc:  # the data is restored; only the commit that names it is missing
                log.warning("the restored pointer files were not committed: %s", exc)
    if not with_clean:
        return (
            f"raw data of {label} restored {how}; the cleaned splits were not (no dvc.lock there): run "
            "`textops preprocess` to rebuild them"
        )
    return f"data of {label} restored {how}: data/ and the cleaned splits"


def restored_card(root: Path, params: Params) -> None:
    """The Croissant description of the restored splits, recorded in dvc.lock: the data is restored whatever
    happens here, so a failure is a warning (the next preprocess or training writes it)."""
    from textops.data.croissant import write_current

    try:
        write_current(root, params)
    except Exception as exc:
        log.warning("the restored data's Croissant description was not written: %s", exc)


def expected_dirs(params: Params, files: dict[str, str]) -> list[tuple[str, str]]:
    """(directory, DVC md5) of each directory the pointer FILES name."""
    raw = dvc.pointer_md5(files.get(dvc.raw_pointer(params)))
    clean = dvc.lock_out_md5(files.get(dvc.DVC_LOCK), "preprocess", params.data.clean_dir)
    return [(d, md5) for d, md5 in ((dvc.tracked_dir(params), raw), (params.data.clean_dir, clean)) if md5]


def differences(root: Path, params: Params, files: dict[str, str]) -> dict[str, list[str]]:
    found = {d: dvc.dir_differences(root, d, md5) for d, md5 in expected_dirs(params, files)}
    return {d: diff for d, diff in found.items() if diff}


def verify_restored(root: Path, params: Params, files: dict[str, str], targets: list[str]) -> str | None:
    """Check every restored file against the hashes the version recorded. A file that differs came from a
    damaged object in the local DVC cache: drop the object and fetch it again from the remote. Returns how the
    data came back when it had to be repaired; StateError when it cannot be."""
    bad = differences(root, params, files)
    if not bad:
        return None
    for directory, md5 in expected_dirs(params, files):
        listing = dvc.dir_listing(root, md5) or {}
        for item in bad.get(directory, []):
            kind, _, rel = item.partition(": ")
            if kind == "changed" and rel in listing:
                dvc.cache_path(root, listing[rel]).unlink(missing_ok=True)
                (root / directory / rel).unlink(missing_ok=True)
    log.warning("the local DVC cache held damaged copies of %s; fetching them again from the remote", bad)
    dvc.dvc_fetch(root, targets)
    dvc.dvc_checkout(root, targets)
    still = differences(root, params, files)
    if still:
        raise StateError(
            f"the restored data does not match the hashes its version recorded ({still}); the DVC cache and the "
            "remote hold damaged copies"
        )
    return "after fetching damaged files again from the DVC remote"


def dvc_restore(root: Path, targets: list[str]) -> str:
    """Check TARGETS out from the local DVC cache, fetching from the remote what is missing; how it went."""
    try:
        dvc.dvc_checkout(root, targets)
        return "from the local DVC cache"
    except Exception:  # objects not in the local cache: fetch them from the remote first
        dvc.dvc_fetch(root, targets)
        dvc.dvc_checkout(root, targets)
        return "fetched from the DVC remote"


def commit_run(root: Path, params: Params, registered: dict) -> str | None:
    """git commit what a pipeline run leaves for git (data.dvc, dvc.lock, metrics/, DVC's .gitignore entries)
    with a message naming the model version REGISTERED; the new commit's id, or None when nothing changed.
    StateError when git cannot commit (no repository, no identity)."""
    from textops.core.artifacts import TRAIN_METRICS

    root = Path(root)
    metrics_dir = str(Path(TRAIN_METRICS).parent)
    paths = [dvc.raw_pointer(params), dvc.DVC_LOCK, metrics_dir, ".gitignore"]
    decision = "champion" if registered.get("promote") else "not promoted"
    message = f"textops run: {registered.get('name')} v{registered.get('version')} ({decision})"
    return git.head(root) if git.commit_files(root, paths, message) else None


# --------------------------------------------------------------------------------------------------
# removing batches: a new data version without them


def remove_batches(root: Path, params: Params, names: list[str], commit: bool = False) -> str:
    """Take the raw batches NAMES (file names or unique prefixes of them, as in data/raw, or the name of the file a
    batch was ingested from, `data.landing.batch_sources`) out of the data as a new
    data version (`dvc add`, pushed, with COMMIT committed): journaled like an ingest, so a failure or a kill puts
    them back. The removed batches stay in the DVC cache and remote: `data checkout` of an earlier version brings
    them back. Refuses a name that matches no batch or several, and removing every batch."""
    from textops.core.artifacts import raw_batches
    from textops.data.landing import DEMO_MARKER, batch_sources, source_path
    from textops.data.recovery import drop_removed, remove_files
    from textops.lifecycle.ingest import push_raw, track_raw

    root = Path(root)
    if commit:
        git.require_commit(root)
    with data_lock(root):
        dvc.require_untouched_raw(root, params)
        batches = [p.name for p in raw_batches(root, params)]
        sources = batch_sources(root, params)
        chosen = sorted({_one_batch(name, batches, sources) for name in names})
        if len(chosen) == len(batches):
            raise StateError(
                f"removing {', '.join(chosen)} would leave no data: a project needs at least one batch. Ingest the "
                "data that replaces them first, then remove these."
            )
        rels = [f"{params.data.raw_dir}/{name}" for name in chosen]
        rows = sum(len((root / rel).read_bytes().splitlines()) for rel in rels)
        rels += [source_path(rel) for rel in rels if (root / source_path(rel)).exists()]
        marker = root / params.data.raw_dir / DEMO_MARKER  # the demo's marker leaves with the demo's batch
        if marker.exists() and demo_batch(marker) in chosen:
            rels.append(f"{params.data.raw_dir}/{DEMO_MARKER}")
        pointer = dvc.raw_pointer(params)
        saved: dict[str, object] = {"pointer": pointer, "pointer_text": read_text(root / pointer), "batches": []}
        with journal(root, "ingest", **saved, removed=rels):
            remove_files(root, rels)
            track_raw(root, params, f"data: remove {', '.join(chosen)}" if commit else None)
        drop_removed(root)
        push_raw(root, params)
    return (
        f"removed {len(chosen)} batch(es), {rows} rows, from the data: a new data version "
        f"({', '.join(chosen)}; `textops data checkout` of an earlier version brings them back)"
    )


def demo_batch(marker: Path) -> str | None:
    """The batch the demo's marker (`data.landing.DEMO_MARKER`) names."""
    try:
        return json.loads(marker.read_text(encoding="utf-8")).get("batch")
    except (OSError, ValueError, AttributeError):
        return None


def _one_batch(name: str, batches: list[str], sources: dict[str, str]) -> str:
    """The batch NAME names (a file name, a path ending in one, a unique prefix, or the file it came from)."""
    name = Path(name).name
    found = [b for b in batches if b == name or b.startswith(name)] or [b for b in batches if sources.get(b) == name]
    if len(found) == 1:
        return found[0]
    listed = ", ".join(f"{b} ({sources[b]})" if b in sources else b for b in batches[:10])
    listed += ", ..." if len(batches) > 10 else ""
    if not found:
        raise StateError(f"no batch in the data is named {name!r}; the batches are: {listed}.")
    raise StateError(f"{name!r} names {len(found)} batches ({', '.join(found[:5])}): give more of the name.")
