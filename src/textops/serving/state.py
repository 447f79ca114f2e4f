"""What the app of `textops serve` serves with (`ServeState`), built by `serving_app.build_state`; its own
module so that the parts of the app (the routes, the shadow) share it without importing each other."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from textops.serving.follow import Follower, Loaded
from textops.serving.scoring import Limits
from textops.serving.serve_metrics import Metrics

if TYPE_CHECKING:
    from textops.live.feedback import FeedbackLog
    from textops.live.request_log import RequestLog


@dataclass
class ServeState:
    """What the app serves with: the follower (the model), limits, metrics, the request log, the thread pool."""

    follower: Follower
    metrics: Metrics
    limits: Limits
    batch_size: int
    pool: ThreadPoolExecutor
    request_log: RequestLog | None = None
    feedback_log: FeedbackLog | None = None  # with the request log
    shadow: Follower | None = None  # serve.shadow: the challenger, scoring after each answer is sent
    shadow_pool: ThreadPoolExecutor | None = None
    shadow_waiting: int = 0  # shadow scorings not finished (only the event loop changes it)
    shadow_fraction: float = 1.0  # serve.shadow_fraction: the share of requests shadowed
    shadow_seq: int = 0  # requests offered to the shadow: the sampling key of those without a request id
    in_flight: int = 0  # scoring requests being answered (only the event loop changes it)
    feedback_token: str | None = None  # serve.feedback_token_env's value: what POST /feedback must present
    explain_pool: ThreadPoolExecutor | None = None  # POST /explain's one thread (textops.serving.explain_route)
    explain_steps: int = 32  # serve.explain_steps
    max_explain_texts: int = 8  # serve.max_explain_texts
    explain_waiting: int = 0  # explanation requests queued or running (only the event loop changes it)


def model_headers(loaded: Loaded | None) -> dict[str, str]:
    """The headers naming the model that computed an answer."""
    if loaded is None:
        return {}
    return {"X-Model-Name": loaded.model_name, "X-Model-Version": loaded.model_version}
