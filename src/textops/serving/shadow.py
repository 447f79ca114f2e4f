"""The shadow challenger of `textops serve` (serve.shadow): after an answer is sent, the challenger scores the same
texts on its own low-priority thread; the two are counted against each other in /metrics and logged side by side.
The shadow never fails or delays a request: past SHADOW_WAITING_MAX waiting scorings a request is not shadowed."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from textops.serving.scoring import predict_records

if TYPE_CHECKING:
    from textops.serving.follow import Loaded
    from textops.serving.state import ServeState

log = logging.getLogger("textops.serve")

SHADOW_WAITING_MAX = 32  # requests waiting for their shadow scoring; past it a request is not shadowed


def shadow_after(
    response, state: ServeState, loaded: Loaded, texts: list[str], records: list[dict], request_id: str | None
) -> bool:
    """Schedule the shadow challenger's scoring of TEXTS for after RESPONSE is sent (a background task, on its own
    low-priority thread); False when there is none to run (no shadow, or too many waiting: counted)."""
    from starlette.background import BackgroundTask

    shadow = state.shadow.current if state.shadow is not None else None
    if shadow is None or shadow.model_version == loaded.model_version:
        return False
    if state.shadow_waiting >= SHADOW_WAITING_MAX:
        state.metrics.shadow_skipped.inc()
        return False
    state.shadow_waiting += 1
    if request_id and state.request_log is not None:  # request_id: the log is on
        state.request_log.expect(request_id, loaded.model_version, texts, records)
    response.background = BackgroundTask(run_shadow, state, shadow, loaded, texts, records, request_id, time.time())
    return True


async def run_shadow(
    state: ServeState,
    shadow: Loaded,
    loaded: Loaded,
    texts: list[str],
    records: list[dict],
    request_id: str | None,
    at: float,
) -> None:
    """The shadow's answers to TEXTS (the client has its response already): counted against the served ones in
    /metrics and logged beside them."""
    loop, answers = asyncio.get_running_loop(), []
    try:
        for start in range(0, len(texts), state.batch_size):
            chunk = texts[start : start + state.batch_size]
            answers.extend(await loop.run_in_executor(state.shadow_pool, predict_records, shadow.model, chunk))
        differ = sum(a.get("label") != r.get("label") for a, r in zip(answers, records, strict=True))
        state.metrics.shadow_texts.labels(loaded.model_version, shadow.model_version).inc(len(texts))
        state.metrics.shadow_disagreements.labels(loaded.model_version, shadow.model_version).inc(differ)
        result = (shadow.model_version, answers)
    except Exception as exc:  # the shadow never fails a request: counted and logged
        log.warning("shadow v%s failed: %s: %s", shadow.model_version, type(exc).__name__, exc)
        state.metrics.shadow_skipped.inc()
        result = None
    finally:
        state.shadow_waiting -= 1
    if request_id and state.request_log is not None:
        state.request_log.add(request_id, loaded.model_version, texts, records, shadow=result, at=at)
