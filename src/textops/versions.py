"""Data versions: git commits that changed data.dvc or the cleaned outputs in dvc.lock, and restoring one.

A data version is named by a git commit: data.dvc pins the raw batches and dvc.lock the cleaned
splits, so `git show REV:data.dvc` plus the DVC cache (or remote) is enough to rebuild either byte-exact.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from textops import scm
from textops.artifacts import PREPROCESS_METRICS
from textops.config import Params
from textops.errors import StateError
from textops.recovery import backup_dirs, data_lock, drop_backup, journal, read_text

log = logging.getLogger("textops")


def pointers(params: Params) -> tuple[str, ...]:
    """The files that name a data version: the raw pointer, dvc.lock and the preprocess metric."""
    return (scm.raw_pointer(params), scm.DVC_LOCK, PREPROCESS_METRICS)


def version_at(root: Path, rev: str, params: Params) -> dict:
    """The data version recorded at REV: raw md5 (data.dvc), cleaned md5 (dvc.lock), rows per split."""
    stats_text = scm.show(root, rev, PREPROCESS_METRICS)
    stats = json.loads(stats_text) if stats_text else {}
    return {
        "raw_md5": scm.pointer_md5(scm.show(root, rev, scm.raw_pointer(params))),
        "clean_md5": scm.lock_out_md5(scm.show(root, rev, scm.DVC_LOCK), "preprocess", params.data.clean_dir),
        "splits": stats.get("splits", {}),
    }


def data_versions(root: Path, params: Params) -> list[dict]:
    """Newest first: one entry per commit that changed data.dvc or dvc.lock's preprocess output."""
    root = Path(root)
    if scm.head(root) is None:
        return []
    log = scm.git(root, "log", "--format=%H%x09%cI%x09%s", "--", scm.raw_pointer(params), scm.DVC_LOCK)
    versions, seen = [], set()
    for line in log.splitlines():
        rev, date, subject = line.split("\t", 2)
        version = version_at(root, rev, params)
        key = (version["raw_md5"], version["clean_md5"])
        if version["raw_md5"] is None or key in seen:
            continue  # dvc.lock changed for train/evaluate only, or the same data committed again
        seen.add(key)
        versions.append({"rev": rev, "date": date, "subject": subject, **version})
    return versions


def checkout_data(root: Path, rev: str, params: Params, commit: bool = False) -> str:
    """Restore data/ and the cleaned splits as they were at REV, from the DVC cache or the remote; with
    COMMIT, commit the restored pointer files (so a model trained next names a clean commit).

    Only the pointer files (data.dvc, dvc.lock, the preprocess metric) and the data they name change.
    If the data cannot be restored, or the process is killed half way, the pointer files and the data are
    put back (at once, or by the next textops command), so nothing stays half-switched.
    """
    root = Path(root)
    commit_id = scm.resolve_commit(root, rev)
    if not commit_id:
        raise StateError(f"unknown revision {rev!r}: see `textops data versions` for the data versions.")
    pointer = scm.raw_pointer(params)
    if scm.show(root, commit_id, pointer) is None:
        raise StateError(f"{rev} has no {pointer}: there is no data version at that revision.")

    present = [p for p in pointers(params) if scm.show(root, commit_id, p) is not None]
    targets = scm.raw_targets(root, params, with_clean=scm.DVC_LOCK in present)
    outs = [d for d in (scm.tracked_dir(params), params.data.clean_dir) if (root / d).exists()]
    with data_lock(root):
        saved = {p: read_text(root / p) for p in pointers(params)}
        try:
            # The journal puts the pointers and data back if this raises, and the next command does it if
            # the process is killed half way (textops.recovery). The data comes back from a hard-linked copy
            # taken first, not from the DVC cache, which need not hold it (a wiped or shared cache).
            with journal(root, "checkout", rev=rev, pointer=pointer, pointers=saved, backup=backup_dirs(root, outs)):
                scm.git(root, "checkout", commit_id, "--", *present)
                try:
                    scm.dvc_checkout(root, targets)
                    how = "from the local DVC cache"
                except Exception:  # objects not in the local cache: fetch them from the remote first
                    scm.dvc_fetch(root, targets)
                    scm.dvc_checkout(root, targets)
                    how = "fetched from the DVC remote"
        except Exception as exc:
            raise StateError(
                f"could not restore the data of {rev}: {exc}. data/, {pointer} and dvc.lock are back as they were; "
                "check the DVC remote (`dvc remote list`) and try again."
            ) from exc
        drop_backup(root)
        if commit:
            # Only the pointers REV has: a dvc.lock left from a later version would pair REV's raw data with
            # another version's cleaned splits (the pipeline rewrites it anyway).
            try:
                scm.commit_files(root, present, f"data: roll back to {rev}")
            except StateError as exc:  # the data is restored; only the commit that names it is missing
                log.warning("the restored pointer files were not committed: %s", exc)
    return f"data at {commit_id[:8]} ({rev}) restored {how}: data/ and the cleaned splits"
