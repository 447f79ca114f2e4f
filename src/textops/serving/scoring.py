"""MLflow's scoring protocol, read strictly: a request body and its Content-Type in, the texts to classify out,
or a `BadRequest` with the 4xx status and a message that says what is wrong.

The formats are MLflow's own (`inputs`, `instances`, `dataframe_split`, `dataframe_records` as JSON; CSV;
Parquet), parsed with MLflow's functions (`mlflow.pyfunc.scoring_server`), so a request that MLflow's server
accepts is accepted here and reaches the model as the same texts. What MLflow's server gets wrong is checked
first, with the pyfunc's own check (`textops.modeling.pyfunc.request_problem`): a missing Content-Type, JSON nested past
the recursion limit, numbers where texts go. The limits (body bytes, texts, characters per text) answer 413.
No model, no server; the app (`textops.serving.serving_app`) calls `read_body` (the body within the limits), then
`read_texts`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

CONTENT_TYPE_JSON = "application/json"
CONTENT_TYPE_CSV = "text/csv"
CONTENT_TYPE_PARQUET = "application/vnd.apache.parquet"
FORMATS = ("inputs", "instances", "dataframe_split", "dataframe_records")


class BadRequest(Exception):
    """A request the server refuses: STATUS (400, 413, 415) and a message for the client."""

    def __init__(self, status: int, message: str, code: str = "BAD_REQUEST"):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code

    def body(self) -> bytes:
        """MLflow's error body: `{"error_code": ..., "message": ...}`."""
        return json.dumps({"error_code": self.code, "message": self.message}).encode()


def too_large(message: str) -> BadRequest:
    return BadRequest(413, message, "REQUEST_LIMIT_EXCEEDED")


@dataclass(frozen=True)
class Limits:
    """What one request may ask for (serve.max_body_bytes, serve.max_texts, serve.max_chars_per_text)."""

    max_body_bytes: int = 10_000_000
    max_texts: int = 1000
    max_chars_per_text: int = 100_000

    def check_body(self, size: int) -> None:
        if size > self.max_body_bytes:
            raise too_large(
                f"the request body is larger than {self.max_body_bytes:,} bytes (serve.max_body_bytes): send the "
                "texts in several requests, or score a file with `textops predict`"
            )

    def check_texts(self, texts: list[str]) -> None:
        if len(texts) > self.max_texts:
            raise too_large(
                f"{len(texts):,} texts in one request; at most {self.max_texts:,} (serve.max_texts): split the "
                "request, or score a file with `textops predict`"
            )
        long = [i for i, t in enumerate(texts) if len(t) > self.max_chars_per_text]
        if long:
            raise too_large(
                f"text(s) {long[:10]} are longer than {self.max_chars_per_text:,} characters "
                f"(serve.max_chars_per_text; the first is {len(texts[long[0]]):,})"
            )


async def read_body(request, limits: Limits) -> bytes:
    """The body, refused with 413 as soon as it is known to exceed the limit (Content-Length, or while reading)."""
    length = request.headers.get("content-length", "")
    if length.isdigit():
        limits.check_body(int(length))
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        limits.check_body(size)
        chunks.append(chunk)
    return b"".join(chunks)


def media_type(content_type: str | None) -> str:
    """The media type of a Content-Type header (MLflow's rules): 415 when it is missing, not UTF-8, has
    parameters other than `charset`, or is not JSON, CSV or Parquet."""
    if not content_type:
        raise BadRequest(
            415, "The Content-Type header is missing: send application/json (or text/csv).", "UNSUPPORTED_MEDIA_TYPE"
        )
    parts = [p.strip() for p in content_type.split(";")]
    mime = parts[0].lower()
    options = {key.strip().lower(): value.strip() for key, _, value in (p.partition("=") for p in parts[1:] if p)}
    if options.get("charset", "utf-8").lower() != "utf-8":
        raise BadRequest(415, "The scoring server only supports UTF-8", "UNSUPPORTED_MEDIA_TYPE")
    if set(options) - {"charset"}:
        raise BadRequest(
            415,
            f"Unrecognized content type parameters: {', '.join(sorted(set(options) - {'charset'}))}",
            "UNSUPPORTED_MEDIA_TYPE",
        )
    if mime not in (CONTENT_TYPE_JSON, CONTENT_TYPE_CSV, CONTENT_TYPE_PARQUET):
        raise BadRequest(
            415,
            f"This server only supports the content types {CONTENT_TYPE_JSON}, {CONTENT_TYPE_CSV} and "
            f"{CONTENT_TYPE_PARQUET}; got {content_type[:100]!r}.",
            "UNSUPPORTED_MEDIA_TYPE",
        )
    return mime


def read_texts(body: bytes, content_type: str | None, limits: Limits = Limits()) -> list[str]:
    """The texts of a scoring request, in order; BadRequest (4xx) when there are none or it is malformed."""
    limits.check_body(len(body))
    mime = media_type(content_type)
    try:
        if mime == CONTENT_TYPE_JSON:
            parsed = _parse_json(body)
        elif mime == CONTENT_TYPE_CSV:
            parsed = _parse_table(body, csv=True)
        else:
            parsed = _parse_table(body, csv=False)
        texts = texts_of(parsed)
    except BadRequest:
        raise
    except RecursionError as exc:
        raise BadRequest(400, "the request is nested too deeply") from exc
    except Exception as exc:  # MLflow's parsers: MlflowException (4xx), pandas/numpy errors on odd shapes
        raise _as_bad_request(exc) from exc
    limits.check_texts(texts)
    broken = [i for i, t in enumerate(texts) if not encodable(t)]
    if broken:
        raise BadRequest(
            400,
            f"text(s) {broken[:10]} hold a lone surrogate (a \\ud800-\\udfff escape without its pair): not valid "
            "Unicode, so they cannot be tokenized or logged; send the texts as valid UTF-8",
        )
    return texts


def encodable(text: str) -> bool:
    """Whether TEXT is valid Unicode (JSON's escapes can carry half of a surrogate pair, which no encoder takes)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _as_bad_request(exc: Exception) -> BadRequest:
    from mlflow.exceptions import MlflowException

    if isinstance(exc, MlflowException):
        status = exc.get_http_status_code()
        return BadRequest(status if 400 <= status < 500 else 400, exc.message.splitlines()[0][:1000])
    return BadRequest(400, f"the input cannot be read as texts ({type(exc).__name__}: {str(exc)[:300]})")


def _parse_json(body: bytes):
    from mlflow.pyfunc.scoring_server import infer_and_parse_data

    from textops.modeling.pyfunc import request_problem

    try:
        parsed = json.loads(body.decode("utf-8"))
    except RecursionError as exc:
        raise BadRequest(400, "the JSON body is nested too deeply to parse") from exc
    except UnicodeDecodeError as exc:
        raise BadRequest(400, f"the body is not UTF-8 ({exc.reason} at byte {exc.start})") from exc
    except ValueError as exc:
        raise BadRequest(400, f"the body is not valid JSON ({exc})") from exc
    if not isinstance(parsed, dict):
        raise BadRequest(
            400,
            "the body must be a JSON object with one of 'inputs', 'instances', 'dataframe_split' or "
            f"'dataframe_records', not a {type(parsed).__name__}",
        )
    present = [key for key in FORMATS if key in parsed]
    if len(present) != 1:
        raise BadRequest(
            400,
            "the body must have exactly one of the fields 'inputs', 'instances', 'dataframe_split', "
            f"'dataframe_records'; it has {sorted(str(k)[:40] for k in parsed)[:10]}",
        )
    problem = request_problem(parsed)  # before MLflow's parsing turns numbers into strings
    if problem:
        raise BadRequest(400, problem)
    return infer_and_parse_data({present[0]: parsed[present[0]]})


def _parse_table(body: bytes, csv: bool):
    from io import BytesIO, StringIO

    from mlflow.pyfunc.scoring_server import parse_csv_input, parse_parquet_input

    if not csv:
        return parse_parquet_input(BytesIO(body))
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(400, f"the body is not UTF-8 ({exc.reason} at byte {exc.start})") from exc
    return parse_csv_input(StringIO(text))


def texts_of(parsed) -> list[str]:
    """The texts in what MLflow's parsers return (a DataFrame, an array, a dict or list of columns/records)."""
    import numpy as np
    import pandas as pd

    if isinstance(parsed, pd.DataFrame):
        if "text" not in parsed.columns:
            raise BadRequest(400, f"input needs a 'text' column; got columns {[str(c) for c in parsed.columns][:10]}")
        values = parsed["text"].tolist()
    elif isinstance(parsed, dict):
        if "text" not in parsed:
            raise BadRequest(400, f"input needs a 'text' field; got {[str(k)[:40] for k in parsed][:10]}")
        values = _items(parsed["text"])
    else:
        values = _items(parsed)
    values = [v["text"] if isinstance(v, dict) and "text" in v else v for v in values]
    values = [v.item() if isinstance(v, np.ndarray) and v.ndim == 0 else v for v in values]
    bad = [i for i, v in enumerate(values) if not isinstance(v, str)]
    if bad:
        example = json.dumps(values[bad[0]], default=str)[:80]
        raise BadRequest(400, f"every text must be a string; item(s) {bad[:10]} are not (e.g. {example})")
    if not values:
        raise BadRequest(400, "no texts to classify: send at least one string")
    return [str(v) for v in values]


def _items(value) -> list:
    import numpy as np

    if isinstance(value, np.ndarray):
        if value.ndim == 0:
            return [value.item()]
        if value.ndim > 1:
            raise BadRequest(400, "texts must be a flat list of strings, not a nested list")
        return value.tolist()
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return list(value)
    raise BadRequest(400, f"texts must be a list of strings, not {type(value).__name__}")


def predict_records(model, texts: list[str]) -> list[dict]:
    """MODEL's answers to TEXTS as the protocol's records: `label` and `prob_<class>` per text."""
    import pandas as pd

    return model.predict(pd.DataFrame({"text": texts})).to_dict(orient="records")
