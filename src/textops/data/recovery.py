"""Crash safety for the commands that change data/ in several steps (`ingest`, `data checkout`).

Each holds the project's data lock (`textops.adapters.locks`, released by the kernel when the process dies) and
writes a journal (`.textops/journal.json`) before its first change, removing it after its last. A journal
found by the next holder of the lock therefore belongs to a process that died half way (SIGKILL, OOM, a lost
machine): `recover` puts back what the journal saved and says what it did, so data/, data.dvc and dvc.lock
agree again. A Python exception takes the same path at once.

`.textops/` is git-ignored and outside data/, so neither git nor DVC ever sees a journal or a staged file.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from textops.adapters import dvc, git
from textops.adapters.locks import DATA_LOCK, LOCK_WAIT_S, STATE_DIR, project_lock, state_dir, state_path
from textops.core.artifacts import atomic_write_json
from textops.core.errors import StateError

JOURNAL_FILE = "journal.json"
STAGING_DIR = "staging"
BACKUP_DIR = "checkout-backup"
REMOVED_DIR = "removed"  # batches an ingest took out of data/ (the demo it replaces), until its journal ends

log = logging.getLogger("textops")


def staging_dir(root: Path) -> Path:
    """Where new batches are written before the rename into data/raw (same file system: the rename is atomic)."""
    return state_dir(root, STAGING_DIR)


@contextmanager
def data_lock(root: Path, wait_s: float = LOCK_WAIT_S) -> Iterator[None]:
    """Hold the project's data lock (one ingest, checkout or preprocess at a time), repairing first what a
    killed holder left half done."""
    with project_lock(root, DATA_LOCK, wait_s):
        for message in recover(root):
            log.warning(message)
        yield


# --------------------------------------------------------------------------------------------------
# the journal


def read_text(path: Path) -> str | None:
    return path.read_text(encoding="utf-8") if path.exists() else None


@contextmanager
def journal(root: Path, op: str, **saved) -> Iterator[None]:
    """Record OP and what it will change (SAVED) until the block ends; undo it if the block raises.

    Call with the data lock held.
    """
    path = state_dir(root) / JOURNAL_FILE
    entry = {"op": op, "pid": os.getpid(), "started": time.strftime("%Y-%m-%d %H:%M:%S"), **saved}
    atomic_write_json(path, entry)
    try:
        yield
    except BaseException:
        message = undo(root, entry)
        path.unlink(missing_ok=True)
        log.warning(message)
        raise
    path.unlink(missing_ok=True)


def recover(root: Path) -> list[str]:
    """Undo what a process that died in an ingest or checkout left half done; one message per repair."""
    root = Path(root)
    messages = []
    staging = state_path(root, STAGING_DIR)
    leftovers = list(staging.glob("*")) if staging.is_dir() else []
    for path in leftovers:
        path.unlink(missing_ok=True)
    path = state_path(root, JOURNAL_FILE)
    if path.exists():
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            entry = {"op": "unknown"}
        if not isinstance(entry, dict):
            entry = {"op": "unknown"}
        messages.append(
            f"found an interrupted `{entry.get('op')}` (pid {entry.get('pid')}, started {entry.get('started')}): "
            + undo(root, entry)
        )
        path.unlink(missing_ok=True)
    elif leftovers:
        messages.append(f"removed {len(leftovers)} partly written file(s) of an interrupted ingest from {staging}")
    drop_backup(root)  # a finished checkout's, if it was killed before removing it
    drop_removed(root)
    return messages


# --------------------------------------------------------------------------------------------------
# undoing each operation


def inside(root: Path, rel: str) -> Path:
    """ROOT/REL, refusing a path the journal should never name (absolute, `..`, through a link): a journal is
    textops' own file, and one that points elsewhere was not written by it."""
    ok = isinstance(rel, str) and not Path(rel).is_absolute()
    if not ok or Path(root).resolve() not in (Path(root) / rel).resolve().parents:
        raise StateError(
            f"{Path(root) / STATE_DIR / JOURNAL_FILE} names {rel!r}, a path outside the project: textops did not "
            "write that journal. Nothing was changed; delete the journal and run the command again."
        )
    return Path(root) / rel


def _restore(root: Path, saved: dict[str, str | None]) -> None:
    """Put the files in SAVED back as they were (absent ones removed) and unstage them."""
    for rel, content in saved.items():
        target = inside(root, rel)
        if content is None:
            target.unlink(missing_ok=True)
        else:
            target.write_text(content, encoding="utf-8")
    git.unstage(root, list(saved))


def undo(root: Path, entry: dict) -> str:
    """Put data/ and its pointer files back as ENTRY saved them; a sentence saying what was done."""
    root = Path(root)
    op = entry.get("op")
    if op == "ingest":
        return _undo_ingest(root, entry)
    if op == "checkout":
        return _undo_checkout(root, entry)
    return "nothing known to undo"


def _undo_ingest(root: Path, entry: dict) -> str:
    pointer = entry["pointer"]
    inside(root, pointer)
    before = entry.get("pointer_text")
    now = read_text(root / pointer)
    committed = git.show(root, "HEAD", pointer)
    if now is not None and now != before and committed == now:
        # It got as far as its git commit: the batches are versioned, only the push may be missing.
        return f"the ingest had completed up to its git commit of {pointer}; kept it (run `dvc push` if needed)."
    removed = 0
    for rel in entry.get("batches", []):
        batch = inside(root, rel)
        if batch.exists():
            batch.unlink()
            removed += 1
    put_back = _put_back_removed(root, entry.get("removed", []))
    _restore(root, {pointer: before})
    back = f", put back the {put_back} file(s) it had taken out" if put_back else ""
    return f"removed {removed} batch(es) it had added to data/{back} and put {pointer} back; nothing was ingested."


def remove_files(root: Path, rels: list[str]) -> None:
    """Take RELS (paths relative to ROOT) out of data/, keeping a hard-linked copy under .textops/removed until
    the journal that names them ends: an undo puts them back (`_put_back_removed`), `drop_removed` forgets them."""
    aside = state_dir(root, REMOVED_DIR)
    for rel in rels:
        source, copy = inside(root, rel), aside / Path(rel).name
        copy.unlink(missing_ok=True)
        try:
            os.link(source, copy)
        except OSError:  # another file system
            shutil.copy2(source, copy)
        source.unlink()


def _put_back_removed(root: Path, rels: list[str]) -> int:
    aside, count = state_path(root, REMOVED_DIR), 0
    for rel in rels:
        target, copy = inside(root, rel), aside / Path(rel).name
        if not target.exists() and copy.exists():
            shutil.copy2(copy, target)
            count += 1
    drop_removed(root)
    return count


def drop_removed(root: Path) -> None:
    shutil.rmtree(state_path(root, REMOVED_DIR), ignore_errors=True)


def backup_dirs(root: Path, dirs: list[str]) -> list[str]:
    """Hard-link copies of DIRS (relative to ROOT) under .textops/checkout-backup: no data is copied, and the
    copies keep the current files alive while DVC replaces or deletes them. Returns DIRS (for the journal)."""
    backup = state_path(root, BACKUP_DIR)
    shutil.rmtree(backup, ignore_errors=True)
    backup = state_dir(root, BACKUP_DIR)

    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:  # another file system (a mounted output dir): copy instead
            shutil.copy2(src, dst)

    for rel in dirs:
        target = backup / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(root / rel, target, copy_function=link, symlinks=True)
    return dirs


def drop_backup(root: Path) -> None:
    shutil.rmtree(state_path(root, BACKUP_DIR), ignore_errors=True)


def _undo_checkout(root: Path, entry: dict) -> str:
    saved: dict[str, str | None] = entry["pointers"]
    backup = state_path(root, BACKUP_DIR)  # before anything is restored: a planted link stops the undo here
    _restore(root, saved)
    dirs = entry.get("backup") or []
    if dirs and all((backup / rel).exists() for rel in dirs):
        for rel in dirs:
            if (backup / rel).is_symlink():
                raise StateError(f"{backup / rel} is a symbolic link: textops did not make it; nothing was moved.")
            shutil.rmtree(inside(root, rel), ignore_errors=True)
            os.replace(backup / rel, root / rel)
        drop_backup(root)
        return f"the data is back as it was before the checkout of {entry.get('rev')} (data/ and the cleaned splits)."
    pointer = entry.get("pointer", "data.dvc")
    targets = [str(root / pointer)] if saved.get(pointer) is not None else []
    if saved.get(dvc.DVC_LOCK) is not None:
        targets.append(f"{root / dvc.DVC_YAML}:preprocess")
    if targets:
        try:
            dvc.dvc_checkout(root, targets)
        except Exception as exc:  # the pointers are back; the data follows with `dvc checkout`
            return f"put the pointer files back, but `dvc checkout` failed ({exc}); run `dvc checkout` by hand."
    return f"the data is back as it was before the checkout of {entry.get('rev')} (data/ and the cleaned splits)."
