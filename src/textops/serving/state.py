"""What the app of `textops serve` serves with (`ServeState`), built by `serving_app.build_state`; its own
module so that the parts of the app (the routes, the shadow) share it without importing each other."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from textops.serving.follow import Follower
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
