"""Pages for people: the validation report, the monitoring report and the run report, each one self-contained
HTML file, rendered by Jinja2 from the templates below (one layout, one template per page).

Nothing is loaded from the network (textops runs offline: no scripts, fonts or styles from a CDN), pictures are
embedded as data URIs, and no script may run (the layout's Content-Security-Policy). Every value is escaped by
the engine (autoescape), never by hand: a text like `<script>...</script>` in a training file shows as text, and
`{{ ... }}` in one is shown, not evaluated (values are never templates). The only markup that is not escaped is
the templates' own (their macros' output).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2

if TYPE_CHECKING:
    from textops.adapters.tracking import Session

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

# The layout: no script may run, whatever a value holds (the pages need none); pictures only as data URIs.
# STYLE is part of the template's text (a value in a <style> would be escaped, and a style is not HTML-decoded).
BASE = (
    '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
    '<meta name="viewport" content="width=device-width, initial-scale=1">'
    '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; img-src data:; '
    "style-src 'unsafe-inline'\">"
    "<title>{% block title %}{% endblock %}</title><style>" + STYLE + "</style></head>\n<body>\n"
    "{% block body %}{% endblock %}</body></html>\n"
)

# Tables, marks and figures. A cell is a value (escaped) or a macro's output (markup of our own).
MACROS = """\
{% macro row(cells, numeric=()) %}<tr>{% for c in cells %}<td{% if loop.index0 in numeric %} class="num"{% endif %}>
{{- c }}</td>{% endfor %}</tr>{% endmacro %}
{% macro table(header, rows=(), numeric=()) %}<table><thead><tr>{% for h in header %}<th>{{ h }}</th>{% endfor %}
</tr></thead><tbody>{% if caller is defined %}{{ caller() }}{% else %}
{% for r in rows %}{{ row(r, numeric) }}{% endfor %}{% endif %}</tbody></table>{% endmacro %}
{% macro state(ok, yes="passed", no="failed") %}<span class="{{ 'ok' if ok else 'fail' }}">{{ yes if ok else no -}}
</span>{% endmacro %}
{% macro code(value) %}<code>{{ value }}</code>{% endmacro %}
{% macro image(uri, alt) %}{% if uri %}<figure><img alt="{{ alt }}" src="{{ uri }}"><figcaption>{{ alt -}}
</figcaption></figure>{% endif %}{% endmacro %}
"""

VALIDATION = """\
{% extends "base.html" %}
{% from "macros.html" import code, row, table, state %}
{% macro outcome(r) %}
{% if r.get("error") %}could not run: {{ r.error }}{% else %}{{ found(r) }}
{%- for e in r.get("examples") or () %}<span class="example">{{ e }}</span>{% endfor %}{% endif %}
{% endmacro %}
{% block title %}Data validation{% endblock %}
{% block body %}
<h1>Data validation (Great Expectations)</h1>
<div class="banner {{ 'ok' if summary.success else 'fail' }}">{{ verdict }}</div>
<p class="muted">The cleaned splits {{ rows|listed("{} {} rows") }}; {{ labels|length }} classes: {#
#}{{ labels[:50]|join(", ") }}{{ " …" if labels|length > 50 else "" }}</p>
{% for suite, records in by_suite.items() %}
<h2>{{ suite }} {{ state(summary.suites.get(suite, {}).get("success", True)) }}</h2>
{% call table(["", "expectation", "column", "bounds", "what was found"]) %}
{% for r in records %}{{ row([state(r.success, "✓", "✗"), code(r.expectation), r.column or "", r.bounds|listed("{}={}"),
                           "" if r.success else outcome(r)]) }}{% endfor %}
{% endcall %}

{% endfor %}
{% endblock %}
"""

MONITOR = """\
{% extends "base.html" %}
{% from "macros.html" import row, table %}
{% macro verdict(c) %}
{% if c.drifted %}<span class="fail">drift</span>{% elif "skipped" in c %}skipped{% else %}
<span class="ok">ok</span>{% endif %}
{% endmacro %}
{% block title %}Monitoring{% endblock %}
{% block body %}
<h1>Monitoring: new data against the champion's training data</h1>
<div class="banner {{ 'fail' if r.drift else 'ok' }}">{{ "drift: " ~ r.kinds|join(", ") if r.drift
                                                          else "no drift" }}</div>
<p class="muted">{{ r.rows }} new rows from {{ r.source }} ({{ "labelled" if r.labelled else "unlabelled" }}); {#
#}champion {{ r.champion.name }} v{{ r.champion.version }}, reference rows: {{ r.reference_rows }}.</p>
{% call table(["", "kind", "check", "test", "reference", "new", "statistic", "p-value", "drift when"]) %}
{% for c in r.checks %}{{ row([verdict(c), c.kind, c.name, c.test, c.get("reference")|figure, c.get("current")|figure,
    c.get("statistic")|figure, c.get("p_value")|figure, c.get("skipped") or c.get("threshold") or ""], (6, 7)) }}
{%- endfor %}
{% endcall %}

{% if r.get("online") %}
<h2>Online: served answers labelled by feedback</h2>{% call table(["model version", "labelled answers", "accuracy",
                                                                     "macro-F1"]) %}
{% for v, f in r.online.items() %}{{ row([v, f.n, f.accuracy|figure, f.macro_f1|figure], (1, 2, 3)) }}{% endfor %}
{% endcall %}

{% endif %}
{% if r.get("shadow") %}
<h2>Shadow challenger: the same live texts</h2>{% call table(["served", "shadow", "texts", "agreement", "labelled",
                                                            "served accuracy", "shadow accuracy", "McNemar p"]) %}
{% for f in r.shadow.values() %}{{ row([f.served_version, f.shadow_version, f.texts, f.agreement|figure, f.labelled,
    f.get("served_accuracy")|figure, f.get("shadow_accuracy")|figure, f.get("mcnemar_p")|figure],
    (2, 3, 4, 5, 6, 7)) }}{% endfor %}
{% endcall %}

{% endif %}
{% endblock %}
"""

RUN = """\
{% extends "base.html" %}
{% from "macros.html" import code, image, row, table, state %}
{% block title %}textops run{% endblock %}
{% block body %}
<h1>textops run: {{ reg.get("name", "") }} v{{ reg.get("version", "?") }}</h1>
<div class="banner {{ 'ok' if reg.get('promote') else 'fail' }}">{{ decision }}: {#
#}{{ reg.get("reason", summary.get("message", "")) }}</div>
<h2>Data</h2>
{% if pre %}
{% set splits = pre.get("splits") or {} %}
{% call table(["rows in", "rows out", "dropped", "train", "val", "test", "raw data"]) %}
{{ row([pre.get("rows_in"), pre.get("rows_out"), (pre.get("dropped") or {})|listed("{} {}", nonzero=True) or "none",
        splits.get("train", ""), splits.get("val", ""), splits.get("test", ""), code(pre.get("raw_md5", ""))],
       (0, 1, 3, 4, 5)) }}
{%- endcall %}

{% set balance = ((pre.get("class_balance") or {}).get("train") or {}).items()|list %}
{{ table(["class", "train rows"], balance[:50], (1,)) if balance else "" }}
{% endif %}
{% if val %}
<h2>Data gate {{ state(val.get("success")) }}</h2>{#
#}<p>{{ val.get("evaluated") }} expectations evaluated, {{ val.get("failed", 0) }} failed.</p>
{% endif %}
<h2>Training</h2>{{ image(pictures.get("training_curve"), "loss and validation macro-F1") }}
{% if ev %}
<h2>Test split</h2>{{ table(["metric", "value"], metrics, (1,)) }}
{% endif %}
{% if slices %}
<h2>Test split by slice</h2>{{ table(["kind", "slice", "rows", "accuracy", "macro-F1"], slices, (2, 3, 4)) }}
{% endif %}
{{ image(pictures.get("confusion_matrix"), "confusion matrix (test split)") }}
{% if explained %}
<h2>Most confidently wrong test rows</h2>
<p class="muted">Each word's part in the logit of the class the model gave (layer integrated gradients from a [PAD]
baseline): red pushed towards that class, blue away from it; hover a word for its figure. Delta: how far the
attributions' sum is from the logit difference they explain.</p>
{% call table(["text", "true label", "predicted", "confidence", "delta"]) %}
{% for r in explained %}<tr><td>{% for piece, style, title in r.segments -%}
{% if style %}<span style="{{ style }}" title="{{ title }}">{{ piece }}</span>{% else %}{{ piece }}{% endif %}
{%- endfor %}</td><td>{{ r.get("true_label", "") }}</td><td>{{ r.get("label", "") }}</td>{#
#}<td class="num">{{ r.get("prob")|figure }}</td><td class="num">{{ r.get("delta")|figure }}</td></tr>
{% endfor %}
{%- endcall %}
{% endif %}
{% if reg.get("evidence") %}
<h2>Registry decision</h2>{{ table(["evidence", "value"], reg.evidence.items()) }}
{% endif %}
{% endblock %}
"""

MAX_EXAMPLE_CHARS = 300


class DataURI(str):
    """A picture as a data URI: a value like any other (escaped), but never cut (text cuts long values)."""


def text(value: Any) -> Any:
    """VALUE as the text a page shows (every `{{ ... }}` goes through this, then the engine escapes it): JSON for
    what is not a string, long values cut. A template's own markup (a macro's output) is left as it is."""
    if hasattr(value, "__html__") or isinstance(value, DataURI):
        return value
    if isinstance(value, jinja2.Undefined):
        return str(value)  # "" for an inline if without else; a misspelt name (StrictUndefined) raises
    shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    if len(shown) > MAX_EXAMPLE_CHARS:
        shown = shown[:MAX_EXAMPLE_CHARS] + f"… ({len(shown)} characters)"
    return shown


def figure(value: Any) -> str:
    """A figure for a cell: a number to 4 places, a share per class, or the value as text."""
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in value.items())
    return "" if value is None else text(value)


def listed(mapping: dict, form: str, nonzero: bool = False) -> str:
    """MAPPING as one line of text, each pair in FORM ("{}={}"); with NONZERO only the pairs whose value is not 0."""
    return ", ".join(form.format(k, v) for k, v in mapping.items() if v or not nonzero)


def found(record: dict) -> str:
    """What a failed expectation found, in words (its examples follow)."""
    if record.get("unexpected_count") is not None:
        return f"{record['unexpected_count']} unexpected ({record.get('unexpected_percent') or 0:.2f}%)"
    if record.get("observed_value") is not None:
        return f"observed {text(record['observed_value'])}"
    return ""


def data_uri(path: Path | None) -> DataURI | None:
    """A PNG as a data URI (the page stays one file); None when there is no such file."""
    if path is None or not Path(path).is_file():
        return None
    return DataURI("data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode())


ENV = jinja2.Environment(
    loader=jinja2.DictLoader(
        {
            "base.html": BASE,
            "macros.html": MACROS,
            "validation.html": VALIDATION,
            "monitor.html": MONITOR,
            "run.html": RUN,
        }
    ),
    autoescape=True,  # every value is escaped by the engine; markup only from the templates themselves
    finalize=text,
    undefined=jinja2.StrictUndefined,  # a misspelt name in a template is an error, not an empty cell
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
ENV.filters.update(figure=figure, listed=listed)
ENV.globals.update(found=found)


def render(template: str, **values: Any) -> str:
    return ENV.get_template(template).render(**values)


# --------------------------------------------------------------------------------------------------
# the pages


def validation_page(summary: dict, rows: dict[str, int], labels: list[str]) -> str:
    """The validation report: the verdict, each suite, each expectation with its bounds, outcome and examples."""
    verdict = (
        f"passed: {summary['evaluated']} expectations held"
        if summary["success"]
        else f"failed: {summary['failed']} of {summary['evaluated']} expectations did not hold"
    )
    by_suite: dict[str, list[dict]] = {}
    for record in sorted(summary.get("expectations", []), key=lambda r: (r["success"], r["suite"])):
        by_suite.setdefault(record["suite"], []).append(record)
    return render("validation.html", summary=summary, verdict=verdict, rows=rows, labels=labels, by_suite=by_suite)


def monitor_page(result: dict) -> str:
    """The monitoring report: the verdict, what was compared with what, and every check with its figures."""
    return render("monitor.html", r=result)


def test_metrics(ev: dict) -> list[tuple[str, str]]:
    """The eval stage's metrics (and the TF-IDF baseline's) as (name, figure) rows; a count stays a count."""
    metrics = [
        (k, f"{float(ev[k]):.4f}")
        for k in ("accuracy", "macro_f1", "log_loss", "ece", "roc_auc")
        if isinstance(ev.get(k), int | float)
    ]
    found = ev.get("baseline")
    baseline = found if isinstance(found, dict) else {}
    counts = {k: v for k, v in baseline.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    return metrics + [
        (f"baseline (TF-IDF) {k}", f"{v:.4f}" if isinstance(v, float) else str(v)) for k, v in counts.items()
    ]


def slice_rows(ev: dict) -> list[tuple[str, str, str, str, str]]:
    """The eval stage's per-slice figures (`slices`) as table rows; a length quartile with its range of lengths."""
    rows = []
    for kind, by_value in (ev.get("slices") or {}).items():
        for value, f in by_value.items():
            shown = f"{value} ({f['min_chars']}–{f['max_chars']} chars)" if "min_chars" in f else value
            rows.append((kind, shown, str(f.get("rows", "")), figure(f.get("accuracy")), figure(f.get("macro_f1"))))
    return rows


MAX_HIGHLIGHT_CHARS = 600  # of an explained row's text shown on the run report


def highlight(row: dict) -> list[tuple[str, str, str]]:
    """An explained row's text as (piece, inline style, title) segments: each attributed word with a background
    whose strength is its attribution relative to the row's largest (red towards the class, blue against), the
    text between words unstyled. Values only: the template escapes every piece."""
    text, words = str(row.get("text", "")), row.get("words") or []
    shown = text[:MAX_HIGHLIGHT_CHARS]
    scale = max((abs(float(w["attribution"])) for w in words), default=0.0) or 1.0
    segments, at = [], 0
    for w in words:
        start, end, value = w.get("start"), w.get("end"), float(w["attribution"])
        if start is None or end is None or start < at or end > len(shown):
            continue  # a slow tokenizer's tokens (no offsets), or past the shown part
        if start > at:
            segments.append((shown[at:start], "", ""))
        alpha = round(0.75 * abs(value) / scale, 3)
        colour = "207,34,46" if value > 0 else "9,105,218"
        segments.append((shown[start:end], f"background:rgba({colour},{alpha})", f"{value:+.4f}"))
        at = end
    if at < len(shown):
        segments.append((shown[at:], "", ""))
    if len(text) > len(shown):
        segments.append((f"… ({len(text)} characters)", "", ""))
    return segments


def run_page(summary: dict, files: dict[str, Any], pictures: dict[str, Path], explained: list | None = None) -> str:
    """One pipeline run on one page: the data, the data gate, the training curves, the test metrics (per slice too) with
    the confusion matrix, the most confidently wrong test rows with their words highlighted (EXPLAINED, the eval
    stage's), and the registry's decision with its reason. FILES holds the stages' metric files (preprocess,
    validate, train, eval; any may be missing), PICTURES the PNGs to embed."""
    reg = summary.get("register") or {}
    decision = ("promoted: the new champion" if reg.get("promote") else "not promoted") if reg else "not registered"
    ev = files.get("eval") or {}
    return render(
        "run.html",
        summary=summary,
        reg=reg,
        decision=decision,
        pre=files.get("preprocess") or {},
        val=files.get("validate") or {},
        ev=ev,
        metrics=test_metrics(ev),
        slices=slice_rows(ev),
        explained=[{**row, "segments": highlight(row)} for row in explained or [] if isinstance(row, dict)],
        pictures={name: data_uri(path) for name, path in pictures.items()},
    )


RUN_REPORT = "run.html"  # in validate.report_dir's parent (reports/), and as an artifact of the MLflow run


def write_run_report(root: Path, params, summary: dict, session: Session | None = None) -> Path:
    """reports/run.html for the pipeline run SUMMARY (the flow's), also logged to its MLflow run (through SESSION,
    the command's store, else one opened here)."""
    from textops.adapters.tracking import session_for
    from textops.core import artifacts

    root = Path(root)

    def load(rel: str | Path, empty: Any = None) -> Any:
        try:
            return json.loads((root / rel).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {} if empty is None else empty

    files = {
        name: load(rel)
        for name, rel in (
            ("preprocess", artifacts.PREPROCESS_METRICS),
            ("validate", artifacts.VALIDATE_METRICS),
            ("eval", artifacts.EVAL_METRICS),
        )
    }
    pictures = {
        "training_curve": artifacts.model_dir(root, params) / "training_curve.png",
        "confusion_matrix": root / params.evaluate.output_dir / "confusion_matrix.png",
    }
    explained = load(Path(params.evaluate.output_dir) / artifacts.EXPLAINED_FILE, [])
    path = root / Path(params.validate_.report_dir).parent / RUN_REPORT
    artifacts.atomic_write_text(
        path, run_page(summary, files, pictures, explained if isinstance(explained, list) else [])
    )
    run_id = (summary.get("evaluate") or {}).get("run_id")
    if run_id:
        session_for(root, params, session, experiment=False).client.log_artifact(run_id, str(path))
    return path
