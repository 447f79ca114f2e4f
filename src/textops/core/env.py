"""Offline switches (and the CPU threads' manners) for every process the project starts.

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
    # onnxruntime (1.32) writes a telemetry device id under ~/.cache/Microsoft at import unless told not to; the
    # second name is the one later releases read.
    "ORT_DISABLE_TELEMETRY": "1",
    "ORT_TELEMETRY_DISABLED": "1",
    "RAY_USAGE_STATS_ENABLED": "0",
    # Tokenizers' thread pool deadlocks after a fork (DataLoader workers, Prefect subprocesses).
    "TOKENIZERS_PARALLELISM": "false",
    # OpenMP threads (torch's) sleep when they run out of work instead of spinning for it. On a machine shared
    # with other jobs a spinning thread takes a core from the thread it waits for: one MiniLM step took 1.78 s with
    # two spinning threads against 1.22 s passive and 1.15 s with one thread; idle, passive costs 4 % (BENCHMARKS.md,
    # Training). Read when torch starts, so it must be in the environment before the import.
    "OMP_WAIT_POLICY": "PASSIVE",
}


def set_offline_env() -> None:
    """Set every offline switch the user has not set, and keep matplotlib's font cache in textops' own cache
    (`~/.cache/textops/matplotlib`) rather than a folder of its own in the user's home."""
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
    os.environ.setdefault("MPLCONFIGDIR", str(cache_dir() / "matplotlib"))


def cache_dir() -> Path:
    """textops' folder in the user's cache (`$XDG_CACHE_HOME/textops`, else `~/.cache/textops`): the one place
    outside a project where textops writes (docs/architecture.md lists what)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "textops"


def child_env(**extra: str) -> dict[str, str]:
    """The environment for a child process: the offline switches under the caller's own, plus EXTRA."""
    return {**OFFLINE_ENV, **os.environ, **extra}


def usable_cpus() -> int:
    """CPUs this process may run on: its affinity mask, capped by a cgroup CPU quota (a container's limit), as
    joblib counts them (scikit-learn's dependency; it reads cgroup v1 and v2)."""
    from joblib import cpu_count

    return max(1, cpu_count())


def set_torch_threads(requested: int | None) -> int:
    """Set torch's intra-op threads: REQUESTED, else OMP_NUM_THREADS when the user set it, else `usable_cpus()`.
    torch's own default counts the machine's cores, not the ones a container or a CPU set grants. Returns it."""
    import torch

    if requested is None and os.environ.get("OMP_NUM_THREADS", "").isdigit():
        requested = int(os.environ["OMP_NUM_THREADS"])
    threads = requested or usable_cpus()
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return threads


def template_dir(kind: str, package: str) -> Path:
    """Where textops keeps a migrated empty database of PACKAGE (`prefect`, `mlflow`) for new projects: the
    user's cache, per package version (a new version migrates its own once)."""
    from importlib.metadata import version

    return cache_dir() / f"{kind}-{version(package)}"


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
