"""What the CLI prints: tables and summaries, formatted from the plain dicts the library returns (a stage's own line
is its typed result's `describe()`: `data.results`, `modeling.results`, `lifecycle.results`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from textops.core import lineage

if TYPE_CHECKING:
    from textops.core.config import Params


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
    """A pipeline run at a glance: test metrics of the challenger, the champion it was compared with and the
    TF-IDF baseline where evaluated, the decision with its reason (the register stage's `describe()`), and where to
    look next."""
    from textops.lifecycle.results import RegisterResult

    if "register" not in summary:
        return summary.get("message") or "done"
    reg, ev = RegisterResult.from_dict(summary["register"]), summary.get("evaluate", {})
    evidence, side = reg.evidence, lineage.challenger_key("")
    named = (lineage.challenger_key("version"), lineage.challenger_key("run_id"))
    metric = next(
        (k.removeprefix(side) for k in evidence if k.startswith(side) and k.count(".") == 1 and k not in named),
        "macro_f1",
    )
    rows = [(f"challenger v{reg.version}", ev.get("accuracy"), ev.get("macro_f1"))]
    if lineage.champion_key(metric) in evidence:
        figures = (_champion_figure(evidence, m, metric) for m in ("accuracy", "macro_f1"))
        rows.append((f"champion v{reg.compared_with}", *figures))
    baseline = ev.get("baseline")
    if isinstance(baseline, dict):
        rows.append(("baseline (TF-IDF)", baseline.get("accuracy"), baseline.get("macro_f1")))
    aside = summary.get("transformer")  # `auto`'s transformer, which lost to the baseline (flows.pipeline)
    if isinstance(aside, dict):
        rows.append((f"{aside.get('base_model')} (set aside)", aside.get("accuracy"), aside.get("macro_f1")))
    lines = [f"{'':<22} {'test accuracy':>13} {'test macro-F1':>13}"]
    lines += [f"{name:<22} {_fmt(acc):>13} {_fmt(f1):>13}" for name, acc, f1 in rows]
    lines += ["", f"registered {reg.describe()}"]
    return "\n".join(lines)


def _champion_figure(evidence: dict, name: str, metric: str):
    """The champion's figure for metric NAME from the registry's evidence (only the primary metric is there)."""
    key = lineage.champion_key(name)
    return evidence.get(key) if name == metric or key in evidence else None


def _fmt(value) -> str:
    try:
        return f"{float(value):.4f}"
    except (TypeError, ValueError):
        return "-"


def next_steps(root: Path, params: Params, summary: dict) -> str:
    """Where to look after a run: its files, the MLflow run, the log."""
    from textops.adapters import git, logs
    from textops.adapters.tracking import tracking_uri
    from textops.core.params_file import redact

    uri = tracking_uri(root, params)  # a tracking server has its own UI
    ui = f"mlflow ui --backend-store-uri {params.mlflow.tracking_uri} --port 5000 --workers 1"
    ui = redact(uri) if uri.startswith("http") else ui
    run_id = summary.get("evaluate", {}).get("run_id") or summary.get("train", {}).get("run_id") or ""
    report = summary.get("validate", {}).get("report")

    def rel(path) -> str:
        path = Path(path)
        return str(path.relative_to(root)) if path.is_absolute() and path.is_relative_to(root) else str(path)

    looks = [
        ("metrics/eval.json", "test metrics (`dvc metrics show`; `dvc plots show` draws the curves)"),
        (params.evaluate.output_dir, "confusion matrix, calibration, misclassified rows"),
        *([(rel(report), "the data checks")] if report else []),
        *([(rel(summary["report"]), "this run on one page (also in MLflow)")] if summary.get("report") else []),
        *([(rel(logs.CURRENT), "the libraries' log of this run")] if logs.CURRENT and logs.CURRENT.exists() else []),
    ]
    width = max(len(a) for a, _ in looks)
    lines = ["", "look at:"] + [f"  {a:<{width}}  # {b}" for a, b in looks]
    # --commit only where git can make the commit (it needs an identity: user.name and user.email).
    ingest = "textops ingest NEW.csv --commit" if git.can_commit(root) else "textops ingest NEW.csv"
    lines += [
        "",
        f"MLflow (run {run_id[:12]}, the registry):" if run_id else "MLflow (runs, the registry):",
        f"  {ui}",
        "next:",
        *(f"  {cmd:<{len(ingest) + 16}}# {why}" for cmd, why in serve_steps(summary.get("register"))),
        f"  {ingest} && textops run  # retrain on new data",
        f"  {'docs/orchestration.md':<{len(ingest) + 16}}# schedules and GPU workers",
    ]
    return "\n".join(lines + landing_lines(root, params))


def landing_lines(root: Path, params: Params) -> list[str]:
    """The landing files still waiting (this run did not take them: the retrain flow or `textops ingest` does),
    and those held for a person."""
    from textops.core.artifacts import landing_files
    from textops.lifecycle.landed import HELD_DIR, REASON_SUFFIX

    landing = params.data.landing_dir
    waiting = landing_files(root, params)
    held = sorted((Path(root) / landing / HELD_DIR).glob(f"*{REASON_SUFFIX}"))
    lines = []
    if waiting:
        names = ", ".join(p.name for p in waiting[:3]) + (", ..." if len(waiting) > 3 else "")
        how = f"`textops ingest {landing}/FILE` or the retrain flow takes them"
        lines.append(f"{len(waiting)} file(s) waiting in {landing}/ ({names}): {how}")
    if held:
        lines.append(f"{len(held)} file(s) held in {landing}/{HELD_DIR}/, each with its reason beside it")
    return ["", *lines] if lines else []


def serve_steps(reg: dict | None) -> list[tuple[str, str]]:
    """What to do about serving after a register: serve the champion, or, where the run left no champion (the
    first challenger missed the gate), how to serve it anyway or make a better one."""
    if not reg or reg.get("promote") or lineage.champion_key("version") in (reg.get("evidence") or {}):
        return [("textops serve", "serve the champion over REST")]
    version = reg["version"]
    return [
        (f'textops model promote {version} --reason "..."', f"no champion yet: serve v{version} anyway"),
        ("docs/training.md", "a better model: more data, more epochs (-S train.epochs=N), model.base"),
    ]


LABELLED = ("label", "performance")  # the monitor's check kinds that need the new rows' labels


def format_monitor(result: dict) -> str:
    """The monitor's verdict and one line per check: kind, name, reference and new figures, p-value."""
    if result.get("nothing_new"):
        return result["nothing_new"]

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
    online = result.get("online") or {}
    for c in result["checks"]:
        mark = "DRIFT" if c["drifted"] else ("skip" if "skipped" in c else "ok")
        if "skipped" in c:
            # The texts came unlabelled, but feedback labelled some answers: say where those figures are, so that
            # "no labels" above "153 answers labelled" reads as the two sources they are.
            where = "; the feedback's labels: the online lines below" if online and c["kind"] in LABELLED else ""
            lines.append(f"{mark:<6} {c['kind']:<12} {c['name']:<32} ({c['skipped']}{where})")
            continue
        lines.append(
            f"{mark:<6} {c['kind']:<12} {c['name']:<32} {show(c.get('reference')):>27} "
            f"{show(c.get('current')):>27} {show(c.get('p_value')):>9}"
        )
    for version, f in online.items():
        lines.append(
            f"online v{version}: {f['n']} answers labelled by feedback, accuracy {f['accuracy']:.3f}, "
            f"macro-F1 {f['macro_f1']:.3f}"
        )
    for f in (result.get("shadow") or {}).values():
        labelled = (
            (
                f" ; on {f['labelled']} labelled: served {f['served_accuracy']:.3f}, shadow "
                f"{f['shadow_accuracy']:.3f} (McNemar p {f['mcnemar_p']:.3g})"
            )
            if f["labelled"]
            else ""
        )
        lines.append(
            f"shadow v{f['shadow_version']} beside v{f['served_version']}: agrees on "
            f"{f['agreement']:.1%} of {f['texts']} texts{labelled}"
        )
    verdict = f"DRIFT ({', '.join(result['kinds'])})" if result["drift"] else "no drift"
    lines.append(f"{verdict}; report {result['report']}, MLflow run {result['mlflow_run_id']}")
    return "\n".join(lines)


def format_explanations(result: dict, top: int = 5) -> str:
    """`textops explain`: per text, the answer, the class explained, the words that pushed towards it most and
    against it most, then every word with its attribution."""
    lines = [f"explain: {result['model']} (layer integrated gradients, {result['steps']} steps)"]
    for e in result["explanations"]:
        words = e["words"]
        ranked = sorted(words, key=lambda w: w["attribution"], reverse=True)
        towards = ", ".join(f"{w['word']} {w['attribution']:+.3f}" for w in ranked[:top] if w["attribution"] > 0)
        against = ", ".join(f"{w['word']} {w['attribution']:+.3f}" for w in ranked[::-1][:top] if w["attribution"] < 0)
        lines += [
            "",
            f"answer {e['label']} (p={e['prob']:.3f}); explaining {e['target']}: logit {e['logit']:.3f}, baseline "
            f"{e['baseline_logit']:.3f}, delta {e['delta']:+.4f}",
            f"  towards: {towards or '-'}",
            f"  against: {against or '-'}",
            "  " + " ".join(f"{w['word']}({w['attribution']:+.2f})" for w in words),
        ]
    return "\n".join(lines)
