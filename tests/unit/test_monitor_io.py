"""What the monitor reads and writes besides the statistics: the serving request log as `textops serve` writes it,
the landing files it announces (once each), the report page (escaped, offline) and the MLflow metric names."""

from __future__ import annotations

import os

import pytest

from textops import drift
from textops.config import Params
from textops.errors import StateError
from textops.monitor import flat_metrics, landed_files, read_request_log
from textops.reports import monitor_page
from textops.request_log import RequestLog


def write_log(directory, texts: bool) -> None:
    log = RequestLog(directory, "jsonl", texts=texts)
    log.start()
    predictions = [
        {"label": "positive", "prob_negative": 0.2, "prob_positive": 0.8},
        {"label": "negative", "prob_negative": 0.6, "prob_positive": 0.4},
    ]
    log.add("req-1", "3", ["a fine film", "a dull plot!"], predictions)
    log.close()


@pytest.mark.parametrize("texts", [False, True])
def test_the_request_log_as_serve_writes_it(tmp_path, texts):
    params = Params()
    write_log(tmp_path / params.serve.request_log_dir, texts)
    rows = read_request_log(tmp_path, params)
    assert rows["chars"].tolist() == [11, 12]
    assert rows["predicted"].tolist() == ["positive", "negative"]
    assert rows["confidence"].tolist() == pytest.approx([0.8, 0.6])
    assert ("text" in rows.columns) is texts  # without texts the monitor can only check lengths and outputs


def test_no_request_log_is_a_clear_error(tmp_path):
    with pytest.raises(StateError, match="serve.log_requests: true"):
        read_request_log(tmp_path, Params())


def test_landed_files_are_announced_once_and_again_when_replaced(tmp_path):
    params = Params()
    landing = tmp_path / params.data.landing_dir
    landing.mkdir()
    (landing / "a.csv").write_text("text,label\nfine,positive\n")
    (landing / "b.csv").write_text("text,label\ndull,negative\n")
    (landing / ".hidden").write_text("x")
    assert [p.name for p in landed_files(tmp_path, params)] == ["a.csv", "b.csv"]
    assert landed_files(tmp_path, params) == []  # held for a person: not announced every hour
    (landing / "b.csv").write_text("text,label\ndull,negative\nbad,negative\n")  # a new file under the old name
    os.utime(landing / "b.csv", ns=(1, 1))
    assert [p.name for p in landed_files(tmp_path, params)] == ["b.csv"]
    (landing / "c.csv").write_text("text\nnew\n")
    assert [p.name for p in landed_files(tmp_path, params, remember=False)] == ["c.csv"]
    assert [p.name for p in landed_files(tmp_path, params)] == ["c.csv"]  # only remembered when asked


def result(checks: list[dict], source: str = "new.csv") -> dict:
    return {
        **drift.summarize(checks),
        "source": source,
        "rows": 120,
        "labelled": True,
        "champion": {"name": "textops-classifier", "version": "2", "run_id": "r"},
        "reference_rows": {"train": 800, "holdout": 200},
        "checks": checks,
    }


def test_the_report_page_is_escaped_and_needs_no_network():
    checks = [
        drift.check(
            "input",
            "text length (characters)",
            "KS",
            True,
            statistic=0.4,
            p_value=1e-9,
            reference=50.0,
            current=90.0,
            threshold="p<0.01 and D>0.15",
        ),
        drift.skipped("label", "label shares", "the new data has no labels"),
    ]
    page = monitor_page(result(checks, source="<script>alert(1)</script>.csv"))
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;.csv" in page
    assert "default-src 'none'" in page and 'src="http' not in page and "href=" not in page
    assert "drift: input" in page and "0.4000" in page and "the new data has no labels" in page


def test_flat_metrics_are_names_mlflow_accepts():
    checks = [
        drift.check("input", "embeddings (domain classifier)", "ROC-AUC", True, statistic=0.9, p_value=0.001),
        drift.check("performance", "macro_f1", "drop vs test", False, statistic=0.02),
        drift.skipped("label", "label shares", "no labels"),
    ]
    metrics = flat_metrics(result(checks))
    assert metrics == {
        "drift": 1.0,
        "rows": 120.0,
        "input.embeddings_domain_classifier.statistic": 0.9,
        "input.embeddings_domain_classifier.p_value": 0.001,
        "input.embeddings_domain_classifier.drifted": 1.0,
        "performance.macro_f1.statistic": 0.02,
        "performance.macro_f1.drifted": 0.0,
    }
