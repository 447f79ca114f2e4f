"""What `textops serve` says when it starts: what it serves, what is in shadow, whether requests are logged."""

from __future__ import annotations

from textops.core.config import Params
from textops.serving.serve import banner


def test_the_banner_says_what_is_served_in_shadow_and_logged():
    plain = banner("http://127.0.0.1:5001", "clf", "3", False, Params(), 1)
    assert "clf v3, follows @champion (checks every 10 s)" in plain
    assert "no shadow; request log off" in plain and "vNone" not in plain
    params = Params.model_validate({"serve": {"shadow": True, "log_requests": True, "log_texts": True}})
    both = banner("http://127.0.0.1:5001", "clf", "3", True, params, 2)
    assert "v3 pinned (--model-version)" in both and "2 workers" in both
    assert (
        "@challenger in shadow on 25% of the requests" in both
        and "request log on, in logs/requests, with the texts" in both
    )
