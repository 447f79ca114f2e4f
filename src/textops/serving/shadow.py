"""The shadow challenger of `textops serve` (serve.shadow): after an answer is sent, the challenger scores the same
texts on its own low-priority thread; the two are counted against each other in /metrics and logged side by side.

The shadow never fails or delays a request, and its share of the CPU is bounded: it scores only a sample of the
requests (serve.shadow_fraction, decided by a hash of the request id, so the share is exact over many requests
and the same in every worker), never while another request is being answered (at the decision and again between
the chunks it scores: on a busy server its work would compete with those answers; 4 clients at once raised the
champion's p99 3-4x), and not past SHADOW_WAITING_MAX waiting scorings. Each request is counted once in /metrics:
`textops_shadow_scored_total`, or `textops_shadow_skipped_total{reason}`. A request the shadow skipped has no
shadow answer in the request log; live promotion counts only the labelled answers that have one."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from typing import TYPE_CHECKING

from textops.serving.scoring import predict_records

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

    from textops.adapters.tracking import Session
    from textops.core.config import ServeParams
    from textops.serving.follow import Follower, Loaded
    from textops.serving.serve_metrics import Metrics
    from textops.serving.state import ServeState

log = logging.getLogger("textops.serve")

SHADOW_WAITING_MAX = 32  # requests waiting for their shadow scoring; past it a request is not shadowed


def shadow_parts(session: Session, serve: ServeParams, metrics: Metrics) -> tuple:
    """The follower of the challenger alias and the one low-priority thread it scores on, (None, None) without
    serve.shadow."""
    from concurrent.futures import ThreadPoolExecutor

    from textops.serving.follow import ShadowSource, lower_priority

    if not serve.shadow:
        return None, None
    pool: ThreadPoolExecutor = ThreadPoolExecutor(1, thread_name_prefix="textops-shadow", initializer=lower_priority)
    return shadow_follower(ShadowSource(session, serve), serve.poll_seconds, metrics), pool


def shadow_follower(source, poll_seconds: float, metrics: Metrics) -> Follower:
    """The follower of the challenger alias (serve.shadow): its load failures counted in /metrics, its log lines
    saying that the shadow, not the served model, failed."""
    from textops.serving.follow import Follower

    def on_event(kind: str, info: dict) -> None:
        if kind == "failed":
            metrics.shadow_load_failures.inc()

    return Follower(source, poll_seconds, on_event, role="shadow")


def start_shadow(state: ServeState) -> None:
    """At the app's start: the shadow follows the challenger alias, its first load started now, off the request
    path."""
    if state.shadow is not None:
        state.shadow.start()
        state.shadow.request_reload()


def stop_shadow(state: ServeState) -> None:
    """At the app's end: the follower stopped, the scorings not yet started dropped."""
    if state.shadow is not None:
        state.shadow.stop()
        assert state.shadow_pool is not None  # made with the shadow, by shadow_parts
        state.shadow_pool.shutdown(wait=False, cancel_futures=True)


def sampled(key: str, fraction: float) -> bool:
    """Whether the request KEY (its id) is in the shadow's sample of FRACTION of the requests."""
    if fraction >= 1:
        return True
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") < fraction * 2**64


def shadow_decision(key: str, fraction: float, others_in_flight: int, waiting: int) -> str:
    """ "scored", or why the request KEY is not shadowed: "sampled_out" (outside FRACTION), "busy" (other requests
    in flight: the shadow would take CPU from their answers), "backlog" (SHADOW_WAITING_MAX scorings WAITING)."""
    if not sampled(key, fraction):
        return "sampled_out"
    if others_in_flight > 0:
        return "busy"
    if waiting >= SHADOW_WAITING_MAX:
        return "backlog"
    return "scored"


def shadow_after(
    response, state: ServeState, loaded: Loaded, texts: list[str], records: list[dict], request_id: str | None
) -> bool:
    """Schedule the shadow challenger's scoring of TEXTS for after RESPONSE is sent (a background task, on its own
    low-priority thread); False when there is none to run (no shadow, or `shadow_decision` says no: counted)."""
    from starlette.background import BackgroundTask

    shadow = state.shadow.current if state.shadow is not None else None
    if shadow is None or shadow.model_version == loaded.model_version:
        return False
    state.shadow_seq += 1
    key = request_id or f"request-{state.shadow_seq}"  # no request log, no id: the sequence samples as well
    outcome = shadow_decision(key, state.shadow_fraction, state.in_flight - 1, state.shadow_waiting)
    if outcome != "scored":
        state.metrics.shadow_skipped.labels(outcome).inc()
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
    result: tuple | None = None
    try:
        for start in range(0, len(texts), state.batch_size):
            if start and state.in_flight:  # requests came in meanwhile: they get the CPU, the shadow gives way
                state.metrics.shadow_skipped.labels("busy").inc()
                break
            chunk = texts[start : start + state.batch_size]
            answers.extend(await loop.run_in_executor(state.shadow_pool, predict_records, shadow.model, chunk))
        else:
            differ = sum(a.get("label") != r.get("label") for a, r in zip(answers, records, strict=True))
            state.metrics.shadow_texts.labels(loaded.model_version, shadow.model_version).inc(len(texts))
            state.metrics.shadow_disagreements.labels(loaded.model_version, shadow.model_version).inc(differ)
            state.metrics.shadow_scored.inc()
            result = (shadow.model_version, answers)
    except Exception as exc:  # the shadow never fails a request: counted and logged
        log.warning("shadow v%s failed: %s: %s", shadow.model_version, type(exc).__name__, exc)
        state.metrics.shadow_skipped.labels("failed").inc()
    finally:
        state.shadow_waiting -= 1
    if request_id and state.request_log is not None:
        state.request_log.add(request_id, loaded.model_version, texts, records, shadow=result, at=at)
