"""What the console tells a person after a run and on `textops status` when the run left no champion."""

from __future__ import annotations

import time

from textops.ui.console import format_monitor, serve_steps
from textops.ui.status import format_status, schedule_text

REJECTED_FIRST = {
    "version": "1",
    "promote": False,
    "reason": "no champion yet and macro_f1 0.18 < floor 0.6",
    "evidence": {"challenger.macro_f1": 0.18, "challenger.version": "1"},
}


def status(aliases: dict, raw_md5: str | None = "f6042661aa") -> dict:
    return {
        "aliases": aliases,
        "runs": [],
        "data": {"raw_md5": raw_md5, "champion_trained_on_it": False},
        "landing": [],
        "schedules": [],
        "serving": None,
        "serving_checked": ["http://127.0.0.1:5001"],
        "online": {},
    }


def alias_row(version: str, decision: str) -> dict:
    return {
        "version": version,
        "metric": "0.18",
        "raw_md5": "f6042661aa",
        "data_rev": "",
        "created": time.time(),
        "decision": decision,
        "reason": "",
        "files_missing": False,
    }


def test_after_a_first_run_that_missed_the_gate_next_steps_do_not_offer_to_serve_a_champion():
    steps = dict(serve_steps(REJECTED_FIRST))
    assert "textops serve" not in steps
    assert 'textops model promote 1 --reason "..."' in steps
    assert any("train.epochs" in why for why in steps.values())


def test_with_a_champion_next_steps_serve_it():
    promoted = {**REJECTED_FIRST, "promote": True}
    beaten = {**REJECTED_FIRST, "evidence": {**REJECTED_FIRST["evidence"], "champion.version": "3"}}
    for reg in (promoted, beaten, None):
        assert [cmd for cmd, _ in serve_steps(reg)] == ["textops serve"]


def test_status_without_a_champion_names_the_challenger_to_promote_and_says_data_has_no_champion():
    screen = format_status(status({"challenger": alias_row("1", "rejected")}), "macro_f1")
    champion_line = next(line for line in screen.splitlines() if line.startswith("champion"))
    assert "textops model promote 1" in champion_line and "textops run" not in champion_line
    data_line = next(line for line in screen.splitlines() if line.startswith("data/"))
    assert "no champion yet" in data_line and "not what the champion" not in data_line


def test_status_of_an_empty_project_says_run():
    screen = format_status(status({}, raw_md5=None), "macro_f1")
    assert "champion    none  (run `textops run`)" in screen


def test_status_with_a_champion_on_other_data_says_so():
    screen = format_status(status({"champion": alias_row("2", "promoted")}), "macro_f1")
    assert "not what the champion was trained on" in screen


def test_status_shows_prefect_yamls_schedules_with_units_and_does_not_claim_they_are_deployed():
    assert schedule_text({"interval": 3600}) == "every 1 h"
    assert schedule_text({"interval": 90}) == "every 90 s"
    assert schedule_text({"cron": "0 2 * * *"}) == "cron 0 2 * * * (UTC)"
    assert schedule_text({"cron": "0 2 * * *", "timezone": "Europe/Paris"}) == "cron 0 2 * * * (Europe/Paris)"
    deployments = [{"name": "monitor", "pool": "gpu", "schedules": ["every 1 h"], "triggers": 0}]
    screen = format_status({**status({}), "schedules": deployments}, "macro_f1")
    assert "the deployments `prefect deploy --all` creates" in screen
    assert "monitor on work pool gpu: every 1 h" in screen


def test_explanations_name_the_words_towards_and_against_the_class():
    from textops.ui.console import format_explanations

    words = [{"word": w, "attribution": a} for w, a in [("great", 0.8), ("not", -0.2), ("film", 0.0), ("fun", 0.3)]]
    explained = {"label": "pos", "target": "neg", "prob": 0.93, "logit": -1.2, "baseline_logit": 0.1, "delta": 0.001}
    screen = format_explanations(
        {"model": "models:/m@champion", "steps": 32, "explanations": [{**explained, "words": words}]}
    )
    assert "models:/m@champion (layer integrated gradients, 32 steps)" in screen
    assert "answer pos (p=0.930); explaining neg: logit -1.200, baseline 0.100, delta +0.0010" in screen
    assert "towards: great +0.800, fun +0.300\n" in screen and "against: not -0.200\n" in screen
    assert "great(+0.80) not(-0.20) film(+0.00) fun(+0.30)" in screen  # every word, in the text's order


def test_monitor_says_where_the_feedback_labels_are_when_the_texts_have_none():
    skipped = {"drifted": False, "skipped": "the new data has no labels"}
    result = {
        "rows": 200,
        "source": "the request log",
        "champion": {"name": "m", "version": "2"},
        "checks": [
            {"kind": "label", "name": "label shares", **skipped},
            {"kind": "performance", "name": "accuracy", **skipped},
            {"kind": "input", "name": "text length", "drifted": False, "reference": 1.0, "current": 1.0},
        ],
        "online": {"2": {"n": 153, "accuracy": 0.9, "macro_f1": 0.88}},
        "drift": False,
        "kinds": [],
        "report": "r.html",
        "mlflow_run_id": "x",
    }
    shown = format_monitor(result)
    skip_lines = [line for line in shown.splitlines() if line.startswith("skip")]
    assert len(skip_lines) == 2 and all("online lines below" in line for line in skip_lines), shown
    assert shown.index("online v2: 153 answers labelled") > shown.index(skip_lines[-1])
    assert "online lines below" not in format_monitor({**result, "online": {}})


def test_status_warns_of_a_champion_whose_files_cannot_be_read_and_of_no_other():
    missing = {**alias_row("1", "promoted"), "files_missing": True}
    screen = format_status(status({"champion": missing, "challenger": alias_row("2", "rejected")}), "macro_f1")
    assert screen.count("model files cannot be read") == 1, screen
    assert "WARNING: v1's model files cannot be read" in screen, screen
    healthy = format_status(status({"champion": alias_row("1", "promoted")}), "macro_f1")
    assert "cannot be read" not in healthy, healthy
