"""Pages for people: the validation report and the run report, each one self-contained HTML file.

Nothing is loaded from the network (textops runs offline: no scripts, fonts or styles from a CDN), pictures are
embedded as data URIs, and every value that comes from the data is escaped, so a text like
`<script>...</script>` in a training file shows as text and never runs in the reader's browser.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Collection
from pathlib import Path
from typing import Any

STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1100px;
       color: #1f2328; padding: 0 1em; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 1.6em; border-bottom: 1px solid #d0d7de; }
table { border-collapse: collapse; width: 100%; margin: .6em 0; }
th, td { border: 1px solid #d0d7de; padding: .3em .55em; text-align: left; vertical-align: top; }
th { background: #f6f8fa; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.ok { color: #1a7f37; font-weight: 600; } .fail { color: #cf222e; font-weight: 600; }
.banner { padding: .7em 1em; border-radius: 6px; margin: 1em 0; font-weight: 600; }
.banner.ok { background: #dafbe1; } .banner.fail { background: #ffebe9; }
code, .example { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: .92em;
                 white-space: pre-wrap; word-break: break-word; }
.example { display: block; background: #f6f8fa; margin: .15em 0; padding: .1em .3em; }
img { max-width: 100%; border: 1px solid #d0d7de; }
.muted { color: #59636e; }
"""

MAX_EXAMPLE_CHARS = 300


def esc(value: Any) -> str:
    """VALUE as HTML text: escaped, long values cut."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    if len(text) > MAX_EXAMPLE_CHARS:
        text = text[:MAX_EXAMPLE_CHARS] + f"… ({len(text)} characters)"
    return html.escape(text, quote=True)


def page(title: str, body: str) -> str:
    return (
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        # No script may run, whatever a value holds: the page needs none.
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; "
        "style-src 'unsafe-inline'\">"
        f"<title>{esc(title)}</title><style>{STYLE}</style></head>\n<body>\n{body}\n</body></html>\n"
    )


def table(header: list[str], rows: list[list[str]], numeric: Collection[int] = frozenset()) -> str:
    """An HTML table; cells are given as HTML (escape values with esc first)."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    num = ' class="num"'
    body = "".join(
        "<tr>" + "".join(f"<td{num if i in numeric else ''}>{c}</td>" for i, c in enumerate(r)) + "</tr>" for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def image(path: Path, alt: str) -> str:
    """A PNG embedded as a data URI (the page stays one file); nothing when it does not exist."""
    if not Path(path).exists():
        return ""
    data = base64.b64encode(Path(path).read_bytes()).decode()
    caption = esc(alt)
    img = f'<img alt="{caption}" src="data:image/png;base64,{data}">'
    return f"<figure>{img}<figcaption>{caption}</figcaption></figure>"


# --------------------------------------------------------------------------------------------------
# the validation report


def outcome(record: dict) -> str:
    """How an expectation came out, in words (HTML)."""
    if record.get("error"):
        return f"could not run: {esc(record['error'])}"
    parts = []
    if record.get("unexpected_count") is not None:
        parts.append(f"{record['unexpected_count']} unexpected ({record.get('unexpected_percent') or 0:.2f}%)")
    elif record.get("observed_value") is not None:
        parts.append(f"observed {esc(record['observed_value'])}")
    examples = "".join(f'<span class="example">{esc(e)}</span>' for e in record.get("examples") or [])
    return esc("; ".join(parts)) + examples


def validation_page(summary: dict, rows: dict[str, int], labels: list[str]) -> str:
    """The validation report: the verdict, each suite, each expectation with its bounds, outcome and examples."""
    verdict = (
        f"passed: {summary['evaluated']} expectations held"
        if summary["success"]
        else f"failed: {summary['failed']} of {summary['evaluated']} expectations did not hold"
    )
    body = [
        "<h1>Data validation (Great Expectations)</h1>",
        f'<div class="banner {"ok" if summary["success"] else "fail"}">{esc(verdict)}</div>',
        "<p class=\"muted\">The cleaned splits " + esc(", ".join(f"{k} {v} rows" for k, v in rows.items()))
        + f"; {len(labels)} classes: " + esc(", ".join(labels[:50])) + (" …" if len(labels) > 50 else "") + "</p>",
    ]
    order = sorted(summary.get("expectations", []), key=lambda r: (r["success"], r["suite"]))
    by_suite: dict[str, list[dict]] = {}
    for record in order:
        by_suite.setdefault(record["suite"], []).append(record)
    for suite, records in by_suite.items():
        state = summary["suites"].get(suite, {})
        mark = '<span class="ok">passed</span>' if state.get("success", True) else '<span class="fail">failed</span>'
        body.append(f"<h2>{esc(suite)} {mark}</h2>")
        table_rows = [
            [
                '<span class="ok">✓</span>' if r["success"] else '<span class="fail">✗</span>',
                f"<code>{esc(r['expectation'])}</code>",
                esc(r["column"] or ""),
                esc(", ".join(f"{k}={v}" for k, v in r["bounds"].items())),
                "" if r["success"] else outcome(r),
            ]
            for r in records
        ]
        body.append(table(["", "expectation", "column", "bounds", "what was found"], table_rows))
    return page("Data validation", "\n".join(body))


# --------------------------------------------------------------------------------------------------
# the monitoring report


def figure(value: Any) -> str:
    """A figure for a cell: a number to 4 places, a share per class, or the value as text (escaped)."""
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, dict):
        return esc(", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in value.items()))
    return "" if value is None else esc(value)


def monitor_page(result: dict) -> str:
    """The monitoring report: the verdict, what was compared with what, and every check with its figures."""
    kinds = ", ".join(result["kinds"])
    verdict = f"drift: {kinds}" if result["drift"] else "no drift"
    champion = result["champion"]
    body = [
        "<h1>Monitoring: new data against the champion's training data</h1>",
        f'<div class="banner {"fail" if result["drift"] else "ok"}">{esc(verdict)}</div>',
        f'<p class="muted">{esc(result["rows"])} new rows from {esc(result["source"])}'
        f"{' (labelled)' if result['labelled'] else ' (unlabelled)'}; champion {esc(champion['name'])} "
        f"v{esc(champion['version'])}, reference rows: {esc(result['reference_rows'])}.</p>",
    ]
    rows = [
        [
            '<span class="fail">drift</span>'
            if c["drifted"]
            else ("skipped" if "skipped" in c else '<span class="ok">ok</span>'),
            esc(c["kind"]),
            esc(c["name"]),
            esc(c["test"]),
            figure(c.get("reference")),
            figure(c.get("current")),
            figure(c.get("statistic")),
            figure(c.get("p_value")),
            esc(c.get("skipped") or c.get("threshold") or ""),
        ]
        for c in result["checks"]
    ]
    header = ["", "kind", "check", "test", "reference", "new", "statistic", "p-value", "drift when"]
    body.append(table(header, rows, numeric={6, 7}))
    online = result.get("online") or {}
    if online:
        body.append("<h2>Online: served answers labelled by feedback</h2>" + table(
            ["model version", "labelled answers", "accuracy", "macro-F1"],
            [[esc(v), esc(f["n"]), figure(f["accuracy"]), figure(f["macro_f1"])] for v, f in online.items()],
            numeric={1, 2, 3}))  # fmt: skip
    shadow = result.get("shadow") or {}
    if shadow:
        body.append("<h2>Shadow challenger: the same live texts</h2>" + table(
            ["served", "shadow", "texts", "agreement", "labelled", "served accuracy", "shadow accuracy", "McNemar p"],
            [[esc(f["served_version"]), esc(f["shadow_version"]), esc(f["texts"]), figure(f["agreement"]),
              esc(f["labelled"]), *(figure(f.get(k)) for k in ("served_accuracy", "shadow_accuracy", "mcnemar_p"))]
             for f in shadow.values()], numeric={2, 3, 4, 5, 6, 7}))  # fmt: skip
    return page("Monitoring", "\n".join(body))


# --------------------------------------------------------------------------------------------------
# the run report


def run_page(summary: dict, files: dict[str, Any], pictures: dict[str, Path]) -> str:
    """One pipeline run on one page: the data, the data gate, the training curves, the test metrics with the
    confusion matrix, and the registry's decision with its reason. FILES holds the stages' metric files
    (preprocess, validate, train, eval; any may be missing), PICTURES the PNGs to embed."""
    pre, val, ev = files.get("preprocess") or {}, files.get("validate") or {}, files.get("eval") or {}
    reg = summary.get("register") or {}
    decision = ("promoted: the new champion" if reg.get("promote") else "not promoted") if reg else "not registered"
    body = [f"<h1>textops run: {esc(reg.get('name', ''))} v{esc(reg.get('version', '?'))}</h1>",
            f'<div class="banner {"ok" if reg.get("promote") else "fail"}">{esc(decision)}: '
            f"{esc(reg.get('reason', summary.get('message', '')))}</div>", "<h2>Data</h2>"]  # fmt: skip
    if pre:
        body.append(table(["rows in", "rows out", "dropped", "train", "val", "test", "raw data"], [[
            esc(pre.get("rows_in")), esc(pre.get("rows_out")),
            esc(", ".join(f"{k} {v}" for k, v in (pre.get("dropped") or {}).items() if v) or "none"),
            *(esc((pre.get("splits") or {}).get(s, "")) for s in ("train", "val", "test")),
            f"<code>{esc(pre.get('raw_md5', ''))}</code>"]], numeric={0, 1, 3, 4, 5}))  # fmt: skip
        balance = pre.get("class_balance", {}).get("train") or {}
        rows = [[esc(k), esc(v)] for k, v in list(balance.items())[:50]]
        body.append(table(["class", "train rows"], rows, numeric={1}) if rows else "")
    if val:
        ok = val.get("success")
        body.append(f"<h2>Data gate <span class=\"{'ok' if ok else 'fail'}\">{'passed' if ok else 'failed'}</span></h2>"
                    f"<p>{esc(val.get('evaluated'))} expectations evaluated, {esc(val.get('failed', 0))} failed.</p>")
    body.append("<h2>Training</h2>" + image(pictures.get("training_curve", Path()), "loss and validation macro-F1"))
    if ev:
        metrics = [[esc(k), f"{float(ev[k]):.4f}"] for k in ("accuracy", "macro_f1", "log_loss", "ece", "roc_auc")
                   if isinstance(ev.get(k), int | float)]  # fmt: skip
        found = ev.get("baseline")
        baseline = found if isinstance(found, dict) else {}
        metrics += [[esc(f"baseline (TF-IDF) {k}"), f"{v:.4f}" if isinstance(v, float) else str(v)]
                    for k, v in baseline.items() if isinstance(v, int | float) and not isinstance(v, bool)]  # fmt: skip
        body.append("<h2>Test split</h2>" + table(["metric", "value"], metrics, numeric={1}))
    body.append(image(pictures.get("confusion_matrix", Path()), "confusion matrix (test split)"))
    evidence = reg.get("evidence") or {}
    if evidence:
        body.append("<h2>Registry decision</h2>" + table(["evidence", "value"],
                    [[esc(k), esc(v)] for k, v in evidence.items()]))  # fmt: skip
    return page("textops run", "\n".join(body))


RUN_REPORT = "run.html"  # in validate.report_dir's parent (reports/), and as an artifact of the MLflow run


def write_run_report(root: Path, params, summary: dict) -> Path:
    """reports/run.html for the pipeline run SUMMARY (the flow's), also logged to its MLflow run."""
    from textops.core import artifacts
    from textops.core.tracking import connect

    root = Path(root)

    def load(rel: str) -> dict:
        try:
            return json.loads((root / rel).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    files = {name: load(rel) for name, rel in (("preprocess", artifacts.PREPROCESS_METRICS),
             ("validate", artifacts.VALIDATE_METRICS), ("eval", artifacts.EVAL_METRICS))}  # fmt: skip
    pictures = {"training_curve": artifacts.model_dir(root, params) / "training_curve.png",
                "confusion_matrix": root / params.evaluate.output_dir / "confusion_matrix.png"}  # fmt: skip
    path = root / Path(params.validate_.report_dir).parent / RUN_REPORT
    artifacts.atomic_write_text(path, run_page(summary, files, pictures))
    run_id = (summary.get("evaluate") or {}).get("run_id")
    if run_id:
        connect(root, params, experiment=False).client.log_artifact(run_id, str(path))
    return path
