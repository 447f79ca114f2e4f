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


def baseline_summary(baseline: dict | None) -> str:
    """` (TF-IDF + logistic regression baseline: accuracy .., macro_f1 ..)`, or '' without a baseline."""
    if not baseline:
        return ""
    figures = ", ".join(f"{k} {baseline[k]:.4f}" for k in ("accuracy", "macro_f1") if baseline.get(k) is not None)
    return f" ({baseline.get('model', 'baseline')} baseline: {figures})"


def run_summary(summary: dict) -> str:
    """One paragraph for a pipeline run: the test metrics and what the registry decided."""
    if "register" not in summary:
        return summary.get("message") or "done"
    reg, ev = summary["register"], summary.get("evaluate", {})
    metrics = {k: ev[k] for k in ("accuracy", "macro_f1") if isinstance(ev.get(k), int | float)}
    return (
        f"trained and evaluated: {', '.join(f'{k} {v:.4f}' for k, v in metrics.items()) or ev}"
        f"{baseline_summary(ev.get('baseline'))}; "
        f"registered {reg.get('name')} v{reg['version']}: "
        f"{'now the champion' if reg['promote'] else 'not promoted'} ({reg['reason']})"
    )
