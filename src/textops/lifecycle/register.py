"""The register stage: register the evaluated model as `challenger`, compare it with the champion on the same
test rows, and promote it when the policy (`textops.core.policy`) says so.

The champion is scored again on the challenger's test split, so both numbers come from the same rows. The
decision and its evidence go on the model version as tags (created with the version, in one call) and into
`registry/decision.md` in the challenger's run. Alias moves are the last writes.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from textops.adapters.locks import registry_lock
from textops.adapters.tracking import Session, session_for
from textops.core import lineage
from textops.core.artifacts import (
    SPLITS,
    VALIDATE_METRICS,
    load_split,
    predictions_path,
    read_json,
    read_labels,
    read_run_info,
    split_rows,
)
from textops.core.config import Params
from textops.core.errors import StateError
from textops.core.policy import Latency, decide, mcnemar, score
from textops.lifecycle.live_promotion import awaiting_live
from textops.modeling.predict import load_model, predict_batches
from textops.registry.card import log_card
from textops.registry.guards import (
    own_rows_guard,
    reference_guard,
    reference_set,
    slice_comparisons,
    slice_evidence,
    trigger_guards,
)
from textops.registry.registry import (
    champion,
    move_champion,
    registered_before,
    rolled_back_from,
    set_alias,
    write_version,
)

REPORT_PATH = "registry/decision.md"


def validation_passed(root: Path, params: Params) -> bool:
    """True only when the validate stage ran on the current cleaned splits and passed.

    A stale metrics file from another data version must not count: its row counts must match the splits.
    """
    path = Path(root) / VALIDATE_METRICS
    if not path.exists():
        return False
    stats = read_json(path, "validate")
    if stats.get("success") is not True:
        return False
    rows = stats.get("rows") or {}
    return all(split_rows(root, params, split) == rows.get(split) is not None for split in SPLITS)


def as_names(values, labels: list[str]) -> np.ndarray:
    """Predictions and labels as label names, whether they were stored as ids or names."""
    s = pd.Series(values)
    if pd.api.types.is_integer_dtype(s):
        return np.asarray([labels[i] for i in s])
    return s.astype(str).to_numpy()


def evaluated_predictions(root: Path, params: Params, test: pd.DataFrame, labels: list[str]) -> np.ndarray | None:
    """The evaluate stage's predictions, if they are for exactly these test rows."""
    path = predictions_path(root, params)
    if not path.exists():
        return None
    preds = pd.read_parquet(path)
    if len(preds) != len(test) or "pred" not in preds or list(preds["text"]) != list(test["text"]):
        return None
    return as_names(preds["pred"], labels)


def register(root: Path, params: Params, session: Session | None = None) -> dict:
    """Compare the evaluated model with the champion and register it (see `decide_and_register`), holding the
    project's registry lock: two registrations on one machine never decide against the same old champion.
    SESSION: the command's store (`tracking.session_for`), else one opened here."""
    with registry_lock(root):
        if session is not None:
            # The champion is read again under the lock: a person may have promoted or rolled back while this run
            # trained, and the decision is against the champion of now, not the one of the no-op check.
            session.forget()
        return decide_and_register(Path(root), params, session)


def trained_run(session: Session, run_id: str, metric: str):
    """The evaluated training run; StateError when it was not evaluated or did not finish."""
    run = session.client.get_run(run_id)
    if lineage.test_metric(metric) not in run.data.metrics:
        raise StateError(f"run {run_id} has no test_{metric}: run `textops evaluate` before `textops register`.")
    if run.info.status != "FINISHED":
        raise StateError(
            f"run {run_id} is {run.info.status}, not FINISHED (its training or evaluation was interrupted): run "
            "`textops evaluate` again, or the pipeline, before registering it."
        )
    return run


def labels_of(model, texts: list[str], batch_size: int) -> np.ndarray:
    """Label names (as strings) a loaded pyfunc predicts for TEXTS."""
    return predict_batches(model, texts, batch_size)["label"].astype(str).to_numpy()


def compare_with_champion(
    root: Path, session: Session, params: Params, tags: dict, test, y, pred_new, challenger_uri: str
) -> dict:
    """The champion on the challenger's test rows, on its own test rows and on the reference set: evidence,
    champion metric, McNemar p and the guards (all empty when there is no champion yet), and `held`, the reason a
    person must decide, when the champion cannot be loaded."""
    out: dict[str, Any] = {"evidence": {}, "champion_metric": None, "p_value": None, "guards": [], "held": None}
    out["slices"] = []
    metric, batch = params.promotion.primary_metric, params.evaluate.batch_size
    current = champion(session)
    if current is None:
        return out
    old_tags = session.client.get_run(current.run_id).data.tags if current.run_id else {}
    if old_tags.get(lineage.DEMO_DATA) == "true" and tags.get(lineage.DEMO_DATA) != "true":
        # The demo's champion knows only the synthetic sample (other texts, often other labels): the first model
        # of the user's own data is judged as a first champion, on the floor and the baseline.
        out["evidence"] = {lineage.champion_key("version"): str(current.version), lineage.champion_key("demo"): "true"}
        return out
    try:
        old_model = load_model(session, lineage.model_uri(session.model_name, current.version), params.serve)
    except StateError as exc:
        return {**out, **unreadable_champion(session, current, metric, exc)}
    # Always score the champion on these rows: when its data version differs its own test metric is
    # on other rows, and even on the same data the paired test needs its per-row predictions.
    pred_old = labels_of(old_model, test["text"].astype(str).tolist(), batch)
    old_metric = score(y, pred_old, metric)
    paired = mcnemar(y, pred_new, pred_old)
    loaded: list = []

    def predict_new(texts: list[str]) -> np.ndarray:  # the challenger loaded once, only when a guard needs it
        if not loaded:
            loaded.append(load_model(session, challenger_uri, params.serve))
        return labels_of(loaded[0], texts, batch)

    def predict_old(texts: list[str]) -> np.ndarray:
        return labels_of(old_model, texts, batch)

    train = load_split(root, params, "train")["text"].astype(str).tolist()
    train_texts = set(train)
    guards = [g for g in [own_rows_guard(root, params, old_tags, train_texts, predict_new, predict_old)] if g]
    guards += trigger_guards(root, params, old_tags, train, predict_new, predict_old)
    reference = reference_set(root, params)
    if reference is not None:
        guards.append(reference_guard(params, reference, predict_new, predict_old))
    out["evidence"] = {
        lineage.champion_key("version"): str(current.version),
        # Both figures, not only the primary metric: the run summary and the report show the champion's row whole.
        **{lineage.champion_key(m): round(score(y, pred_old, m), 6) for m in ("accuracy", "macro_f1")},
        lineage.champion_key("data.raw_md5"): old_tags.get(lineage.RAW_MD5, ""),
        lineage.champion_key("data.clean_md5"): old_tags.get(lineage.CLEAN_MD5, ""),
        lineage.champion_key("rescored"): str(old_tags.get(lineage.CLEAN_MD5) != tags.get(lineage.CLEAN_MD5)).lower(),
        lineage.mcnemar_key("b"): paired.b,
        lineage.mcnemar_key("c"): paired.c,
        lineage.mcnemar_key("p_value"): f"{paired.p_value:.4g}",  # 4.7e-11, not a rounded 0.0
        **{
            lineage.guard_key(i): f"{g.name}: {g.challenger_metric:.4f} vs {g.champion_metric:.4f} on {g.rows} rows"
            for i, g in enumerate(guards)
        },
    }
    slices = slice_comparisons(params, test, y, pred_new, pred_old)
    out["evidence"].update(slice_evidence(params, slices))
    out.update(champion_metric=old_metric, p_value=paired.p_value, guards=guards, slices=slices)
    return out


def hold_reason(session: Session, tags: dict) -> str | None:
    """Why a person must decide on this challenger: it was trained on data someone rolled back from."""
    source = rolled_back_from(session).get(tags.get(lineage.RAW_MD5, ""))
    if source is None:
        return None
    return (
        f"trained on the data of v{source}, which a person rolled back from: not promoted automatically; if the "
        "data is right after all, promote it by hand (`textops model promote VERSION --reason ...`)"
    )


def baseline_on(root: Path, params: Params, test: pd.DataFrame, y, labels: list[str]) -> float:
    """The primary metric of the TF-IDF baseline fitted on the rows the model trains on (`load_train_rows`), on TEST
    (labels Y as names)."""
    from textops.core.artifacts import load_train_rows
    from textops.modeling.baseline import fit_predict

    train = load_train_rows(root, params)
    probs, _ = fit_predict(
        train["text"].tolist(),
        train["label"].to_numpy(),
        test["text"].astype(str).tolist(),
        len(labels),
        params.evaluate.baseline_max_features,
    )
    return score(y, np.asarray(labels)[probs.argmax(axis=1)], params.promotion.primary_metric)


def baseline_advice(tags: dict) -> str:
    """What would help the run with TAGS beat the baseline (`policy.stronger_model_advice`)."""
    from textops.core.policy import stronger_model_advice

    def share(key: str) -> float | None:
        try:
            return float(tags[key])
        except (KeyError, ValueError):
            return None

    return stronger_model_advice(
        tags.get(lineage.BASE_MODEL), share(lineage.BASE_UNKNOWN_SHARE), share(lineage.BASE_TRUNCATED_SHARE)
    )


def challenger_predictions(
    root: Path, session: Session, params: Params, model_uri: str, test: pd.DataFrame, labels: list[str]
) -> tuple[np.ndarray, dict]:
    """The challenger's labels on TEST as it will serve, and how they were had: the evaluate stage's (PyTorch) when
    they are for these rows and PyTorch serves; else the logged model scored under the serving runtime (the ONNX
    graph, int8 or not), with the share of labels it agrees on with PyTorch's."""
    evaluated = evaluated_predictions(root, params, test, labels)
    if evaluated is not None and params.serve.runtime == "torch":
        return evaluated, {"evaluated": evaluated, "runtime": "torch", "agreement": {}}
    model = load_model(session, model_uri, params.serve)
    runtime = getattr(model.unwrap_python_model(), "runtime", "torch")
    pred = labels_of(model, test["text"].astype(str).tolist(), params.evaluate.batch_size)
    agreement = (
        {}
        if evaluated is None or runtime == "torch"
        else {lineage.runtime_key("agreement_with_torch"): round(float(np.mean(pred == evaluated)), 6)}
    )
    return pred, {"evaluated": evaluated, "runtime": runtime, "agreement": agreement}


def unreadable_champion(session: Session, current, metric: str, exc: Exception) -> dict:
    """The evidence and the hold when the champion's model cannot be loaded. Unreadable is not absent (a network
    share down, a folder moved): judging the challenger "as a first champion" would replace a proven model with any
    model over the floor, for good. A person decides."""
    proven = session.client.get_run(current.run_id).data.metrics if current.run_id else {}
    recorded = proven.get(lineage.test_metric(metric))
    figure = f"its recorded test {metric} {recorded:.4f} still stands" if recorded is not None else "it stands"
    return {
        "evidence": {
            lineage.champion_key("version"): str(current.version),
            lineage.champion_key("broken"): str(exc)[:300],
        },
        "held": (
            f"champion v{current.version} cannot be loaded ({exc}), so the challenger cannot be compared with it on "
            f"the same rows and {figure}: held for a person. Make its model files available again and run "
            "`textops register` (or the pipeline with --force), or, if they are gone for good, promote a version by "
            "hand (`textops model promote VERSION --reason ...`)"
        ),
    }


def replacing_the_demo(decision, evidence: dict):
    """DECISION with its reason saying that the champion it replaces was the demo's (`compare_with_champion`)."""
    if not evidence.get(lineage.champion_key("demo")):
        return decision
    demo = f"v{evidence[lineage.champion_key('version')]}, the demo's champion, knows only the built-in sample"
    return replace(decision, reason=f"{decision.reason} ({demo})")


def challenger_evidence(
    run_id: str, tags: dict, figure: dict, rows: int, served: dict, baseline_metric: float | None
) -> dict:
    """The challenger's side of the evidence: its run, its FIGURE ({metric: value}) on ROWS test rows, its data
    version, the runtime it was scored with (SERVED) and the baseline's figure."""
    ((metric, value),) = figure.items()
    evidence = {
        lineage.challenger_key("run_id"): run_id,
        lineage.challenger_key(metric): round(value, 6),
        lineage.challenger_key("data.raw_md5"): tags.get(lineage.RAW_MD5, ""),
        lineage.challenger_key("data.clean_md5"): tags.get(lineage.CLEAN_MD5, ""),
        lineage.challenger_key("data.rev"): tags.get(lineage.DATA_REV, ""),
        "test_rows": rows,
        "runtime": served["runtime"],
        **served["agreement"],
    }
    if baseline_metric is not None:
        evidence[lineage.baseline_key(metric)] = round(baseline_metric, 6)
    return evidence


def version_tags(tags: dict, evidence: dict) -> dict[str, str]:
    """A new version's tags: its run's data version (`textops data checkout --model N` restores it from these) and
    the decision's EVIDENCE."""
    out = {k: tags[k] for k in lineage.DATA_VERSION_TAGS if k in tags}
    out.update({lineage.evidence_tag(k): str(v)[:5000] for k, v in evidence.items()})
    return out


def distilled_latency(run, evidence: dict) -> Latency | None:
    """The p50 latencies `textops distill` measured for a student and its teacher (added to EVIDENCE), when the
    teacher is the champion it is compared with now (a champion that changed since is another model: the usual rules
    apply)."""
    teacher = run.data.tags.get(lineage.DISTILL_TEACHER)
    student_ms = run.data.metrics.get(lineage.test_metric(lineage.LATENCY_P50))
    teacher_ms = run.data.metrics.get(lineage.TEACHER_LATENCY_P50)
    if teacher is None or teacher != evidence.get(lineage.champion_key("version")) or not (student_ms and teacher_ms):
        return None
    evidence.update({"latency.p50_ms": round(student_ms, 3), "teacher.latency.p50_ms": round(teacher_ms, 3)})
    return Latency(student_ms=student_ms, teacher_ms=teacher_ms)


def decide_and_register(root: Path, params: Params, session: Session | None = None) -> dict:
    """Compare the evaluated run's model with the champion, register it with the decision, move aliases.

    Everything is decided before anything is written. The version is then created with all its evidence
    tags in one registry call (one database transaction on a SQL store), so a kill at any point leaves
    either no new version or a complete one; the alias moves come last.
    """
    run_info = read_run_info(root, params)
    run_id = run_info["run_id"]
    model_uri = run_info.get("model_uri") or f"runs:/{run_id}/model"
    metric = params.promotion.primary_metric
    session = session_for(root, params, session)  # a new one checks the store, marks KILLED dead processes' runs
    run = trained_run(session, run_id, metric)
    tags, before = run.data.tags, registered_before(session, run_id)

    # Paired predictions of both models on the challenger's test split.
    labels = read_labels(root, params)
    test = load_split(root, params, "test")
    y = as_names(test["label"], labels)
    baseline_metric = run.data.metrics.get(lineage.baseline_metric(metric))  # the evaluation's, on the same rows
    pred_new, served = challenger_predictions(root, session, params, model_uri, test, labels)
    if served["evaluated"] is None:  # the test split changed since the evaluation: both are scored again on it
        baseline_metric = baseline_on(root, params, test, y, labels) if baseline_metric is not None else None
    new_metric = score(y, pred_new, metric)

    evidence = challenger_evidence(run_id, tags, {metric: new_metric}, len(test), served, baseline_metric)
    versus = compare_with_champion(root, session, params, tags, test, y, pred_new, model_uri)
    evidence.update(versus["evidence"])
    latency = distilled_latency(run, evidence)
    decision = decide(
        params.promotion,
        new_metric,
        versus["champion_metric"],
        versus["p_value"],
        validation_passed(root, params),
        versus["guards"],
        versus["held"] or hold_reason(session, tags),
        baseline_metric,
        baseline_advice(tags),
        versus["slices"],
        latency,
    )
    decision = replacing_the_demo(decision, versus["evidence"])
    if tags.get(lineage.FALLBACK):  # `auto` registered its TF-IDF model: the transformer lost to the baseline
        decision = replace(decision, reason=f"{decision.reason}; {tags[lineage.FALLBACK]}")
    decision, verdict = awaiting_live(params, decision, versus["champion_metric"] is not None)
    evidence.update({"decision": verdict, "reason": decision.reason})

    version = write_version(session, model_uri, version_tags(tags, evidence), before)
    evidence = {lineage.challenger_key("version"): version, **evidence}
    session.client.log_text(run_id, decision_report(session.model_name, metric, evidence), REPORT_PATH)
    log_card(root, session, run_id, version)

    # Alias moves last: the challenger alias, then (if promoted) the champion alias in one update.
    set_alias(session, lineage.CHALLENGER_ALIAS, version)
    if decision.promote:
        move_champion(session, version, "auto", decision.reason)
    if versus["held"]:  # a failure of the run, not a quiet rejection: the champion must be looked at
        raise StateError(f"registered {session.model_name} v{version} as challenger, not promoted: {versus['held']}.")
    again = {"registered_before": True} if before is not None else {}
    return {"name": session.model_name, "version": version, **asdict(decision), "evidence": evidence, **again}


def decision_report(name: str, metric: str, evidence: dict) -> str:
    """The Markdown report logged to the challenger's run."""
    rows = "\n".join(f"| {k} | {v} |" for k, v in evidence.items() if k not in ("decision", "reason"))
    return (
        f"# Registry decision: {name} v{evidence[lineage.challenger_key('version')]}\n\n"
        f"**{evidence['decision'].upper()}**: {evidence['reason']}\n\n"
        f"Primary metric: `{metric}` on the challenger's test split ({evidence['test_rows']} rows).\n\n"
        f"| evidence | value |\n|---|---|\n{rows}\n"
    )
