"""The register stage's result and `textops distill`'s: one line each that the CLI, the run summary and the flows
print or log."""

from textops.core import lineage
from textops.lifecycle.results import DistillResult, RegisterResult

REGISTERED = {
    "name": "m",
    "version": "2",
    "promote": True,
    "reason": "beats the champion",
    "challenger_metric": 0.9,
    "evidence": {lineage.champion_key("version"): "1"},
}


def test_register_result_says_what_was_decided_and_why():
    result = RegisterResult.from_dict(REGISTERED)
    assert result.describe() == "m v2 (challenger): PROMOTED, now the champion: beats the champion"
    assert result.compared_with == "1"
    assert result.to_dict() == REGISTERED  # `register --json` prints the stage's dict, its figures included
    again = RegisterResult(name="m", version="3", promote=False, reason="loses", registered_before=True)
    assert again.describe() == "m v3 (challenger, its run's version decided again): not promoted: loses"
    forced = RegisterResult(name="m", version="4", promote=True, reason="rollback", forced=True)
    assert forced.describe() == "m v4 (challenger): PROMOTED, now the champion (forced): rollback"
    assert again.compared_with is None


def test_distill_result_names_the_student_its_latency_and_the_decision():
    student = {
        "teacher_version": "1",
        "teacher_layers": 6,
        "mapping": [1, 3, 5],
        "temperature": 2.0,
        "texts": 900,
        "log_texts": 100,
        lineage.val_metric("macro_f1"): 0.85,
    }
    registered = {**REGISTERED, "promote": False, "reason": "too slow"}
    result = DistillResult(student=student, latency={"student": 1.5, "teacher": 3.0}, registered=registered)
    first, second = result.describe().splitlines()
    assert first == (
        "v1's 6 layers -> 3 (teacher layers 1, 3, 5), T=2.0, 900 texts (100 from the request log); val macro-F1 "
        "0.8500; p50 1.50 ms vs the teacher's 3.00 ms a text (torch)"
    )
    assert second == "m v2 (challenger): not promoted: too slow"
