"""Offline switches for every process the project starts.

Without them transformers, MLflow, Prefect and DVC try to reach the internet and hang or retry on a
closed network. `setdefault` lets a user who does want the network override any of them.
"""

import os

OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DVC_NO_ANALYTICS": "1",
    "DO_NOT_TRACK": "1",
    # Tokenizers' thread pool deadlocks after a fork (DataLoader workers, Prefect subprocesses).
    "TOKENIZERS_PARALLELISM": "false",
}


def set_offline_env() -> None:
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
