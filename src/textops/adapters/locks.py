"""Project locks: one data change (ingest, checkout, preprocess) and one registry change at a time.

`filelock` takes an flock on `.textops/NAME`: the kernel releases it when its holder dies, so a killed
holder never leaves a stale lock behind. The locks cover processes on one machine (a shared file system
aside); runs on several machines are kept apart by the Prefect concurrency limit instead. Who holds a lock
is written next to it (`NAME.holder`) so that a waiting command can say what it waits for.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from textops.core.errors import StateError

STATE_DIR = ".textops"  # git-ignored, outside data/: neither git nor DVC ever sees what is in it
DATA_LOCK = "data.lock"
REGISTRY_LOCK = "registry.lock"
LOCK_WAIT_S = 600

log = logging.getLogger("textops")


def state_path(root: Path, *parts: str) -> Path:
    """ROOT/.textops/PARTS, refusing a symbolic link anywhere from `.textops` down: textops never makes one, so a
    link there was planted, and following it would make textops delete, write or move things outside the project
    (its staging folder, its checkout backup)."""
    path = Path(root) / STATE_DIR
    for part in ("", *parts):
        path = path / part if part else path
        if path.is_symlink():
            raise StateError(
                f"{path} is a symbolic link (to {os.readlink(path)}): textops keeps its own state there and never "
                "makes a link, so something else planted it, and following it would change files outside the "
                "project. Nothing was changed; remove the link (`rm` it, not what it points to) and run the command "
                "again."
            )
    return path


def state_dir(root: Path, *parts: str) -> Path:
    """ROOT/.textops/PARTS (`state_path`), created as real folders."""
    path = state_path(root, *parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def project_lock(root: Path, name: str, wait_s: float = LOCK_WAIT_S) -> Iterator[None]:
    """Hold the exclusive lock `.textops/NAME` for the block; wait up to WAIT_S for another holder."""
    from filelock import FileLock, Timeout

    state_dir(root)
    path, holder = state_path(root, name), state_path(root, name + ".holder")  # no write through a planted link
    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        who = holder.read_text(encoding="utf-8").strip() if holder.exists() else "?"
        log.warning("waiting up to %.0f s for another textops command to release %s (%s)", wait_s, path, who)
        try:
            lock.acquire(timeout=wait_s, poll_interval=0.2)
        except Timeout:
            raise StateError(
                f"another textops command ({who}) has held {path} for more than {wait_s:.0f} s; wait for it to "
                "finish (the lock is released when its process ends, even if it is killed)."
            ) from None
    try:
        holder.write_text(f"pid {os.getpid()} since {time.strftime('%Y-%m-%d %H:%M:%S')}\n", encoding="utf-8")
        yield
    finally:
        lock.release()


def registry_lock(root: Path):
    """The project's registry lock: registrations, promotions and rollbacks on one machine take turns."""
    return project_lock(Path(root), REGISTRY_LOCK)


@contextmanager
def project_runs(root: Path, when_alone=None) -> Iterator[bool]:
    """Hold a shared lock on `.textops/runs.lock` for the block (every in-process run of the project does); True
    when no other run held it. Then WHEN_ALONE() is called first, with the lock still exclusive: whatever a run
    left in the project's temporary Prefect server (a training slot) belongs to no live run and can be taken
    back, and no run can start in between."""
    import fcntl

    fd = os.open(state_path(root, "runs.lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            alone = True
        except BlockingIOError:
            alone = False
        if alone and when_alone is not None:
            when_alone()
        fcntl.flock(fd, fcntl.LOCK_SH)  # waits while another run is still alone
        yield alone
    finally:
        os.close(fd)
