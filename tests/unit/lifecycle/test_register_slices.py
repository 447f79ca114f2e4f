"""The register stage's per-slice comparison (registry.guards.slice_comparisons, slice_evidence): the slices are
assigned from the test rows as the evaluation assigns them, both models compared on each, and a challenger that
wins overall but loses one group is held by `policy.decide` with that group named."""

from __future__ import annotations

import numpy as np
import pandas as pd

from textops.core.config import Params
from textops.core.policy import decide, mcnemar, score
from textops.registry.guards import slice_comparisons, slice_evidence


def test_a_group_the_challenger_loses_holds_it_and_the_evidence_says_so():
    n_web, n_mail = 300, 60
    texts = [f"the film number {i} was a pleasure to watch from start to end" for i in range(n_web + n_mail)]
    y = np.array(["positive", "negative"] * ((n_web + n_mail) // 2), dtype=object)
    flip = {"positive": "negative", "negative": "positive"}
    old, new = y.copy(), y.copy()
    old[:90] = [flip[v] for v in y[:90]]  # the champion misses 90 web rows the challenger gets right
    new[n_web : n_web + 20] = [flip[v] for v in y[n_web : n_web + 20]]  # the challenger misses 20 mail rows
    test = pd.DataFrame({"text": texts, "label": 0, "group": ["web"] * n_web + ["mail"] * n_mail})
    params = Params.model_validate({"promotion": {"primary_metric": "accuracy", "min_delta": 0.01}})

    compared = slice_comparisons(params, test, y, new, old)
    names = {s.name for s in compared}
    assert {"group=web", "group=mail", "language=en"} <= names
    assert not any(s.name.startswith("length=") and s.rows < 30 for s in compared)
    evidence = slice_evidence(params, compared)
    assert evidence["slices.compared"] == f"{len(compared)} (of at least 30 rows)"
    assert any(v.startswith("group=mail: 0.6667 vs 1.0000 on 60 rows") for v in evidence.values())

    overall = decide(
        params.promotion, score(y, new, "accuracy"), score(y, old, "accuracy"), mcnemar(y, new, old).p_value
    )
    assert overall.promote  # without the slices it would be promoted
    held = decide(
        params.promotion,
        score(y, new, "accuracy"),
        score(y, old, "accuracy"),
        mcnemar(y, new, old).p_value,
        slices=compared,
    )
    assert not held.promote and "on the slice group=mail (60 rows)" in held.reason
