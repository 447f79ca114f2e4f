"""`POST /explain` of `textops serve`: per-word attributions (`textops.modeling.explain`) for the texts of a
request in MLflow's scoring formats (the same as `/invocations`), towards the predicted class or the class named by
`?target=LABEL`.

An explanation costs about `serve.explain_steps` forward and backward passes of the model per text, hundreds of
times a prediction, so it never runs where predictions do: one thread of its own (`ServeState.explain_pool`, at a
lower CPU priority), on a PyTorch copy of the model loaded on the first `/explain` (the served runtime may be ONNX;
the copy costs the model's memory once more), at most `MAX_WAITING` requests queued behind it (503 beyond), and at
most `serve.max_explain_texts` texts a request (413 beyond). `/invocations` keeps its own threads; the two compete
for the CPU only (docs/serving.md gives the figures, BENCHMARKS.md the latency).
"""

from __future__ import annotations

import asyncio
import json
import logging

from fastapi.responses import Response
from starlette.requests import ClientDisconnect

from textops.core.errors import DataError, ModelError
from textops.serving.scoring import BadRequest, read_body, read_texts, too_large
from textops.serving.state import ServeState, model_headers

log = logging.getLogger("textops.serve")
JSON = "application/json"
MAX_WAITING = 4  # explanation requests queued or running at once; more are told to come back (503)


async def explain_request(request, state: ServeState) -> Response:
    """One `POST /explain`: the texts read as `/invocations` reads them, checked, then explained on the explain
    thread, on the model current at the request's start."""
    from textops.modeling.explain import check_texts, target_index

    loaded = state.follower.current
    assert loaded is not None  # the lifespan loaded it before the first request
    headers = model_headers(loaded)
    target = request.query_params.get("target")
    try:
        body = await read_body(request, state.limits)
        texts = await asyncio.to_thread(read_texts, body, request.headers.get("content-type"), state.limits)
        if len(texts) > state.max_explain_texts:
            raise too_large(
                f"{len(texts)} texts to explain in one request; at most {state.max_explain_texts} "
                "(serve.max_explain_texts): an explanation costs hundreds of predictions, so send a few texts at a "
                "time, or use `textops explain` on a machine of your own"
            )
        check_texts(texts)
        labels = getattr(unwrapped(loaded.model), "labels", None)
        if labels is not None:
            target_index(labels, target)  # an unknown label is refused before it waits for the explain thread
        if state.explain_waiting >= MAX_WAITING:
            raise BadRequest(
                503, f"{MAX_WAITING} explanations are already waiting; try again shortly", "TEMPORARILY_UNAVAILABLE"
            )
        explanations = await explain_on_thread(state, loaded.model, texts, target)
    except ClientDisconnect:
        return Response(b"", 499)
    except BadRequest as exc:
        extra = {"Retry-After": "5"} if exc.status == 503 else {}
        return Response(exc.body(), exc.status, headers={**headers, **extra}, media_type=JSON)
    except DataError as exc:
        return Response(BadRequest(400, str(exc)).body(), 400, headers=headers, media_type=JSON)
    except ModelError as exc:
        return Response(BadRequest(501, str(exc), "NOT_IMPLEMENTED").body(), 501, headers=headers, media_type=JSON)
    except Exception as exc:
        log.exception("explaining failed")
        body = BadRequest(500, f"the explanation failed: {type(exc).__name__}", "INTERNAL_ERROR").body()
        return Response(body, 500, headers=headers, media_type=JSON)
    return Response(json.dumps({"explanations": explanations}), 200, headers=headers, media_type=JSON)


async def explain_on_thread(state: ServeState, model, texts: list[str], target: str | None) -> list[dict]:
    """The explanations of TEXTS, computed on the explain thread (one at a time); `explain_waiting` counts the
    requests waiting for it or being served by it (only the event loop changes it)."""
    from textops.modeling.explain import explain

    assert state.explain_pool is not None  # build_state makes it
    loop = asyncio.get_running_loop()
    state.explain_waiting += 1
    try:
        return await loop.run_in_executor(state.explain_pool, explain, model, texts, target, state.explain_steps)
    finally:
        state.explain_waiting -= 1


def unwrapped(model):
    """The python model inside a loaded pyfunc (the model itself when it is not one)."""
    return model.unwrap_python_model() if hasattr(model, "unwrap_python_model") else model
