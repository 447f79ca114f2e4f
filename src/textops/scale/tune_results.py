"""What a search (`textops.scale.tune`) leaves: its trials as a table, best first; the parent MLflow run's figures,
trials.csv, best_params.json and a picture; and `--apply`, the best trial's values written into params.yaml.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from textops.core import lineage
from textops.core.config import TUNABLE
from textops.core.errors import StateError


def summarise(grid, metric: str, start: dict) -> dict:
    """The trials of GRID as rows (config, best val METRIC, evaluations, stopped early or failed), best first."""
    rows: list[dict[str, Any]] = []
    for result in grid:
        history = result.metrics_dataframe
        best = float(history[metric].max()) if history is not None and metric in history else None
        evals = int(result.metrics.get("training_iteration", 0)) if result.metrics else 0
        rows.append(
            {
                "trial": result.metrics.get("trial_id") if result.metrics else None,
                "config": {k: v for k, v in result.config.items() if k in TUNABLE},
                metric: best,
                "evaluations": evals,
                "failed": result.error is not None,
            }
        )
    rows.sort(key=lambda r: -1 if r[metric] is None else r[metric], reverse=True)
    scored = [r for r in rows if r[metric] is not None]
    if not scored:
        raise StateError("no trial of the search finished an evaluation; see the log (textops -v tune) for why.")
    first = next((r for r in rows if r["config"] == start), None) if start else None
    return {"trials": rows, "best": scored[0], "start": first, "metric": metric}


def end_trials(client, experiment_id: str, parent_id: str) -> None:
    """End the trial runs of the search PARENT_ID still RUNNING (ASHA's stops, an interrupted search) KILLED."""
    for run in client.search_runs([experiment_id], f"tags.mlflow.parentRunId = '{parent_id}'"):
        if run.info.status == "RUNNING":
            client.set_terminated(run.info.run_id, "KILLED")


def record(session, parent_id: str, experiment_id: str, outcome: dict, metric: str, work: Path) -> None:
    """The parent run's figures, trials.csv, best_params.json and a picture; trial runs that ASHA stopped (their
    process killed mid-run) are ended KILLED, with the tag saying why."""
    import mlflow
    import pandas as pd

    from textops.modeling.plots import tune_plot

    end_trials(session.client, experiment_id, parent_id)
    best = outcome["best"]
    mlflow.log_metrics(
        {
            f"best_{lineage.val_metric(metric)}": best[metric],
            "trials": len(outcome["trials"]),
            "trials_failed": sum(r["failed"] for r in outcome["trials"]),
        }
    )
    if outcome["start"] is not None and outcome["start"][metric] is not None:
        mlflow.log_metric(f"start_{lineage.val_metric(metric)}", outcome["start"][metric])
    mlflow.set_tag(lineage.TUNE_BEST_TRIAL, str(best["trial"]))
    table = pd.DataFrame(
        [
            {
                "trial": r["trial"],
                **r["config"],
                lineage.val_metric(metric): r[metric],
                "evaluations": r["evaluations"],
                "failed": r["failed"],
            }
            for r in outcome["trials"]
        ]
    )
    work.mkdir(parents=True, exist_ok=True)
    table.to_csv(work / "trials.csv", index=False)
    (work / "best_params.json").write_text(json.dumps(best["config"], indent=2) + "\n")
    tune_plot(table, metric, work / "tune_trials.png")
    for name in ("trials.csv", "best_params.json", "tune_trials.png"):
        mlflow.log_artifact(str(work / name), "tune")


def values_to_apply(best: dict, current: dict, searched) -> dict:
    """What `--apply` writes into params.yaml's train section: for each key of tune.space that the search SEARCHED,
    the BEST trial's value (3 significant digits) where it differs from what the CURRENT params train with (their
    presets resolved). A key the search did not search is never written, and one whose best value is what the
    current params already train with stays as written: a preset's `null` stays `null`, so a later change of base
    model still gets its own preset."""
    values = {}
    for key in searched:
        if key not in best:
            continue
        value = float(f"{best[key]:.3g}") if isinstance(best[key], float) else best[key]
        if current.get(key) not in (value, best[key]):
            values[key] = value
    return values


def apply_best(params_path: Path, best: dict, current: dict, searched) -> str:
    """Write `values_to_apply` into params.yaml's train section, comments kept; the result is validated before it
    replaces the file. Returns the unified diff ('' when nothing changed). Only for a search that ran to its end
    (`tune` raises SearchStopped for any other)."""
    import difflib

    from textops.core.artifacts import atomic_write_text
    from textops.core.config import load_params
    from textops.core.params_file import set_section_values

    values = values_to_apply(best, current, searched)
    before = params_path.read_text(encoding="utf-8")
    after = set_section_values(before, "train", values) if values else before
    if after == before:
        return ""
    aside = params_path.with_name(f".{params_path.name}.tune")
    try:
        aside.write_text(after, encoding="utf-8")
        load_params(aside)  # what --apply writes must load: a bad edit never replaces the file
    finally:
        aside.unlink(missing_ok=True)
    atomic_write_text(params_path, after)
    return "".join(
        difflib.unified_diff(
            before.splitlines(True), after.splitlines(True), f"a/{params_path.name}", f"b/{params_path.name}"
        )
    )
