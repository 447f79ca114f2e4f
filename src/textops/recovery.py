"""Crash safety for the commands that change data/ in several steps (`ingest`, `data checkout`), and the
project locks that keep two textops processes from changing data/ or the registry at the same time.

Each holds the project's data lock (an fcntl lock on `.textops/data.lock`, released by the kernel when the
process dies) and writes a journal (`.textops/journal.json`) before its first change, removing it after its
last. A journal found by the next holder of the lock therefore belongs to a process that died half way
(SIGKILL, OOM, a lost machine): `recover` puts back what the journal saved and says what it did, so data/,
data.dvc and dvc.lock agree again. A Python exception takes the same path at once.

`.textops/` is git-ignored and outside data/, so neither git nor DVC ever sees a journal or a staged file.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from textops.errors import StateError

STATE_DIR = ".textops"
LOCK_FILE = "data.lock"
REGISTRY_LOCK_FILE = "registry.lock"
JOURNAL_FILE = "journal.json"
STAGING_DIR = "staging"
LOCK_WAIT_S = 600

log = logging.getLogger("textops")


def state_dir(root: Path) -> Path:
    path = Path(root) / STATE_DIR
    path.mkdir(exist_ok=True)
    return path


def staging_dir(root: Path) -> Path:
    """Where new batches are written before the rename into data/raw (same file system: the rename is atomic)."""
    path = state_dir(root) / STAGING_DIR
    path.mkdir(exist_ok=True)
    return path


@contextmanager
def data_lock(root: Path, wait_s: float = LOCK_WAIT_S) -> Iterator[None]:
    """Hold the project's data lock (one ingest, checkout or preprocess at a time), repairing first what a
    killed holder left half done."""
    with project_lock(root, LOCK_FILE, wait_s):
        for message in recover(root):
            log.warning(message)
        yield


def registry_lock(root: Path):
    """The project's registry lock: registrations, promotions and rollbacks on one machine take turns."""
    return project_lock(Path(root), REGISTRY_LOCK_FILE)


@contextmanager
def project_lock(root: Path, name: str, wait_s: float = LOCK_WAIT_S) -> Iterator[None]:
    """An exclusive lock on `.textops/NAME` for the block; waits up to WAIT_S for another holder.

    fcntl locks belong to the process: the kernel releases them when it dies, so a killed holder never
    leaves a stale lock behind. They cover processes on one machine (a shared file system aside); runs on
    several machines are kept apart by the Prefect concurrency limit instead.
    """
    path = state_dir(root) / name
    with open(path, "a+") as fh:
        deadline = time.monotonic() + wait_s
        announced = False
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not announced:
                    fh.seek(0)
                    log.warning("waiting for another textops data command (%s) to finish", fh.read().strip() or "?")
                    announced = True
                if time.monotonic() > deadline:
                    raise StateError(
                        f"another textops command has held {path} for more than {wait_s:.0f} s; "
                        "if no textops process is running, delete that file and try again."
                    ) from None
                time.sleep(0.2)
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} since {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        fh.flush()
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# --------------------------------------------------------------------------------------------------
# the journal


def _write_json_atomic(path: Path, value: dict) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(value, fh, ensure_ascii=False, indent=2)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def read_text(path: Path) -> str | None:
    return path.read_text(encoding="utf-8") if path.exists() else None


@contextmanager
def journal(root: Path, op: str, **saved) -> Iterator[None]:
    """Record OP and what it will change (SAVED) until the block ends; undo it if the block raises.

    Call with the data lock held.
    """
    path = state_dir(root) / JOURNAL_FILE
    entry = {"op": op, "pid": os.getpid(), "started": time.strftime("%Y-%m-%d %H:%M:%S"), **saved}
    _write_json_atomic(path, entry)
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
    staging = root / STATE_DIR / STAGING_DIR
    leftovers = list(staging.glob("*")) if staging.exists() else []
    for path in leftovers:
        path.unlink(missing_ok=True)
    path = root / STATE_DIR / JOURNAL_FILE
    if path.exists():
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            entry = {"op": "unknown"}
        messages.append(
            f"found an interrupted `{entry.get('op')}` (pid {entry.get('pid')}, started {entry.get('started')}): "
            + undo(root, entry)
        )
        path.unlink(missing_ok=True)
    elif leftovers:
        messages.append(f"removed {len(leftovers)} partly written file(s) of an interrupted ingest from {staging}")
    drop_backup(root)  # a finished checkout's, if it was killed before removing it
    return messages


# --------------------------------------------------------------------------------------------------
# undoing each operation


def _restore(root: Path, saved: dict[str, str | None]) -> None:
    """Put the files in SAVED back as they were (absent ones removed) and unstage them."""
    for rel, content in saved.items():
        target = root / rel
        if content is None:
            target.unlink(missing_ok=True)
        else:
            target.write_text(content, encoding="utf-8")
    from textops.data import _git

    # DVC's autostage may have `git add`-ed them: the index goes back to HEAD's version.
    _git(root, "reset", "-q", "--", *saved)


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
    from textops.data import _git

    pointer = entry["pointer"]
    before = entry.get("pointer_text")
    now = read_text(root / pointer)
    committed = _git(root, "show", f"HEAD:{pointer}")
    if now is not None and now != before and committed.returncode == 0 and committed.stdout == now:
        # It got as far as its git commit: the batches are versioned, only the push may be missing.
        return f"the ingest had completed up to its git commit of {pointer}; kept it (run `dvc push` if needed)."
    removed = 0
    for rel in entry.get("batches", []):
        batch = root / rel
        if batch.exists():
            batch.unlink()
            removed += 1
    _restore(root, {pointer: before})
    return f"removed {removed} batch(es) it had added to data/ and put {pointer} back; nothing was ingested."


BACKUP_DIR = "checkout-backup"


def backup_dirs(root: Path, dirs: list[str]) -> list[str]:
    """Hard-link copies of DIRS (relative to ROOT) under .textops/checkout-backup: no data is copied, and the
    copies keep the current files alive while DVC replaces or deletes them. Returns DIRS (for the journal)."""
    import shutil

    backup = state_dir(root) / BACKUP_DIR
    shutil.rmtree(backup, ignore_errors=True)

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
    import shutil

    shutil.rmtree(Path(root) / STATE_DIR / BACKUP_DIR, ignore_errors=True)


def _undo_checkout(root: Path, entry: dict) -> str:
    import shutil

    saved: dict[str, str | None] = entry["pointers"]
    _restore(root, saved)
    backup = root / STATE_DIR / BACKUP_DIR
    dirs = entry.get("backup") or []
    if dirs and all((backup / rel).exists() for rel in dirs):
        for rel in dirs:
            shutil.rmtree(root / rel, ignore_errors=True)
            os.replace(backup / rel, root / rel)
        drop_backup(root)
        return f"the data is back as it was before the checkout of {entry.get('rev')} (data/ and the cleaned splits)."
    targets = [str(root / "data.dvc")] if saved.get("data.dvc") is not None else []
    if saved.get("dvc.lock") is not None:
        targets.append(f"{root / 'dvc.yaml'}:preprocess")
    if targets:
        from textops.data import _dvc_repo

        try:
            _dvc_repo(root).checkout(targets=targets, force=True)
        except Exception as exc:  # the pointers are back; the data follows with `dvc checkout`
            return f"put the pointer files back, but `dvc checkout` failed ({exc}); run `dvc checkout` by hand."
    return f"the data is back as it was before the checkout of {entry.get('rev')} (data/ and the cleaned splits)."
