"""Prefect flows: thin wiring of textops' stage functions (no ML logic here).

- `flows/pipeline.py:training_pipeline`  flow `training-pipeline`: preprocess → validate → train → evaluate → register
- `flows/retrain.py:retrain`             flow `retrain`: ingest the landing directory, then the pipeline
- `flows/rollback.py:data_rollback`      flow `data-rollback`: restore a data version, then the pipeline
- `flows/monitor.py:monitor_flow`        flow `monitor`: announce landed files and drift as Prefect events

This directory is installed as the package `textops.flows` (see pyproject.toml), so a flow file that Prefect
loads by path (`prefect deploy`, a worker) imports the installed package only, like the CLI and the tests.

Nothing here imports Prefect: `configure_prefect` must run before the first `import prefect`, because Prefect
reads its settings once, at import. Importing a flow module changes nothing in the process: each flow sets the
offline switches when it starts (`pipeline.project`, the first call of every flow, before MLflow, DVC or
transformers is imported), whether the CLI runs it or a worker's flow-run process loads it by path.
"""

from __future__ import annotations

import os
from pathlib import Path

# Prefect's temporary server (used when no PREFECT_API_URL is set) runs migrations on a fresh home
# before it answers; on a slow or shared machine that takes minutes, not Prefect's 20 s. textops' own start-up
# (textops.runtime.prefect_server) waits while the server makes progress and reads this as its ceiling only.
EPHEMERAL_STARTUP_TIMEOUT_S = "1200"


def configure_prefect(root: Path) -> dict[str, str]:
    """Prefect settings for an in-process run in project ROOT; returns what it set.

    Without PREFECT_API_URL the flow runs against a temporary local server whose database lives in
    PREFECT_HOME; we keep it in the project (`.prefect/`, git-ignored) so run history and the concurrency
    limit are per project and nothing is written to the user's home. A user's own settings win.
    """
    wanted = {
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": EPHEMERAL_STARTUP_TIMEOUT_S,
        # The library's own warnings (e.g. a repaired interrupted ingest) in the flow run's logs.
        "PREFECT_LOGGING_EXTRA_LOGGERS": "textops",
    }
    if not os.environ.get("PREFECT_API_URL"):
        wanted["PREFECT_HOME"] = str(Path(root).resolve() / ".prefect")
    applied = {}
    for key, value in wanted.items():
        if key not in os.environ:
            os.environ[key] = value
            applied[key] = value
    return applied
