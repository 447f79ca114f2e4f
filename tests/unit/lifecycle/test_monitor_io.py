"""What the monitor reads and writes besides the statistics: the serving request log as `textops serve` writes it,
the landing files it announces (once each), the report page (escaped, offline) and the MLflow metric names."""

from __future__ import annotations

import json
import os

import pytest
from helpers import wait_for

from textops.core.config import Params
from textops.core.errors import StateError
from textops.data.reports import monitor_page
from textops.lifecycle.landed import LANDED_STATE, landed_files, mark_announced
from textops.lifecycle.monitor import flat_metrics
from textops.lifecycle.monitor_inputs import read_request_log
from textops.live import drift
from textops.live.request_log import RequestLog


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

    def names() -> list[str]:
        return [p.name for p in landed_files(tmp_path, params).values()]

    assert names() == ["a.csv", "b.csv"]
    assert names() == ["a.csv", "b.csv"]  # reading records nothing: only a stored event does
    mark_announced(tmp_path, params, [k for k, p in landed_files(tmp_path, params).items() if p.name == "a.csv"])
    assert names() == ["b.csv"]
    mark_announced(tmp_path, params, list(landed_files(tmp_path, params)))
    assert names() == []  # held for a person: not announced every hour
    (landing / "b.csv").write_text("text,label\ndull,negative\nbad,negative\n")  # a new file under the old name
    os.utime(landing / "b.csv", ns=(1, 1))
    assert names() == ["b.csv"]
    (landing / "a.csv").unlink()
    mark_announced(tmp_path, params, list(landed_files(tmp_path, params)))
    assert len(json.loads((tmp_path / ".textops" / LANDED_STATE).read_text())) == 1  # a.csv's key is forgotten


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


def test_the_request_log_is_read_by_window(tmp_path, monkeypatch):
    """`monitor --requests` compares a window (monitor.window), not the whole retained log: what is new is not
    diluted by what was already monitored. The log is read in chunks (never whole in memory)."""
    import json

    from textops.live import request_log_reader
    from textops.live.monitor_window import remember_window, window_bounds
    from textops.live.request_log_reader import read_window

    directory = tmp_path / Params().serve.request_log_dir
    directory.mkdir(parents=True)
    rows = [
        {
            "time": f"2026-12-0{day}T10:00:00.000Z",
            "request_id": f"r{day}-{i}",
            "index": 0,
            "model_version": "1",
            "label": "positive",
            "chars": day,
            "probabilities": {"negative": 0.1, "positive": 0.9},
        }
        for day in (1, 2, 3)
        for i in range(5)
    ]
    (directory / "requests-20261201T000000-11.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:10]))
    (directory / "requests-20261202T000000-12.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[10:]))
    monkeypatch.setattr(request_log_reader, "READ_CHUNK_ROWS", 3)
    window, read = read_window(directory, "2026-12-01T23:00:00.000Z", "2026-12-03T00:00:00.000Z")
    assert window["chars"].tolist() == [2] * 5 and read == {"files": 2, "unreadable": [], "rows": 5}
    assert len(read_window(directory)[0]) == 15

    assert window_bounds(tmp_path, "since_last", now=0)[0] is None  # the first time: the whole log
    remember_window(tmp_path, "2026-12-02T12:00:00.000Z")
    since, until, how = window_bounds(tmp_path, "since_last", now=1_800_000_000)
    assert since == "2026-12-02T12:00:00.000Z" and until.startswith("2027-01-15") and "since the last" in how
    assert read_request_log(tmp_path, Params(), since, until)["chars"].tolist() == [3] * 5
    assert window_bounds(tmp_path, "24h", now=86_400 * 2)[0] == "1970-01-02T00:00:00.000Z"
    assert window_bounds(tmp_path, "all")[0] is None


def test_the_request_log_keeps_its_newest_files_per_project(tmp_path):
    """Retention is per project, whichever process wrote the files: a restarted server's old files go too."""
    directory = tmp_path / "logs"
    directory.mkdir()
    for i in range(6):  # earlier servers' files (other pids)
        (directory / f"requests-2026110{i}T000000-{100 + i}.jsonl").write_text("{}\n")
    log = RequestLog(directory, "jsonl", keep=3)
    log.start()
    log.add("r", "1", ["text"], [{"label": "a", "prob_a": 1.0}])
    log.close()
    names = sorted(p.name for p in directory.iterdir() if p.name.startswith("requests-"))
    assert len(names) == 3 and names[-1].endswith(f"-{os.getpid()}.jsonl"), names
    assert "requests-20261105T000000-105.jsonl" in names and "requests-20261100T000000-100.jsonl" not in names


def test_a_parquet_request_log_is_readable_while_written_and_after_a_kill(tmp_path):
    """serve.request_log_format parquet: the open file is JSONL (the monitor reads it while the server runs, and a
    kill loses at most the line being written); it becomes Parquet on rotation or stop, read once."""
    from textops.live.request_log_reader import log_files, read_window
    from textops.live.retention import to_parquet

    directory = tmp_path / "requests"
    log = RequestLog(directory, fmt="parquet")
    log.start()
    predictions = [{"label": "positive", "prob_negative": 0.2, "prob_positive": 0.8}] * 3
    log.add("r1", "1", ["a", "bb", "ccc"], predictions)

    def rows() -> list[int]:
        return sorted(read_window(directory)[0]["chars"].tolist())

    wait_for(lambda: rows() == [1, 2, 3], 60, "the open file's rows")  # the writer thread has written them
    assert [p.suffix for p in log_files(directory)] == [".jsonl"]
    log.close()
    assert [p.suffix for p in log_files(directory)] == [".parquet"] and rows() == [1, 2, 3]

    # A killed server's file: its last line cut short. Read up to its last whole row, and turned into Parquet
    # whole rows only; a JSONL left beside its finished Parquet copy (a crash between the two) is read once.
    killed = directory / "requests-20261203T000000-99.jsonl"
    whole = json.dumps(
        {
            "time": "2026-12-03T00:00:00.000Z",
            "request_id": "k",
            "index": 0,
            "model_version": "1",
            "label": "negative",
            "chars": 7,
            "probabilities": {"negative": 1.0},
        }
    )
    killed.write_text(whole + "\n" + whole[:25])
    assert rows() == [1, 2, 3, 7] and read_window(directory)[1]["unreadable"] == []
    copy = killed.read_text()
    to_parquet(killed, log._schema())
    killed.write_text(copy)
    assert rows() == [1, 2, 3, 7]
