"""The report pages (textops.data.reports) with hostile text in every field that comes from the data, a file
name or a message: it shows as text, never as markup, and template syntax in it is never evaluated."""

from __future__ import annotations

import base64
import html
import json
import re
from pathlib import Path

import pytest

from textops.data.reports import monitor_page, run_page, validation_page

SCRIPT = "<script>alert(1)</script>"
ATTRIBUTE = '"><img src=x onerror=alert(2)>'
TEMPLATE = "{{ 7*7 }}{% if true %}yes{% endif %}"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 2  # never drawn here: bytes longer than a value may be


def bad(tag: str) -> str:
    """A value with every hostile string in it (TAG tells the fields apart)."""
    return f"{tag} {SCRIPT} {ATTRIBUTE} {TEMPLATE}"


def validation_input(success: bool = False) -> tuple[dict, dict, list[str]]:
    records = [
        {
            "suite": bad("suite"),
            "success": False,
            "expectation": bad("expectation"),
            "column": bad("column"),
            "bounds": {bad("bound"): bad("limit")},
            "unexpected_count": 3,
            "unexpected_percent": 1.5,
            "examples": [bad("example"), {"nested": bad("json example")}],
        },
        {
            "suite": bad("suite"),
            "success": False,
            "expectation": "expect_x",
            "column": None,
            "bounds": {},
            "observed_value": bad("observed"),
            "examples": [],
        },
        {
            "suite": "clean.val",
            "success": False,
            "expectation": "expect_y",
            "column": "text",
            "bounds": {},
            "error": bad("error message"),
        },
        {"suite": "clean.val", "success": True, "expectation": "expect_z", "column": "label", "bounds": {"min": 1}},
    ]
    summary = {
        "success": success,
        "evaluated": 4,
        "failed": 3,
        "expectations": records,
        "suites": {bad("suite"): {"success": False}, "clean.val": {"success": True}},
    }
    return summary, {bad("split"): 10, "val": 2}, [bad(f"label{i}") for i in range(3)]


def monitor_input(drift: bool = True) -> dict:
    checks = [
        {
            "kind": bad("kind"),
            "name": bad("check"),
            "test": bad("test"),
            "drifted": drift,
            "statistic": 0.4,
            "p_value": 1e-9,
            "reference": {bad("class"): 0.25, "n": 3},
            "current": bad("current"),
            "threshold": bad("threshold"),
        },
        {"kind": "label", "name": "label shares", "test": "chi2", "drifted": False, "skipped": bad("skipped")},
        {"kind": "input", "name": "length", "test": "KS", "drifted": False, "statistic": None, "reference": 50.0},
    ]
    return {
        "kinds": [bad("drift kind")] if drift else [],
        "drift": drift,
        "source": bad("file") + ".csv",
        "rows": 120,
        "labelled": drift,
        "champion": {"name": bad("model"), "version": bad("version")},
        "reference_rows": {bad("split"): 800},
        "checks": checks,
        "online": {bad("online version"): {"n": 5, "accuracy": 0.8, "macro_f1": 0.75}},
        "shadow": {
            "x": {
                "served_version": bad("served"),
                "shadow_version": bad("shadow"),
                "texts": 9,
                "agreement": 0.5,
                "labelled": 4,
                "served_accuracy": 0.5,
                "mcnemar_p": None,
            }
        },
    }


def run_input(tmp_path: Path, promote: bool = True) -> tuple[dict, dict, dict[str, Path]]:
    (tmp_path / bad("curve").replace("/", "_")).write_bytes(PNG)
    summary = {
        "register": {
            "name": bad("model"),
            "version": bad("version"),
            "promote": promote,
            "reason": bad("reason"),
            "evidence": {bad("evidence"): bad("value"), "delta": 0.01},
        },
        "message": bad("message"),
    }
    files = {
        "preprocess": {
            "rows_in": 10,
            "rows_out": 9,
            "dropped": {bad("dropped"): 1, "empty": 0},
            "splits": {"train": 6, "val": bad("val rows"), "test": 1},
            "raw_md5": bad("md5"),
            "class_balance": {"train": {bad("class"): 3, "b": 3}},
        },
        "validate": {"success": promote, "evaluated": bad("evaluated"), "failed": 1},
        "eval": {
            "accuracy": 0.9,
            "macro_f1": 0.875,
            "log_loss": "n/a",
            "baseline": {"train_rows": 3215, bad("baseline metric"): 0.5, "flag": True},
            "slices": {
                "length": {"q1": {"rows": 31, "accuracy": 0.8125, "macro_f1": 0.75, "min_chars": 3, "max_chars": 42}},
                "group": {bad("group"): {"rows": 7, "accuracy": 1.0, "macro_f1": 1.0}},
            },
        },
    }
    pictures = {"training_curve": tmp_path / bad("curve").replace("/", "_"), "confusion_matrix": tmp_path / "none.png"}
    return summary, files, pictures


def explained_rows() -> list[dict]:
    """The eval stage's explained rows (textops.modeling.explain): a hostile text, its words (offsets) with
    attributions."""
    text = bad("explained text")
    spans = [m.span() for m in re.finditer(r"\w+|[^\w\s]", text)]
    words = [
        {"word": text[a:b], "start": a, "end": b, "attribution": 1.0 if i % 2 == 0 else -0.5}
        for i, (a, b) in enumerate(spans)
    ]
    row = {"text": text, "true_label": bad("true label"), "label": bad("predicted label"), "prob": 0.97, "delta": 1e-3}
    return [{**row, "words": words}, {**row, "text": "no words", "words": []}]


NO_PICTURES = {"training_curve": Path("/nonexistent.png"), "confusion_matrix": Path("/nonexistent.png")}


def pages(tmp_path: Path) -> dict[str, str]:
    return {
        "validation": validation_page(*validation_input()),
        "validation passed": validation_page(*validation_input(success=True)),
        "monitor": monitor_page(monitor_input()),
        "monitor no drift": monitor_page({**monitor_input(drift=False), "online": {}, "shadow": {}}),
        "run": run_page(*run_input(tmp_path)),
        "run explained": run_page(*run_input(tmp_path), explained_rows()),
        "run not registered": run_page({"message": bad("message")}, {}, NO_PICTURES),
    }


OUR_TAGS = set(
    "html head meta title style body h1 h2 div p span table thead tbody tr th td code figure img figcaption".split()
)
FIELDS = {  # the tags of the hostile values (see bad) each page must show
    "validation": "suite|expectation|column|bound|limit|example|json example|observed|error message|split|label0",
    "monitor": "drift kind|file|model|version|split|kind|check|test|class|current|threshold|skipped|online version|"
    "served|shadow",
    "run": "model|version|reason|evidence|value|dropped|val rows|md5|class|evaluated|baseline metric|group",
    "run not registered": "message",
    "run explained": "true label|predicted label",
}


def test_hostile_text_is_escaped_and_template_syntax_not_evaluated(tmp_path):
    for name, page in pages(tmp_path).items():
        assert "<script" not in page and "onerror=alert(2)>" not in page and "<img src=x" not in page, name
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page, name
        assert "&#34;&gt;&lt;img src=x onerror=alert(2)&gt;" in page, name  # the quote cannot end an attribute
        assert html.escape(TEMPLATE, quote=False) in page and "49" not in page, name  # shown, not evaluated
        assert "default-src 'none'; img-src data:; style-src 'unsafe-inline'" in page, name
        assert "http://" not in page and "https://" not in page and "href=" not in page, name
        assert set(re.findall(r"<([a-z0-9]+)", page)) <= OUR_TAGS, name  # every element on the page is ours


def test_every_hostile_field_is_on_its_page_escaped_once(tmp_path):
    shown = pages(tmp_path)
    for name, tags in FIELDS.items():
        for tag in tags.split("|"):
            assert html.escape(f"{tag} {SCRIPT}") in shown[name], (name, tag)
        assert "&amp;lt;" not in shown[name], name  # escaped once: the reader sees the text as it was


def test_the_figures_and_pictures(tmp_path):
    shown = pages(tmp_path)
    assert shown["run"].count("<img ") == 1
    assert f'src="data:image/png;base64,{base64.b64encode(PNG).decode()}"' in shown["run"]  # whole, not cut
    assert '<td>baseline (TF-IDF) train_rows</td><td class="num">3215</td>' in shown["run"]  # a count stays a count
    slice_row = '<td>length</td><td>q1 (3–42 chars)</td><td class="num">31</td><td class="num">0.8125</td>'
    assert "Test split by slice" in shown["run"] and slice_row in shown["run"]
    assert "Test split by slice" not in shown["run not registered"]
    assert "promoted: the new champion" in shown["run"] and "not registered" in shown["run not registered"]
    assert "3 unexpected (1.50%)" in shown["validation"] and "passed: 4 expectations held" in shown["validation passed"]
    assert '<td class="num">0.4000</td>' in shown["monitor"] and "no drift" in shown["monitor no drift"]
    assert "Online: served answers" not in shown["monitor no drift"]


@pytest.mark.parametrize("value", [3, 0.5, True, None, {"a": ["<b>", 2]}])
def test_values_that_are_not_text_are_shown_as_json(value):
    summary, rows, labels = validation_input()
    summary["expectations"][1]["observed_value"] = value
    page = validation_page(summary, rows, labels)
    if value is None:
        assert "<td>observed" not in page
    else:
        assert "<td>observed " + html.escape(json.dumps(value)).replace("&quot;", "&#34;") + "</td>" in page


def test_the_most_confidently_wrong_rows_are_highlighted_and_escaped(tmp_path):
    page = run_page(*run_input(tmp_path), explained_rows())
    body = page.split("Most confidently wrong test rows", 1)[1]
    spans = re.findall(r'<span style="background:rgba\((\d+,\d+,\d+),([\d.]+)\)" title="([^"]+)">([^<]*)</span>', body)
    words = explained_rows()[0]["words"]
    assert [html.unescape(piece) for *_, piece in spans] == [w["word"] for w in words]  # every word, in order
    assert spans[0][:3] == ("207,34,46", "0.75", "+1.0000")  # red: towards the class; the largest the strongest
    assert spans[1] == ("9,105,218", "0.375", "-0.5000", "text")  # blue: against it, half as strong
    assert spans[2] == ("207,34,46", "0.75", "+1.0000", "&lt;")  # a word of the text's markup: escaped
    assert "&lt;</span><span" in body and "script" in body and "<script" not in page
    shown = re.sub(r"<[^>]+>", "", body.split("</table>")[0])  # the text, as a reader sees it
    assert html.unescape(bad("explained text")) in html.unescape(shown)
    assert "no words" in body and '<td class="num">0.9700</td>' in body
    assert "Most confidently wrong" not in run_page(*run_input(tmp_path))  # no rows: no section
