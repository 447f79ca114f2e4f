"""What the CLI prints: tables and summaries, formatted from the plain dicts the library returns."""

from __future__ import annotations


def format_versions(versions: list[dict]) -> str:
    if not versions:
        return "no data versions yet: run `textops run`, or ingest data and commit it (`textops ingest FILE --commit`)."
    lines = [f"{'rev':<10} {'date':<25} {'raw md5':<14} {'clean md5':<14} {'train':>8} {'val':>7} {'test':>7}  models"]
    for v in versions:
        s = v.get("splits") or {}
        models = ",".join(str(m) for m in v.get("models", [])) or "-"
        rev = (v.get("rev") or "(none)")[:8]
        lines.append(
            f"{rev:<10} {v.get('date') or '-':<25} {(v['raw_md5'] or '-')[:12]:<14} {(v['clean_md5'] or '-')[:12]:<14} "
            f"{s.get('train', '-'):>8} {s.get('val', '-'):>7} {s.get('test', '-'):>7}  {models}"
        )
    return "\n".join(lines)


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


def run_summary(summary: dict) -> str:
    """One paragraph for a pipeline run: the test metrics and what the registry decided."""
    if "register" not in summary:
        return summary.get("message") or "done"
    reg, ev = summary["register"], summary.get("evaluate", {})
    metrics = {k: ev[k] for k in ("accuracy", "macro_f1") if isinstance(ev.get(k), int | float)}
    return (
        f"trained and evaluated: {', '.join(f'{k} {v:.4f}' for k, v in metrics.items()) or ev}; "
        f"registered {reg.get('name')} v{reg['version']}: "
        f"{'now the champion' if reg['promote'] else 'not promoted'} ({reg['reason']})"
    )


def format_monitor(result: dict) -> str:
    """The monitor's verdict and one line per check: kind, name, reference and new figures, p-value."""

    def show(value) -> str:
        if isinstance(value, float):
            return f"{value:.3f}"
        if isinstance(value, dict):
            return " ".join(f"{k}:{v:.2f}" for k, v in list(value.items())[:4])
        return "-" if value is None else str(value)

    champion = result["champion"]
    lines = [
        f"monitor: {result['rows']} rows from {result['source']} against {champion['name']} v{champion['version']}'s "
        "training data",
        f"{'':<6} {'kind':<12} {'check':<32} {'reference':>27} {'new':>27} {'p-value':>9}",
    ]
    for c in result["checks"]:
        mark = "DRIFT" if c["drifted"] else ("skip" if "skipped" in c else "ok")
        if "skipped" in c:
            lines.append(f"{mark:<6} {c['kind']:<12} {c['name']:<32} ({c['skipped']})")
            continue
        lines.append(f"{mark:<6} {c['kind']:<12} {c['name']:<32} {show(c.get('reference')):>27} "
                     f"{show(c.get('current')):>27} {show(c.get('p_value')):>9}")  # fmt: skip
    verdict = f"DRIFT ({', '.join(result['kinds'])})" if result["drift"] else "no drift"
    lines.append(f"{verdict}; report {result['report']}, MLflow run {result['mlflow_run_id']}")
    return "\n".join(lines)
