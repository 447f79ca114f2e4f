"""The monitoring loop's latency, from a file landing to the new version answering, broken down by step.

The setting of tests/integration/test_loop.py: a champion trained on 300 rows of the built-in sample (FAST params,
the tiny model), a Prefect server (SQLite) with the `gpu` process pool and one worker, the deployments of
prefect.yaml, `textops serve` following the champion (polling the alias every second). Then a better labelled file
of --rows rows lands and the `monitor` deployment is started at once (its hourly schedule would start it up to an
hour later: that wait is not in the figures). Each step's start and end come from Prefect's API (flow runs, task
runs, the event's time) and the server's `/version`.

    OMP_NUM_THREADS=1 python benchmarks/loop.py [--rows 3000]

Prints one JSON line with the steps in seconds from the file landing.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from datetime import datetime
from pathlib import Path

import tests_path  # noqa: F401  (tests/ on sys.path: `support`, shared with the tests)

from textops.core.env import set_offline_env

set_offline_env()

from support import FAST, champion_project, serving, wait_for  # noqa: E402
from support.servers import (  # noqa: E402
    FINAL_STATES,
    deployed_on_a_server,
    deployed_project,
    deployment_runs,
    events_named,
    prefect_api,
    run_deployment,
)

from textops.data.sample import make_sample  # noqa: E402

LOOP = {
    "sample": {"rows": 300},
    "data": {"landing_dir": "landing"},
    "promotion": {"floor": 0.0, "beat_baseline": False},
    "serve": {"poll_seconds": 1},
}


def at(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def task_spans(api: str, since: float) -> list[tuple[str, float, float]]:
    """Every task run that started after SINCE, in order: its task's name (the run's name without Prefect's
    suffix), start and end (epoch seconds)."""
    runs = prefect_api(api, "/task_runs/filter", {"sort": "EXPECTED_START_TIME_ASC", "limit": 200})
    return [
        (r["name"].rsplit("-", 1)[0], at(r["start_time"]), at(r["end_time"]))
        for r in runs
        if r.get("start_time") and r.get("end_time") and at(r["start_time"]) >= since
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=3000, help="rows of the labelled file that lands")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="loop-"))
    root = champion_project(work / "proj", FAST, LOOP)
    deployed_project(root)
    (root / "landing").mkdir()
    with deployed_on_a_server(root, work) as (api, env, _), serving(root) as served:
        assert served.version()["model_version"] == "1"
        make_sample(args.rows, seed=101).to_csv(root / "landing" / "reviews.csv", index=False)
        landed = time.time()
        monitor = run_deployment(api, env, root, "monitor", timeout=600)
        retrain = wait_for(
            lambda: [r for r in deployment_runs(api, "retrain") if r["state_type"] in FINAL_STATES],
            1800,
            "the retrain",
            interval=1,
        )[0]
        answered = wait_for(
            lambda: served.version()["model_version"] == "2" and time.time(),
            120,
            "the server to answer with v2",
            interval=0.2,
        )
        event = events_named(api, "textops.data.landed")[0]
        version = served.version()
        spans = task_spans(api, landed)
    rel = lambda t: round(t - landed, 1)  # noqa: E731
    steps = {
        "monitor run created (prefect deployment run)": rel(at(monitor["created"])),
        "monitor run started by the worker": rel(at(monitor["start_time"])),
        "textops.data.landed emitted": rel(at(event["occurred"])),
        "monitor run finished": rel(at(monitor["end_time"])),
        "retrain run created by the trigger": rel(at(retrain["created"])),
        "retrain run started by the worker": rel(at(retrain["start_time"])),
        "retrain run finished (v2 promoted)": rel(at(retrain["end_time"])),
        "textops serve answers with v2": rel(answered),
    }
    tasks = [{"task": name, "from": rel(a), "to": rel(b), "seconds": round(b - a, 1)} for name, a, b in spans]
    print(
        json.dumps(
            {
                "rows": args.rows,
                "steps_s_from_landing": steps,
                "state": retrain["state_type"],
                "version": version["model_version"],
                "load_seconds": version["load_seconds"],
                "tasks": tasks,
                "machine": platform.machine(),
                "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            }
        )
    )


if __name__ == "__main__":
    main()
