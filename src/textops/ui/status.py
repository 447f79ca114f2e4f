"""`textops status`: a project on one screen. The champion and the challenger (version, test metric, data
version, age, decision), the last training runs, files waiting in the landing directory, the deployments'
schedules, whether `textops serve` answers and with which version, and whether data/ is what the champion saw.

Read-only: nothing here writes to the project, the MLflow store or the registry.
"""

from __future__ import annotations

import time
from pathlib import Path

import yaml

from textops.adapters import dvc
from textops.adapters.tracking import connect, store_exists, tracking_uri
from textops.core import lineage
from textops.core.artifacts import landing_files
from textops.core.config import Params
from textops.lifecycle.landed import HELD_DIR, REASON_SUFFIX
from textops.registry.sqlstore import model_files_present, read_store


def project_status(root: Path, params: Params, runs: int = 5, quick: bool = True) -> dict:
    """Everything `textops status` shows, as plain data (`--json` prints it). The registry and the runs are read
    from the project's SQLite store directly where `sqlstore.read_store` is sure (QUICK), else from MLflow."""
    root = Path(root)
    out: dict = {"aliases": {}, "runs": [], "data": data_state(root, params)}
    if store_exists(tracking_uri(root, params)):
        out["aliases"], out["runs"] = registry_and_runs(root, params, runs, quick)
    champion = out["aliases"].get(lineage.CHAMPION_ALIAS) or {}
    data = out["data"]
    trained_on = bool(champion) and champion.get("raw_md5") == data["raw_md5"]
    data["champion_trained_on_it"] = trained_on and not data["edited"]  # an edited data/ is nobody's
    out["landing"] = [p.name for p in landing_files(root, params)]
    held = Path(root) / params.data.landing_dir / HELD_DIR
    out["landing_held"] = sorted(p.name.removesuffix(REASON_SUFFIX) for p in held.glob(f"*{REASON_SUFFIX}"))
    out["schedules"] = schedules(root)
    from textops.live.feedback import online_figures

    out["online"] = online_figures(root / params.serve.request_log_dir)
    out["serving_checked"] = servers(root, params)
    out["serving"] = next((answer for url in out["serving_checked"] if (answer := serving_at(url))), None)
    return out


def registry_and_runs(root: Path, params: Params, runs: int, quick: bool = True) -> tuple[dict, list[dict]]:
    """The aliases' summaries and the last RUNS runs: from the SQLite file (no MLflow import) or from MLflow."""
    metric = params.promotion.primary_metric
    found = read_store(root, params, runs) if quick else None
    if found is not None:
        versions = {v["version"]: v for v in found["versions"]}
        chosen = {alias: versions.get(found["aliases"].get(alias, "")) for alias in lineage.ALIASES}
        return (
            {
                alias: v and version_summary(v["version"], v["tags"], v["created_ms"], v["location"] or "", metric)
                for alias, v in chosen.items()
            },
            [run_row(r["run_id"], r["status"], r["start_ms"], r["tags"], r["metrics"], metric) for r in found["runs"]],
        )
    session = connect(root, params, experiment=False)
    return {alias: alias_summary(session, alias, metric) for alias in lineage.ALIASES}, last_runs(session, params, runs)


def servers(root: Path, params: Params) -> list[str]:
    """Where this project's servers may listen: each running `textops serve` (its --port too), then params'."""
    from textops.serving.serve import announced

    host = "127.0.0.1" if params.serve.host in ("0.0.0.0", "::") else params.serve.host
    default = f"http://{'[' + host + ']' if ':' in host else host}:{params.serve.port}"
    return list(dict.fromkeys([*announced(root), default]))


def alias_summary(session, alias: str, metric: str) -> dict | None:
    from mlflow.exceptions import MlflowException

    try:
        mv = session.client.get_model_version_by_alias(session.model_name, alias)
    except MlflowException:
        return None
    location = session.client.get_model_version_download_uri(session.model_name, mv.version)
    return version_summary(str(mv.version), mv.tags or {}, mv.creation_timestamp, location, metric)


def version_summary(version: str, tags: dict, created_ms: int, location: str, metric: str) -> dict:
    """What status shows of an alias's version, from its registry tags (either way of reading the store)."""
    return {
        "version": version,
        # A local store's version whose files are gone (deleted, a share down) would fail to serve and to compare.
        "files_missing": location.startswith("file:") and not model_files_present(location),
        "metric": tags.get(lineage.challenger_evidence(metric)),
        "decision": tags.get(lineage.DECISION, ""),
        "reason": tags.get(lineage.REASON, ""),
        "raw_md5": tags.get(lineage.RAW_MD5) or tags.get(lineage.challenger_evidence("data.raw_md5")),
        "data_rev": tags.get(lineage.challenger_evidence("data.rev"), ""),
        "created": created_ms / 1000,
    }


def last_runs(session, params: Params, limit: int) -> list[dict]:
    experiment = session.client.get_experiment_by_name(params.mlflow.experiment)
    if experiment is None:
        return []
    found = session.client.search_runs(
        [experiment.experiment_id], order_by=["attributes.start_time DESC"], max_results=limit
    )
    metric = params.promotion.primary_metric
    return [
        run_row(r.info.run_id, r.info.status, r.info.start_time, r.data.tags, r.data.metrics, metric) for r in found
    ]


def run_row(run_id: str, status: str, start_ms: int, tags: dict, metrics: dict, metric: str) -> dict:
    return {
        "run_id": run_id,
        "status": status,
        "start": start_ms / 1000,
        "stage": tags.get(lineage.STAGE, ""),
        lineage.test_metric(metric): metrics.get(lineage.test_metric(metric)),
    }


def data_state(root: Path, params: Params) -> dict:
    """The raw data version data/ holds now (data.dvc's md5; None before the first ingest), and how data/ differs
    from it (`dvc.raw_changes`: [] when it is that version byte for byte, or the local cache cannot tell)."""
    from textops.adapters.dvc import raw_changes, restore_advice

    try:
        raw = dvc.raw_md5(root, params)
        # data/ edited by hand is not the version data.dvc names, whoever trained on that version
        edited = raw_changes(root, params) if raw else None
    except Exception:  # a missing or conflicted pointer: status reports, the data commands explain
        raw, edited = None, None
    return {"raw_md5": raw, "edited": edited or [], "restore": restore_advice(params) if edited else None}


def schedules(root: Path) -> list[dict]:
    """The deployments in prefect.yaml with their schedules (what `prefect deploy` would create)."""
    path = root / "prefect.yaml"
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return []
    out = []
    for d in spec.get("deployments") or []:
        when = [schedule_text(s) for s in d.get("schedules") or [] if isinstance(s, dict)]
        pool = (d.get("work_pool") or {}).get("name")
        out.append(
            {
                "name": d.get("name"),
                "pool": pool,
                "schedules": [w for w in when if w],
                "triggers": len(d.get("triggers") or []),
            }
        )
    return out


def schedule_text(schedule: dict) -> str | None:
    """One schedule of prefect.yaml for people: `cron 0 2 * * * (UTC)`, `every 1 h`, `rrule ...`."""
    if schedule.get("cron"):
        return f"cron {schedule['cron']} ({schedule.get('timezone') or 'UTC'})"
    if schedule.get("interval"):
        try:
            seconds = float(schedule["interval"])
        except (TypeError, ValueError):
            return f"every {schedule['interval']}"
        for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
            if seconds >= size and seconds % size == 0:
                return f"every {seconds / size:g} {unit}"
        return f"every {seconds:g} s"
    return f"rrule {schedule['rrule']}" if schedule.get("rrule") else None


def serving_at(url: str, timeout: float = 1.0) -> dict | None:
    """What `textops serve` at URL answers on /version; None when nothing answers there."""
    url = url.replace("://0.0.0.0:", "://127.0.0.1:").replace("://[::]:", "://127.0.0.1:")
    import httpx

    try:
        resp = httpx.get(f"{url}/version", timeout=timeout)
        return resp.raise_for_status().json() | {"url": url}
    except (httpx.HTTPError, OSError, ValueError, TypeError):
        return None


def age(seconds_since_epoch: float) -> str:
    s = max(0, time.time() - seconds_since_epoch)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if s >= size:
            return f"{s / size:.0f} {unit} ago"
    return f"{s:.0f} s ago"


def no_champion_hint(st: dict) -> str:
    """What to do when nothing is champion: train one, or serve the challenger that missed the gate anyway."""
    waiting = st["aliases"].get(lineage.CHALLENGER_ALIAS)
    if not waiting:
        return "run `textops run`"
    version = waiting["version"]
    return f'v{version} was not promoted; `textops model promote {version} --reason "..."` serves it'


def data_lines(st: dict) -> list[str]:
    """What status says of data/: the version data.dvc names and whether the champion saw it, or that data/ was
    edited outside textops (then it is neither, and the command that really puts it back)."""
    d = st["data"]
    if not d["raw_md5"]:
        return ["data/       empty"]
    if d.get("edited"):
        shown = "; ".join(d["edited"][:5]) + ("; ..." if len(d["edited"]) > 5 else "")
        return [
            f"{'data/':<11} raw {d['raw_md5'][:8]} in data.dvc, but data/ was edited outside textops ({shown})",
            f"{'':<11} not what the champion was trained on, nor any data version. {d['restore']}.",
        ]
    same = "the champion's" if d.get("champion_trained_on_it") else "not what the champion was trained on"
    same = same if st["aliases"].get(lineage.CHAMPION_ALIAS) else "no champion yet"
    return [f"{'data/':<11} raw {d['raw_md5'][:8]}: {same}"]


def format_status(st: dict, metric: str) -> str:
    """The one screen."""
    lines = []
    for alias in lineage.ALIASES:
        a = st["aliases"].get(alias)
        if a is None:
            hint = f"  ({no_champion_hint(st)})" if alias == lineage.CHAMPION_ALIAS else ""
            lines.append(f"{alias:<11} none{hint}")
            continue
        lines.append(
            f"{alias:<11} v{a['version']:<4} {metric} {a['metric'] or '-':<8} data {(a['raw_md5'] or '-')[:8]}"
            f" (rev {(a['data_rev'] or '-')[:8]})  {age(a['created'])}  {a['decision']}"
        )
        if a.get("files_missing"):
            lines.append(
                f"{'':<11} WARNING: v{a['version']}'s model files cannot be read: it cannot be served or "
                "compared (make them available, or `textops model promote` another version)"
            )
        if alias == lineage.CHALLENGER_ALIAS and a["reason"]:
            lines.append(f"{'':<11} {a['reason'][:150]}")
    lines += data_lines(st)
    waiting = st["landing"]
    lines.append(f"{'landing':<11} {len(waiting)} file(s) waiting" + (f": {', '.join(waiting[:5])}" if waiting else ""))
    if st.get("landing_held"):
        held = st["landing_held"]
        lines.append(f"{'':<11} {len(held)} held for a person in held/ (the reason beside each): {', '.join(held[:5])}")
    srv = st["serving"]
    if srv:
        lines.append(
            f"{'serving':<11} {srv['url']}: v{srv.get('model_version', srv.get('version', '?'))} "
            f"({srv.get('alias') or 'pinned'})"
        )
    else:
        lines.append(f"{'serving':<11} nothing answers at {', '.join(st.get('serving_checked') or [])}")
    for version, f in (st.get("online") or {}).items():
        lines.append(f"{'online':<11} v{version}: accuracy {f['accuracy']:.3f} on {f['n']} answers labelled (feedback)")
    if st["schedules"]:  # what the file says: a Prefect server is not asked, so nothing here says it was deployed
        lines.append(f"{'prefect.yaml':<11} the deployments `prefect deploy --all` creates:")
    for dep in st["schedules"]:
        when = ", ".join(dep["schedules"]) or "no schedule"
        trig = f", {dep['triggers']} trigger(s)" if dep["triggers"] else ""
        lines.append(f"  {dep['name']} on work pool {dep['pool']}: {when}{trig}")
    if st["runs"]:
        lines.append("last runs:")
        for r in st["runs"]:
            f = r.get(lineage.test_metric(metric))
            lines.append(
                f"  {r['run_id'][:12]}  {r['status']:<9} {r['stage']:<9} {age(r['start']):<12} "
                f"test {metric} {'-' if f is None else f'{f:.4f}'}"
            )
    return "\n".join(lines)
