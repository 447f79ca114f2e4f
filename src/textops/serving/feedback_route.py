"""`POST /feedback` of `textops serve`: labels for served answers, by the server's own `X-Request-Id` (and
position), matched through the request log (`textops.live.feedback`), all or nothing; with
serve.feedback_token_env, only from clients that send that token. The app (`textops.serving.serving_app`) routes
to `take_feedback`."""

from __future__ import annotations

import asyncio
import hmac
import json
import os

from fastapi.responses import Response
from starlette.requests import ClientDisconnect

from textops.core.config import Params
from textops.core.errors import ParamsError
from textops.serving.scoring import BadRequest, media_type, read_body, too_large
from textops.serving.state import ServeState

JSON = "application/json"


def required_feedback_token(params: Params) -> str | None:
    """The token POST /feedback requires (serve.feedback_token_env), None when any client may send feedback."""
    serve = params.serve
    if not serve.feedback_token_env:
        return None
    token = os.environ.get(serve.feedback_token_env, "")
    if not token:
        raise ParamsError(
            f"serve.feedback_token_env names {serve.feedback_token_env}, which is not set (or empty) in the "
            "environment of `textops serve`: set it to the token clients must send to POST /feedback "
            "(Authorization: Bearer TOKEN), or leave serve.feedback_token_env out to accept feedback from any "
            "client."
        )
    return token


async def take_feedback(request, state: ServeState):
    """`POST /feedback`: every item matched to its answer and checked, then all written durably, then 200."""
    from textops.live.feedback import FeedbackError, parse, resolve

    if state.feedback_token is not None and not bearer_matches(request, state.feedback_token):
        body = BadRequest(
            401,
            "POST /feedback needs this server's feedback token: Authorization: Bearer TOKEN (serve.feedback_token_env)",
            "UNAUTHENTICATED",
        ).body()
        return Response(body, 401, headers={"WWW-Authenticate": "Bearer"}, media_type=JSON)
    try:
        if state.request_log is None:
            raise FeedbackError(
                404,
                "this server keeps no request log (serve.log_requests: false), so it cannot "
                "match feedback to its answers",
            )
        body = await read_body(request, state.limits)
        if media_type(request.headers.get("content-type")) != "application/json":
            raise BadRequest(415, "feedback is JSON: Content-Type: application/json", "UNSUPPORTED_MEDIA_TYPE")
        try:
            items = parse(body, state.limits.max_texts)
        except OverflowError as exc:
            raise too_large(str(exc)) from exc
        except ValueError as exc:
            raise BadRequest(400, str(exc)) from exc
        rows = await asyncio.to_thread(resolve, items, state.request_log.find)
        assert state.feedback_log is not None  # build_state makes it with the request log
        await asyncio.to_thread(state.feedback_log.append, rows)
    except FeedbackError as exc:
        code = "RESOURCE_DOES_NOT_EXIST" if exc.status == 404 else "INVALID_PARAMETER_VALUE"
        return Response(BadRequest(exc.status, exc.message, code).body(), exc.status, media_type=JSON)
    except BadRequest as exc:
        return Response(exc.body(), exc.status, media_type=JSON)
    except ClientDisconnect:
        return Response(b"", 499)
    state.metrics.feedback.inc(len(rows))
    return Response(json.dumps({"accepted": len(rows)}), 200, media_type=JSON)


def bearer_matches(request, token: str) -> bool:
    """Whether REQUEST presents TOKEN as `Authorization: Bearer TOKEN` (compared in constant time)."""
    scheme, _, sent = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(sent.strip().encode(), token.encode())
