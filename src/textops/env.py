"""Offline switches for every process the project starts.

Without them transformers, MLflow, Prefect and DVC try to reach the internet and hang or retry on a
closed network. The entry points (the CLI, the flows, the test suite) call `set_offline_env()` before
the heavy libraries are imported; importing `textops` itself changes nothing. A notebook that calls the
stage functions directly can call it too. `setdefault` lets a user who does want the network override any
of them.
"""

from __future__ import annotations

import os
from pathlib import Path

OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DVC_NO_ANALYTICS": "1",
    "DO_NOT_TRACK": "1",
    "GX_ANALYTICS_ENABLED": "false",
    # Tokenizers' thread pool deadlocks after a fork (DataLoader workers, Prefect subprocesses).
    "TOKENIZERS_PARALLELISM": "false",
}


def set_offline_env() -> None:
    """Set every offline switch the user has not set."""
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)


def child_env(**extra: str) -> dict[str, str]:
    """The environment for a child process: the offline switches under the caller's own, plus EXTRA."""
    return {**OFFLINE_ENV, **os.environ, **extra}


def template_dir(kind: str, package: str) -> Path:
    """Where textops keeps a migrated empty database of PACKAGE (`prefect`, `mlflow`) for new projects: the
    user's cache, per package version (a new version migrates its own once)."""
    from importlib.metadata import version

    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "textops" / f"{kind}-{version(package)}"


def copy_if_absent(source: Path, target: Path) -> bool:
    """Copy SOURCE to TARGET unless TARGET exists (two processes at once: one wins, the other keeps its)."""
    import shutil

    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    shutil.copyfile(source, tmp)
    try:
        os.link(tmp, target)  # fails if TARGET appeared meanwhile
        return True
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)


def backup_sqlite(db: Path, target: Path) -> None:
    """A consistent copy of the SQLite database DB (SQLite's backup API, safe while others use it) at TARGET,
    unless TARGET exists. Failures are left unsaid: a template is only a speed-up."""
    import sqlite3

    if target.is_file():
        return
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        src, dst = sqlite3.connect(db), sqlite3.connect(tmp)
        try:
            src.backup(dst)
        finally:
            src.close()
            dst.close()
        os.replace(tmp, target)
    except (OSError, sqlite3.Error):
        pass
