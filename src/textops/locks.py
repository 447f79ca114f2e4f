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

from textops.errors import StateError

STATE_DIR = ".textops"  # git-ignored, outside data/: neither git nor DVC ever sees what is in it
DATA_LOCK = "data.lock"
REGISTRY_LOCK = "registry.lock"
LOCK_WAIT_S = 600

log = logging.getLogger("textops")


def state_dir(root: Path) -> Path:
    path = Path(root) / STATE_DIR
    path.mkdir(exist_ok=True)
    return path


@contextmanager
def project_lock(root: Path, name: str, wait_s: float = LOCK_WAIT_S) -> Iterator[None]:
    """Hold the exclusive lock `.textops/NAME` for the block; wait up to WAIT_S for another holder."""
    from filelock import FileLock, Timeout

    path = state_dir(root) / name
    holder = path.with_name(name + ".holder")
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
