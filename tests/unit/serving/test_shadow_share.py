"""The shadow's share of the requests (serve.shadow_fraction, issue 36): a sample decided by the request id alone,
so the same id is always in or out and the share over many ids is the fraction; and never a request answered
while others are in flight (4 concurrent clients raised the champion's p99 3-4x with every request shadowed)."""

from __future__ import annotations

import uuid

import pytest

from textops.core.config import load_params
from textops.serving.shadow import SHADOW_WAITING_MAX, sampled, shadow_decision

IDS = [uuid.UUID(int=n * 7919 + 1).hex for n in range(20_000)]  # fixed ids: the same shares every run


@pytest.mark.parametrize("fraction", [0.05, 0.25, 0.5, 0.9])
def test_the_sample_is_the_fraction_of_the_requests(fraction):
    share = sum(sampled(i, fraction) for i in IDS) / len(IDS)
    assert share == pytest.approx(fraction, abs=0.015)


def test_the_same_id_gets_the_same_answer_and_the_samples_nest():
    first = [sampled(i, 0.25) for i in IDS[:500]]
    assert first == [sampled(i, 0.25) for i in IDS[:500]]
    # A larger fraction keeps every request a smaller one shadowed: raising it only adds evidence.
    assert all(sampled(i, 0.5) for i in IDS if sampled(i, 0.25))


def test_none_and_all():
    assert not any(sampled(i, 0.0) for i in IDS[:1000])
    assert all(sampled(i, 1.0) for i in IDS[:1000])


def test_a_request_answered_beside_others_is_not_shadowed():
    assert shadow_decision(IDS[0], 1.0, 0, 0) == "scored"
    assert shadow_decision(IDS[0], 1.0, 1, 0) == "busy"
    assert shadow_decision(IDS[0], 1.0, 0, SHADOW_WAITING_MAX) == "backlog"
    out = next(i for i in IDS if not sampled(i, 0.25))
    assert shadow_decision(out, 0.25, 3, 0) == "sampled_out"  # the sample first: its share does not vary with load


def test_the_default_fraction_is_a_sample(tmp_path):
    (tmp_path / "params.yaml").write_text("serve:\n  shadow: true\n")
    serve = load_params(tmp_path / "params.yaml").serve
    assert 0 < serve.shadow_fraction < 1
