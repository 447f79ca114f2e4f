"""The ASGI app of `textops serve` (FastAPI): MLflow's scoring protocol over the model a `Follower` holds.
This module is the app factory (`build_state`, `create_app`) and the scoring routes; the shadow challenger is
`textops.serving.shadow`'s, the feedback route `textops.serving.feedback_route`'s.

- `POST /invocations`: MLflow's scoring protocol (`textops.serving.scoring`), `{"predictions": [...]}` with `label` and
  `prob_<class>` per text. The model is read once per request: the request finishes on it even if a new version
  is swapped in meanwhile. The texts are scored in chunks of serve.batch_size on a thread pool (never on the event
  loop); between chunks a small request gets its turn and a client that went away drops the rest of the work.
- `GET /ping`, `GET /health`: 200 while a model is loaded, else 503.
- `GET /version`: which model answers (name, version, alias, data version, when loaded, the last reload error).
- `GET /metrics`: Prometheus text format (`textops.serving.serve_metrics`).
- `POST /reload`: check the registry now (loopback clients only); SIGHUP does the same.
- `POST /explain`: per-word attributions of the texts of a scoring request (`?target=LABEL`, else the predicted
  class), on a thread of their own (`textops.serving.explain_route`).
- `POST /feedback`: labels for served answers, by their `X-Request-Id` (and position), with the request log on
  (`textops.live.feedback`): 404 for an answer the log does not hold, 422 for a label its model does not have; with
  serve.feedback_token_env, 401 without `Authorization: Bearer <that token>` (`textops.serving.feedback_route`).
Every response carries `X-Model-Name` and `X-Model-Version`; with the request log on, a scoring answer carries
`X-Request-Id` too: the server's own, unique per answer, so that one client's feedback can never label another's
text. A client's own `X-Request-Id` is kept beside it in the log (`client_request_id`) and echoed back as
`X-Client-Request-Id`.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Request
from fastapi.responses import Response
from starlette.requests import ClientDisconnect

from textops.adapters.tracking import Session
from textops.core.config import Params
from textops.serving.feedback_route import required_feedback_token, take_feedback
from textops.serving.follow import Follower, Loaded, RegistrySource, describe, describe_shadow, lower_priority
from textops.serving.scoring import BadRequest, Limits, predict_records, read_body, read_texts
from textops.serving.serve_metrics import Metrics
from textops.serving.shadow import shadow_after, shadow_parts, start_shadow, stop_shadow
from textops.serving.state import ServeState, model_headers

log = logging.getLogger("textops.serve")
JSON = "application/json"
LOOPBACK = ("127.0.0.1", "::1", "localhost")
INLINE_PARSE_BYTES = 64_000  # larger bodies are parsed off the event loop


def build_state(
    root: Path,
    params: Params,
    version: str | None = None,
    metrics_dir: str | None = None,
    session: Session | None = None,
) -> ServeState:
    """The state for ROOT's registry: follow `champion` (or serve VERSION only); nothing loaded yet. SESSION: the
    serving process's store (`serve` opened it), else one opened here (a worker)."""
    from textops.adapters.tracking import session_for

    serve = params.serve
    metrics = Metrics(metrics_dir)

    def on_event(kind: str, info: dict) -> None:
        if kind == "swapped":
            metrics.reloads.inc()
            metrics.serving(params.mlflow.registered_model, info["to"], info["from"])
        else:
            metrics.failed_reloads.inc()

    source = RegistrySource(session_for(root, params, session, experiment=False), version=version, serve=serve)
    request_log, feedback_log = live_logs(root, params)
    feedback_token = required_feedback_token(params)
    shadow, shadow_pool = shadow_parts(source.session, serve, metrics)
    return ServeState(
        shadow=shadow,
        shadow_pool=shadow_pool,
        shadow_fraction=serve.shadow_fraction,
        follower=Follower(source, serve.poll_seconds, on_event),
        metrics=metrics,
        limits=Limits(serve.max_body_bytes, serve.max_texts, serve.max_chars_per_text),
        batch_size=serve.batch_size,
        pool=ThreadPoolExecutor(serve.threads, thread_name_prefix="textops-predict"),
        request_log=request_log,
        feedback_log=feedback_log,
        feedback_token=feedback_token,
        explain_pool=ThreadPoolExecutor(1, thread_name_prefix="textops-explain", initializer=lower_priority),
        explain_steps=serve.explain_steps,
        max_explain_texts=serve.max_explain_texts,
    )


def live_logs(root: Path, params: Params) -> tuple:
    """The request log and the feedback log of serve.log_requests; (None, None) without it."""
    serve = params.serve
    if not serve.log_requests:
        return None, None
    from textops.live.feedback import FeedbackLog
    from textops.live.request_log import RequestLog

    request_log = RequestLog(
        root / serve.request_log_dir,
        serve.request_log_format,
        serve.log_texts,
        serve.request_log_rotate_mb,
        serve.request_log_keep,
        serve.feedback_max_age_days,
        redact=serve.redact,
        days=serve.request_log_days,
    )
    feedback_log = FeedbackLog(
        root / serve.request_log_dir, int(serve.request_log_rotate_mb * 1_000_000), serve.request_log_days
    )
    return request_log, feedback_log


def create_app(state: ServeState):
    """The FastAPI app over STATE. Its lifespan loads the model if STATE has none yet (a failure stops the
    server before it accepts a request), then starts the follower's poller and the request log."""
    from fastapi import FastAPI

    @asynccontextmanager
    async def lifespan(app):
        follower = state.follower
        if follower.current is None:
            await asyncio.to_thread(follower.load_initial)
        state.metrics.serving(follower.current.model_name, follower.current.model_version)
        follower.start()
        start_shadow(state)
        if state.request_log is not None:
            state.request_log.start()
        try:
            yield
        finally:
            follower.stop()
            stop_shadow(state)
            state.pool.shutdown(wait=False, cancel_futures=True)
            if state.explain_pool is not None:
                state.explain_pool.shutdown(wait=False, cancel_futures=True)
            if state.request_log is not None:
                state.request_log.close()
            # The process ends next: let the interpreter's last garbage collection skip the model and the
            # libraries (seconds of a busy CPU for nothing).
            gc.freeze()

    app = FastAPI(title="textops serve", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(ModelHeaders, follower=state.follower)
    _routes(app, state)
    return app


def _routes(app, state: ServeState) -> None:
    follower = state.follower

    async def ping():
        return Response(
            "\n" if follower.current else "no model loaded\n", 200 if follower.current else 503, media_type=JSON
        )

    app.get("/ping")(ping)
    app.get("/health")(ping)

    @app.get("/version")
    async def version():
        return Response(json.dumps({**describe(follower), "shadow": describe_shadow(state.shadow)}), media_type=JSON)

    @app.get("/metrics")
    async def metrics():
        content, content_type = await asyncio.to_thread(state.metrics.exposition)
        return Response(content, media_type=content_type)

    @app.post("/reload")
    async def reload(request: Request):
        if request.client is None or request.client.host not in LOOPBACK:
            return Response(
                BadRequest(403, "POST /reload is for loopback clients only", "FORBIDDEN").body(), 403, media_type=JSON
            )
        if state.shadow is not None:
            state.shadow.request_reload()
        result = await asyncio.to_thread(follower.reload)
        return Response(json.dumps(result), 503 if result["result"] == "failed" else 200, media_type=JSON)

    @app.post("/invocations")
    async def invocations(request: Request):
        state.in_flight += 1  # the shadow stays off while others are answered (shadow.shadow_decision)
        try:
            return await score(request, state)
        finally:
            state.in_flight -= 1

    @app.post("/feedback")
    async def feedback(request: Request):
        return await take_feedback(request, state)

    @app.post("/explain")
    async def explain(request: Request):
        from textops.serving.explain_route import explain_request

        return await explain_request(request, state)


async def score(request, state: ServeState):
    """One scoring request, on the model current at its start."""
    from mlflow.exceptions import MlflowException

    started = time.perf_counter()
    loaded = state.follower.current
    assert loaded is not None  # the lifespan loaded it before the first request; RegistrySource never drops it
    status, texts, headers = 200, None, model_headers(loaded)
    try:
        body = await read_body(request, state.limits)
        ctype = request.headers.get("content-type")
        if len(body) > INLINE_PARSE_BYTES:
            texts = await asyncio.to_thread(read_texts, body, ctype, state.limits)
        else:
            texts = read_texts(body, ctype, state.limits)
        records = await predict(request, state, loaded, texts)
        if records is None:  # the client went away: nobody to answer
            status = 499
            state.metrics.dropped.inc()
            response = Response(b"", 499)
        else:
            response = Response(json.dumps({"predictions": records}), 200, headers=headers, media_type=JSON)
            request_id = None
            if state.request_log is not None:
                request_id = uuid.uuid4().hex  # the server's own: a client's id may be anyone's
                response.headers["X-Request-Id"] = request_id
                client_id = client_request_id(request)
                if client_id:
                    response.headers["X-Client-Request-Id"] = client_id
                    state.request_log.client_ids[request_id] = client_id
            shadowed = shadow_after(response, state, loaded, texts, records, request_id)  # run_shadow logs it then
            if not shadowed and request_id and state.request_log is not None:  # request_id: the log is on
                state.request_log.add(request_id, loaded.model_version, texts, records)
    except ClientDisconnect:  # gone while sending the body
        status, response = 499, Response(b"", 499)
        state.metrics.dropped.inc()
    except BadRequest as exc:
        status, response = exc.status, Response(exc.body(), exc.status, headers=headers, media_type=JSON)
    except MlflowException as exc:  # the model refused the input (its schema, its own checks)
        status = exc.get_http_status_code() if 400 <= exc.get_http_status_code() < 500 else 400
        response = Response(
            BadRequest(status, exc.message.splitlines()[0][:1000]).body(), status, headers=headers, media_type=JSON
        )
    except Exception as exc:
        log.exception("scoring failed")
        status = 500
        response = Response(
            BadRequest(500, f"the model failed: {type(exc).__name__}", "INTERNAL_ERROR").body(),
            500,
            headers=headers,
            media_type=JSON,
        )
    state.metrics.request(status, loaded.model_version, time.perf_counter() - started, len(texts) if texts else None)
    return response


async def predict(request, state: ServeState, loaded: Loaded, texts: list[str]) -> list[dict] | None:
    """The records for TEXTS, serve.batch_size at a time on the thread pool; None when the client disconnected
    (checked between chunks: the rest is not computed)."""
    loop = asyncio.get_running_loop()
    records: list[dict] = []
    for start in range(0, len(texts), state.batch_size):
        if start and await request.is_disconnected():
            return None
        chunk = texts[start : start + state.batch_size]
        records.extend(await loop.run_in_executor(state.pool, predict_records, loaded.model, chunk))
    return records


def client_request_id(request) -> str | None:
    """The client's own X-Request-Id when it is one the log can keep (letters, digits, `._:-`, up to 128)."""
    from textops.live.feedback import REQUEST_ID

    sent = request.headers.get("x-request-id", "")
    return sent if REQUEST_ID.fullmatch(sent) else None


class ModelHeaders:
    """ASGI middleware: `X-Model-Name`/`X-Model-Version` of the current model on every response that does not
    name one already (a scoring answer names the model that computed it)."""

    def __init__(self, app, follower: Follower):
        self.app, self.follower = app, follower

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_model(message):
            if message["type"] == "http.response.start" and self.follower.current is not None:
                headers = list(message.get("headers", []))
                if not any(name.lower() == b"x-model-version" for name, _ in headers):
                    extra = model_headers(self.follower.current)
                    headers += [(k.lower().encode(), v.encode()) for k, v in extra.items()]
                    message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_model)
