"""The pages textops makes, as a person sees them: opened in headless Chromium (Debian's `chromium`, driven by
playwright) with the network cut off, so a page that needs a CDN shows what it would show offline.

- the validation report of a failed gate: the failed expectation with its bounds and examples, data shown as text;
- `dvc plots show` of a project after a run: every plot drawn (DVC's own page loads Vega from a CDN and leaves
  the Vega plots blank offline; the project's html template has the libraries inline).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers import mlflow_client
from test_validate import PARAMS, good_splits, write_clean

from textops.core.errors import ValidationFailed
from textops.data.validate import validate

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is a dev dependency (.ci/run has it)")
    if CHROMIUM is None:
        pytest.skip("no chromium on PATH (`apt-get install chromium`; .ci/run installs it)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


def open_offline(browser, page_path: Path):
    """PAGE_PATH in a new page where every request off the local file system fails; returns (page, blocked)."""
    page = browser.new_page()
    blocked: list[str] = []

    def route(r):
        if r.request.url.startswith("file://"):
            return r.continue_()
        blocked.append(r.request.url)
        return r.abort()

    page.route("**/*", route)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(page_path.as_uri())
    page.wait_for_load_state("load")
    return page, blocked, errors


def test_a_failed_validation_report_shows_the_failure_and_its_examples(browser, tmp_path):
    splits = good_splits()
    splits["train"].loc[0, "text"] = "<b>bold?</b> " + "x" * 300  # too long for data.max_chars: fails
    write_clean(tmp_path, splits)
    with pytest.raises(ValidationFailed):
        validate(tmp_path, PARAMS)
    page, blocked, errors = open_offline(browser, tmp_path / "reports/validation/index.html")
    text = page.inner_text("body")
    assert "expect_column_value_lengths_to_be_between" in text, text[:2000]
    assert "clean.train" in text and "failed" in text.lower()
    assert "<b>bold?</b>" in text  # the example, shown as text (not rendered as bold markup)
    assert page.locator("b", has_text="bold?").count() == 0
    assert blocked == [] and errors == [], (blocked, errors)


def test_dvc_plots_show_draws_every_plot_offline(browser, champion_template, tmp_path):
    out = tmp_path / "plots"
    subprocess.run(
        [sys.executable, "-m", "dvc", "plots", "show", "-o", str(out)],
        cwd=champion_template,
        check=True,
        capture_output=True,
        text=True,
    )
    page, blocked, errors = open_offline(browser, out / "index.html")
    spec = yaml.safe_load((champion_template / "dvc.yaml").read_text())
    declared = len(spec.get("plots") or []) + sum(len(s.get("plots") or []) for s in spec["stages"].values())
    # vega-embed draws into a canvas (or svg) inside each plot's div; image plots are <img> elements.
    page.wait_for_function(
        f"document.querySelectorAll('.vega-embed canvas, .vega-embed svg.marks, img').length >= {declared}",
        timeout=30_000,
    )
    drawn = page.locator(".vega-embed canvas, .vega-embed svg.marks").count()
    images = page.locator("img").count()
    assert drawn >= 1 and drawn + images >= declared, (drawn, images, declared)
    assert all(page.evaluate("i => document.images[i].naturalWidth", i) > 0 for i in range(images))
    assert blocked == [] and errors == [], (blocked, errors)


def test_the_run_report_shows_the_decision_the_metrics_and_the_pictures(browser, champion_template):
    page, blocked, errors = open_offline(browser, champion_template / "reports" / "run.html")
    text = page.inner_text("body")
    assert "promoted: the new champion" in text and "Test split" in text and "Data gate" in text, text[:1500]
    rows = json.loads((champion_template / "metrics/eval.json").read_text())["baseline"]["train_rows"]
    assert f"baseline (TF-IDF) train_rows\t{rows}\n" in text, text  # a count, not 3215.0000
    images = page.locator("img").count()
    assert images == 2 and all(page.evaluate("i => document.images[i].naturalWidth", i) > 0 for i in range(images))
    assert blocked == [] and errors == [], (blocked, errors)
    # The same page is an artifact of the model's MLflow run.
    client, _ = mlflow_client(champion_template)
    run_id = json.loads((champion_template / "artifacts/model/run.json").read_text())["run_id"]
    assert "run.html" in [a.path for a in client.list_artifacts(run_id)]
