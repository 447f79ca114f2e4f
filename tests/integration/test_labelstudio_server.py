"""The labelling loop through a real Label Studio (its own virtualenv, `.labelstudio-venv`: tests/support/labelstudio;
skipped, saying why, where it is not installed): `textops label queue` writes the tasks and the labelling config,
Label Studio takes both as a project, a person's annotations are made through its API (one task labelled twice,
one label edited after a later one, skips), the project is exported in every format textops reads (JSON, JSON_MIN,
CSV, TSV), each saved under the name Label Studio gives it, and each goes back in with `textops ingest` and no flag:
one row per labelled task, its latest annotation's label, and where it came from beside the batch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import TEXTS, copy_project, textops, wait_for

from textops.core.config import load_params
from textops.data.landing import SOURCE_SUFFIX
from textops.live.request_log import RequestLog
from textops.live.request_log_reader import read_rows

pytestmark = pytest.mark.slow

FORMATS = ("JSON", "JSON_MIN", "CSV", "TSV")


@pytest.fixture(scope="session")
def label_studio_executable() -> Path:
    """Asked before the session's champion is trained: a machine without Label Studio skips at once."""
    from support.labelstudio import executable

    return executable()


def served(root: Path, texts: list[str]) -> dict[str, str]:
    """The champion's answers to TEXTS (`textops predict`) in ROOT's request log as `textops serve` writes it with
    serve.log_texts (its RequestLog, a request per text), without starting a server; request id -> served label."""
    import pandas as pd

    pd.DataFrame({"text": texts}).to_csv(root / "texts.csv", index=False)
    textops(root, "predict", "texts.csv", "-o", "scored.jsonl")
    scored = pd.read_json(root / "scored.jsonl", lines=True).to_dict("records")
    directory = root / load_params(root / "params.yaml").serve.request_log_dir
    log = RequestLog(directory, "jsonl", texts=True)
    log.start()
    for i, answer in enumerate(scored):
        log.add(f"req-{i}", "1", [answer["text"]], [{k: v for k, v in answer.items() if k != "text"}])
    log.close()
    wait_for(lambda: len(list(read_rows(directory))) == len(texts), 60, "the request log written")
    return {f"req-{i}": answer["label"] for i, answer in enumerate(scored)}


def annotate(studio, project: int, served_labels: dict[str, str]) -> dict[int, str]:
    """A person's work on the six tasks, by the API, in order of time: task id -> the label that must win (the
    served one, so the champion check of the ingest expects what it gets)."""
    tasks = studio.tasks(project)
    assert len(tasks) == 6, tasks
    label = {t["id"]: served_labels[t["data"]["request_id"]] for t in tasks}
    other = {t: "negative" if lab == "positive" else "positive" for t, lab in label.items()}
    first, twice, edited, skipped_later, skipped, _untouched = (t["id"] for t in tasks)  # the last: not data
    studio.annotate(first, label[first])
    studio.annotate(twice, other[twice])  # then changed by a second annotation: the later wins
    studio.annotate(twice, label[twice])
    early = studio.annotate(edited, other[edited])
    studio.annotate(edited, other[edited])
    studio.relabel(early["id"], label[edited])  # edited last: it wins though its id is the lower one
    studio.annotate(skipped_later, label[skipped_later])
    studio.annotate(skipped_later, other[skipped_later], cancelled=True)  # a skip is no label
    studio.annotate(skipped, label[skipped], cancelled=True)
    return {t: label[t] for t in (first, twice, edited, skipped_later)}


def new_batch(root: Path, before: set[str]) -> tuple[list[dict], dict]:
    """The rows and the provenance record of the one batch an ingest added to ROOT's data/raw."""
    raw = root / load_params(root / "params.yaml").data.raw_dir
    added = sorted(p for p in raw.glob("batch-*.jsonl") if p.name not in before)
    assert len(added) == 1, added
    rows = [json.loads(line) for line in added[0].read_text(encoding="utf-8").splitlines()]
    source = json.loads(added[0].with_name(added[0].name.removesuffix(".jsonl") + SOURCE_SUFFIX).read_text())
    return rows, source


def test_a_queue_goes_through_a_real_label_studio_and_every_export_comes_back_with_the_latest_labels(
    label_studio_executable: Path, champion_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from support.labelstudio import label_studio

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    (tmp_path / "ls").mkdir()
    with label_studio(tmp_path / "ls", label_studio_executable) as studio:  # it migrates its database meanwhile
        root = copy_project(champion_template, tmp_path / "json")
        texts = [f"{TEXTS[i % len(TEXTS)]} (queued review {i})" for i in range(10)]
        served_labels = served(root, texts)
        assert "label queue: 6 texts" in textops(root, "label", "queue", "-n", "6", "-o", "q/tasks.json").stdout
        tasks = json.loads((root / "q" / "tasks.json").read_text(encoding="utf-8"))
        projects = {"JSON": root} | {f: copy_project(champion_template, tmp_path / f.lower()) for f in FORMATS[1:]}

        studio.ready()
        project = studio.create_project("textops queue", (root / "q" / "tasks.xml").read_text(encoding="utf-8"))
        assert studio.import_tasks(project, tasks) == 6
        expected = annotate(studio, project, served_labels)
        annotator = studio.call("GET", "/api/current-user/whoami").json()["id"]
        by_request = {t["data"]["request_id"]: t["id"] for t in studio.tasks(project)}
        exports = {fmt: studio.export(project, fmt) for fmt in FORMATS}

    text_of = {t["data"]["request_id"]: t["data"]["text"] for t in tasks}
    wanted = sorted((text_of[r], expected[task]) for r, task in by_request.items() if task in expected)
    for fmt, (name, content) in exports.items():
        root = projects[fmt]
        path = tmp_path / "exports" / fmt / name  # as a browser would save it
        path.parent.mkdir(parents=True)
        path.write_bytes(content)
        before = {p.name for p in (root / "data" / "raw").glob("batch-*.jsonl")}
        textops(root, "ingest", str(path))  # no flag
        rows, source = new_batch(root, before)
        assert sorted((r["text"], r["label"]) for r in rows) == wanted, (fmt, rows, wanted)
        assert source["format"] == "labelstudio" and source["rows"] == 4, (fmt, source)
        got = {(t["task"], t["request_id"], t["annotator"]) for t in source["tasks"]}  # the same in every format
        assert got == {(by_request[r], r, annotator) for r in by_request if by_request[r] in expected}, (fmt, source)
