"""Offline switches for every process the project starts.

Without them transformers, MLflow, Prefect and DVC try to reach the internet and hang or retry on a
closed network. The entry points (the CLI, the flows, the test suite) call `set_offline_env()` before
the heavy libraries are imported; importing `textops` itself changes nothing. A notebook that calls the
stage functions directly can call it too. `setdefault` lets a user who does want the network override any
of them.
"""

from __future__ import annotations

import os

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
