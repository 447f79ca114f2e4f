"""The registry step: register the evaluated model, compare it with the champion, promote, roll back.

Policy (params.promotion):
- a new version always gets the alias `challenger`;
- the first version becomes `champion` when its primary metric reaches `floor`;
- a later one replaces the champion only when, on the *same* test rows, it beats the champion by at least
  `min_delta` (and by more than zero) AND McNemar's exact test on the paired predictions gives p < `max_p_value`;
- a failed or skipped data validation never promotes.

The champion is scored again on the challenger's test split when it was evaluated on another data version,
so both numbers come from the same rows. The decision and its evidence go on the model version as tags (created
with the version, in one call) and into `registry/decision.md` in the challenger's run. Alias moves are the last
writes, and a move is a single update of the alias, so a model that had a champion always has one. Every
champion change (automatic, manual, rollback) is appended to the registered model's tag
`textops.champion_history`; rollback replays it.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from textops.config import Params, PromotionParams
from textops.errors import StateError, TextopsError

if TYPE_CHECKING:
    from mlflow import MlflowClient

CHAMPION, CHALLENGER = "champion", "challenger"
HISTORY_TAG = "textops.champion_history"
HISTORY_MAX = 40  # entries kept in the tag (a tag value is limited to a few kB)
REPORT_PATH = "registry/decision.md"
VALIDATE_METRICS = "metrics/validate.json"


class RegistryError(TextopsError):
    """The registry cannot do what was asked (unknown version, no champion, nothing to roll back to)."""


# --------------------------------------------------------------------------------------------------
# pure decision logic


@dataclass(frozen=True)
class McNemar:
    """Paired comparison on the same rows: b = only the challenger right, c = only the champion right."""

    b: int
    c: int
    p_value: float


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str
    challenger_metric: float
    champion_metric: float | None = None
    p_value: float | None = None


def mcnemar(y_true, pred_challenger, pred_champion) -> McNemar:
    """McNemar's exact test (two-sided binomial test on the discordant pairs).

    The exact test, not the chi-square approximation: test splits here can be small and the number of
    discordant pairs tiny. With no discordant pair the models agree everywhere and p = 1.
    """
    from scipy.stats import binomtest

    y, a, b_ = (np.asarray(x) for x in (y_true, pred_challenger, pred_champion))
    if not (len(y) == len(a) == len(b_)):
        raise ValueError(f"paired predictions need equal lengths, got {len(y)}, {len(a)}, {len(b_)}")
    right_a, right_b = a == y, b_ == y
    b = int(np.sum(right_a & ~right_b))
    c = int(np.sum(~right_a & right_b))
    p = 1.0 if b + c == 0 else float(binomtest(b, b + c, 0.5, alternative="two-sided").pvalue)
    return McNemar(b=b, c=c, p_value=p)


def score(y_true, y_pred, metric: str) -> float:
    """The primary metric, computed the same way for challenger and champion."""
    from sklearn.metrics import accuracy_score, f1_score

    if metric == "accuracy":
        return float(accuracy_score(y_true, y_pred))
    return float(f1_score(y_true, y_pred, average="macro", zero_division=0))


def decide(
    policy: PromotionParams,
    challenger_metric: float,
    champion_metric: float | None = None,
    p_value: float | None = None,
    validation_ok: bool = True,
) -> Decision:
    """Apply the promotion policy. `champion_metric=None` means there is no champion yet."""
    m = policy.primary_metric
    args = dict(challenger_metric=challenger_metric, champion_metric=champion_metric, p_value=p_value)
    if not validation_ok:
        return Decision(False, "data validation failed or was skipped for this data version", **args)
    if champion_metric is None:
        if challenger_metric >= policy.floor:
            return Decision(True, f"first champion: {m} {challenger_metric:.4f} >= floor {policy.floor}", **args)
        return Decision(False, f"no champion yet and {m} {challenger_metric:.4f} < floor {policy.floor}", **args)
    delta = challenger_metric - champion_metric
    if delta <= 0 or delta < policy.min_delta:
        return Decision(
            False,
            f"{m} {challenger_metric:.4f} vs champion {champion_metric:.4f}: delta {delta:+.4f} does not beat "
            f"the champion by at least {policy.min_delta}",
            **args,
        )
    if p_value is None or p_value >= policy.max_p_value:
        return Decision(
            False,
            f"{m} delta {delta:+.4f} is not significant: McNemar p={p_value if p_value is None else f'{p_value:.4g}'}"
            f" >= {policy.max_p_value}",
            **args,
        )
    return Decision(
        True,
        f"{m} {challenger_metric:.4f} beats champion {champion_metric:.4f} by {delta:+.4f} "
        f"(>= {policy.min_delta}), McNemar p={p_value:.4g} < {policy.max_p_value}",
        **args,
    )


def champion_stack(history: list[dict]) -> list[str]:
    """Replay the champion history into a stack of versions; its top is the current champion.

    A promotion pushes; a rollback to a version already on the stack pops back to it (so two rollbacks
    go two champions back, not back and forth); a rollback to a version not on the stack pushes it.
    """
    stack: list[str] = []
    for entry in history:
        version = str(entry["version"])
        if entry.get("kind") == "rollback" and version in stack:
            del stack[len(stack) - stack[::-1].index(version) :]
        elif not stack or stack[-1] != version:
            stack.append(version)
    return stack


def rollback_target(history: list[dict], current: str | None) -> str:
    """The previous champion according to the history (what `model rollback` with no --to restores)."""
    stack = champion_stack(history)
    if current is not None and stack and stack[-1] != str(current):
        stack.append(str(current))  # the alias was moved outside textops: treat it as the top
    if len(stack) < 2:
        raise RegistryError("no previous champion in the promotion history: nothing to roll back to.")
    return stack[-2]


# --------------------------------------------------------------------------------------------------
# MLflow plumbing


def client(root: Path, params: Params) -> MlflowClient:
    from mlflow import MlflowClient

    from textops.tracking import check_store, tracking_uri

    uri = tracking_uri(root, params)
    check_store(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise StateError(f"{path} not found: run `textops train` and `textops evaluate` first.") from exc


def _champion(c: MlflowClient, name: str):
    from mlflow.exceptions import MlflowException

    try:
        return c.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None


def _history(c: MlflowClient, name: str) -> list[dict]:
    from mlflow.exceptions import MlflowException

    try:
        raw = c.get_registered_model(name).tags.get(HISTORY_TAG)
    except MlflowException:
        return []
    return json.loads(raw) if raw else []


def _move_champion(c: MlflowClient, name: str, version: str, kind: str, reason: str) -> None:
    """Move the alias (one update: there is always a champion), then append the change to the history.

    In this order a process killed between the two writes leaves a history that lacks the last move, which
    `rollback_target` handles (it treats the alias as the newest entry); the other order would leave a
    history naming a champion that never served.
    """
    history = _history(c, name) + [
        {"version": str(version), "kind": kind, "reason": reason[:200], "at": int(time.time())}
    ]
    c.set_registered_model_alias(name, CHAMPION, str(version))
    c.set_registered_model_tag(name, HISTORY_TAG, json.dumps(history[-HISTORY_MAX:]))


def validation_passed(root: Path, params: Params) -> bool:
    """True only when the validate stage ran on the current cleaned splits and passed.

    A stale metrics file from another data version must not count: its row counts must match the splits.
    """
    path = root / VALIDATE_METRICS
    if not path.exists():
        return False
    stats = json.loads(path.read_text(encoding="utf-8"))
    if stats.get("success") is not True:
        return False
    rows = stats.get("rows") or {}
    for split in ("train", "val", "test"):
        file = root / params.data.clean_dir / f"{split}.parquet"
        if not file.exists() or rows.get(split) != _row_count(file):
            return False
    return True


def _row_count(path: Path) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_rows


def _labels(root: Path, params: Params) -> list[str]:
    return _read_json(root / params.data.clean_dir / "labels.json")["labels"]


def _as_names(values, labels: list[str]) -> np.ndarray:
    """Predictions and labels as label names, whether they were stored as ids or names."""
    s = pd.Series(values)
    if pd.api.types.is_integer_dtype(s):
        return np.asarray([labels[i] for i in s])
    return s.astype(str).to_numpy()


def predict_uri(uri: str, texts: list[str], batch_size: int = 64) -> np.ndarray:
    """Label names predicted by the model at URI (`models:/NAME/V`, `runs:/ID/model`) for TEXTS."""
    import mlflow.pyfunc

    model = mlflow.pyfunc.load_model(uri)
    out = [
        model.predict(pd.DataFrame({"text": texts[i : i + batch_size]}))["label"]
        for i in range(0, len(texts), batch_size)
    ]
    return pd.concat(out, ignore_index=True).astype(str).to_numpy() if out else np.asarray([], dtype=str)


def _challenger_predictions(root: Path, params: Params, test: pd.DataFrame, labels: list[str]) -> np.ndarray | None:
    """The evaluate stage's predictions, if they are for exactly these test rows."""
    path = root / params.evaluate.output_dir / "predictions.parquet"
    if not path.exists():
        return None
    preds = pd.read_parquet(path)
    if len(preds) != len(test) or "pred" not in preds or list(preds["text"]) != list(test["text"]):
        return None
    return _as_names(preds["pred"], labels)


def register(root: Path, params: Params) -> dict:
    """Compare the evaluated model with the champion and register it (see `_register`), holding the project's
    registry lock: two registrations on one machine never decide against the same old champion."""
    from textops.recovery import registry_lock

    with registry_lock(root):
        return _register(root, params)


def _register(root: Path, params: Params) -> dict:
    """Compare the evaluated run's model with the champion, register it with the decision, move aliases.

    Everything is decided before anything is written. The version is then created with all its evidence
    tags in one registry call (one database transaction on a SQL store), so a kill at any point leaves
    either no new version or a complete one; the alias moves come last.
    """
    import mlflow

    from textops.tracking import setup

    root = Path(root)
    run_info = _read_json(root / params.train.output_dir / "run.json")
    run_id = run_info["run_id"]
    model_uri = run_info.get("model_uri") or f"runs:/{run_id}/model"
    name, metric = params.mlflow.registered_model, params.promotion.primary_metric
    setup(root, params)  # checks the store, points MLflow at it, marks KILLED runs whose process died
    c = mlflow.MlflowClient()
    run = c.get_run(run_id)
    if f"test_{metric}" not in run.data.metrics:
        raise StateError(f"run {run_id} has no test_{metric}: run `textops evaluate` before `textops register`.")
    if run.info.status != "FINISHED":
        raise StateError(
            f"run {run_id} is {run.info.status}, not FINISHED (its training or evaluation was interrupted): run "
            "`textops evaluate` again, or the pipeline, before registering it."
        )

    # Paired predictions of both models on the challenger's test split.
    labels = _labels(root, params)
    test = pd.read_parquet(root / params.data.clean_dir / "test.parquet")
    y = _as_names(test["label"], labels)
    texts = test["text"].astype(str).tolist()
    champion = _champion(c, name)

    pred_new = _challenger_predictions(root, params, test, labels)
    if pred_new is None:
        pred_new = predict_uri(model_uri, texts, params.evaluate.batch_size)
    new_metric = score(y, pred_new, metric)

    tags = run.data.tags
    evidence = {
        "challenger.run_id": run_id,
        f"challenger.{metric}": round(new_metric, 6),
        "challenger.data.raw_md5": tags.get("textops.data.raw_md5", ""),
        "challenger.data.clean_md5": tags.get("textops.data.clean_md5", ""),
        "challenger.data.rev": tags.get("textops.data.rev", ""),
        "test_rows": len(test),
    }
    old_metric = p_value = None
    if champion is not None:
        old_tags = c.get_run(champion.run_id).data.tags if champion.run_id else {}
        # Always score the champion on these rows: when its data version differs its own test metric is
        # on other rows, and even on the same data the paired test needs its per-row predictions.
        pred_old = predict_uri(f"models:/{name}/{champion.version}", texts, params.evaluate.batch_size)
        old_metric = score(y, pred_old, metric)
        test_result = mcnemar(y, pred_new, pred_old)
        p_value = test_result.p_value
        evidence.update(
            {
                "champion.version": str(champion.version),
                f"champion.{metric}": round(old_metric, 6),
                "champion.data.raw_md5": old_tags.get("textops.data.raw_md5", ""),
                "champion.data.clean_md5": old_tags.get("textops.data.clean_md5", ""),
                "champion.rescored": str(
                    old_tags.get("textops.data.clean_md5") != tags.get("textops.data.clean_md5")
                ).lower(),
                "mcnemar.b": test_result.b,
                "mcnemar.c": test_result.c,
                "mcnemar.p_value": round(p_value, 6),
            }
        )
    decision = decide(params.promotion, new_metric, old_metric, p_value, validation_passed(root, params))
    evidence.update({"decision": "promoted" if decision.promote else "rejected", "reason": decision.reason})

    mv = mlflow.register_model(model_uri, name, tags={f"textops.{k}": str(v) for k, v in evidence.items()})
    version = str(mv.version)
    evidence = {"challenger.version": version, **evidence}
    c.log_text(run_id, decision_report(name, metric, evidence), REPORT_PATH)

    # Alias moves last: the challenger alias, then (if promoted) the champion alias in one update.
    c.set_registered_model_alias(name, CHALLENGER, version)
    if decision.promote:
        _move_champion(c, name, version, "auto", decision.reason)
    return {"name": name, "version": version, **asdict(decision), "evidence": evidence}


def decision_report(name: str, metric: str, evidence: dict) -> str:
    """The Markdown report logged to the challenger's run."""
    rows = "\n".join(f"| {k} | {v} |" for k, v in evidence.items() if k not in ("decision", "reason"))
    return (
        f"# Registry decision: {name} v{evidence['challenger.version']}\n\n"
        f"**{evidence['decision'].upper()}**: {evidence['reason']}\n\n"
        f"Primary metric: `{metric}` on the challenger's test split ({evidence['test_rows']} rows).\n\n"
        f"| evidence | value |\n|---|---|\n{rows}\n"
    )


# --------------------------------------------------------------------------------------------------
# model commands


def _version(c: MlflowClient, name: str, version: str):
    from mlflow.exceptions import MlflowException

    try:
        return c.get_model_version(name, str(version))
    except MlflowException as exc:
        raise RegistryError(f"{name} has no version {version!r}: see `textops model list`.") from exc


def _aliases(c: MlflowClient, name: str) -> dict[str, str]:
    return {alias: str(v) for alias, v in c.get_registered_model(name).aliases.items()}


def list_versions(root: Path, params: Params) -> list[dict]:
    """Every version of the registered model, newest first, with aliases, metric, data version, time."""
    c, name, metric = client(root, params), params.mlflow.registered_model, params.promotion.primary_metric
    rows = []
    versions = c.search_model_versions(f"name='{name}'")
    # search results do not carry aliases on every store: read them from the registered model
    aliases = _aliases(c, name) if versions else {}
    for mv in versions:
        t = mv.tags
        rows.append(
            {
                "version": str(mv.version),
                "aliases": sorted(a for a, v in aliases.items() if str(v) == str(mv.version)),
                "metric": t.get(f"textops.challenger.{metric}"),
                "raw_md5": t.get("textops.challenger.data.raw_md5", ""),
                "clean_md5": t.get("textops.challenger.data.clean_md5", ""),
                "data_rev": t.get("textops.challenger.data.rev", ""),
                "decision": t.get("textops.decision", ""),
                "created": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(mv.creation_timestamp / 1000)),
                "run_id": mv.run_id,
            }
        )
    return sorted(rows, key=lambda r: int(r["version"]), reverse=True)


def format_list(rows: list[dict], metric: str) -> str:
    if not rows:
        return "no registered versions yet: run `textops register` after training and evaluating."
    lines = [f"{'version':>7}  {'aliases':<20} {metric:>9}  {'data rev':<9} {'raw md5':<13} {'decision':<9} created"]
    for r in rows:
        m = f"{float(r['metric']):.4f}" if r["metric"] else "-"
        lines.append(
            f"{r['version']:>7}  {','.join(r['aliases']) or '-':<20} {m:>9}  {r['data_rev'][:8] or '-':<9} "
            f"{r['raw_md5'][:12] or '-':<13} {r['decision'] or '-':<9} {r['created']}"
        )
    return "\n".join(lines)


def show_version(root: Path, params: Params, version: str) -> dict:
    """Lineage of one version: data hashes, git commit, params, metrics, and the promotion decision."""
    c, name = client(root, params), params.mlflow.registered_model
    mv = _version(c, name, version)
    run = c.get_run(mv.run_id)
    t = run.data.tags
    return {
        "name": name,
        "version": str(mv.version),
        "aliases": sorted(mv.aliases),
        "run_id": mv.run_id,
        "source": mv.source,
        "data": {
            "raw_md5": t.get("textops.data.raw_md5"),
            "clean_md5": t.get("textops.data.clean_md5"),
            "rev": t.get("textops.data.rev"),
        },
        "git": {"dirty": t.get("textops.git.dirty"), "params_md5": t.get("textops.params_md5")},
        "params": dict(sorted(run.data.params.items())),
        "metrics": dict(sorted(run.data.metrics.items())),
        "decision": {k.removeprefix("textops."): v for k, v in sorted(mv.tags.items()) if k.startswith("textops.")},
    }


def promote(root: Path, params: Params, version: str, reason: str) -> str:
    """Manual override: make VERSION the champion, recording who-knows-why in `reason`."""
    from textops.recovery import registry_lock

    if not reason.strip():
        raise RegistryError("a manual promotion needs a reason (--reason).")
    c, name = client(root, params), params.mlflow.registered_model
    with registry_lock(root):
        mv = _version(c, name, version)
        c.set_model_version_tag(name, mv.version, "textops.manual_promotion", reason[:500])
        _move_champion(c, name, mv.version, "manual", reason)
    return f"{name} v{mv.version} is now the champion (manual: {reason})"


def rollback(root: Path, params: Params, to: str | None = None) -> str:
    """Make the previous champion (from the history) or version TO the champion again."""
    from textops.recovery import registry_lock

    c, name = client(root, params), params.mlflow.registered_model
    with registry_lock(root):
        current = _champion(c, name)
        if current is None:
            raise RegistryError(f"{name} has no champion: nothing to roll back.")
        target = str(to) if to is not None else rollback_target(_history(c, name), str(current.version))
        mv = _version(c, name, target)
        if str(mv.version) == str(current.version):
            raise RegistryError(f"v{mv.version} is already the champion.")
        _move_champion(c, name, mv.version, "rollback", f"rollback from v{current.version}")
    return f"{name}: champion rolled back from v{current.version} to v{mv.version}"


def models_by_data_version(root: Path, params: Params) -> dict[str, list[str]]:
    """Raw-data md5 -> model versions trained on it (for `textops data versions`). Empty without a store."""
    try:
        from textops.tracking import tracking_uri
    except ImportError:  # a checkout without the training module: no registry to ask
        return {}

    uri = tracking_uri(root, params)
    # Opening a SQLite store creates it: a read-only listing must not leave an empty database behind.
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        return {}
    try:
        rows = list_versions(root, params)
    except Exception:  # no registered model yet: there is simply nothing to show
        return {}
    out: dict[str, list[str]] = {}
    for r in reversed(rows):
        if r["raw_md5"]:
            out.setdefault(r["raw_md5"], []).append(r["version"])
    return out
