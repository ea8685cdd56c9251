"""The scoring API's contract, independent of any web framework: the request, its checks, the error body and the
status of each failure. The local server and the Azure ML endpoint answer alike."""

from __future__ import annotations

import hmac
import json
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from news_reader.extraction.article import prepare_article
from news_reader.extraction.errors import ArticleTooLong, InvalidArticle, validation_message

M = TypeVar("M", bound=BaseModel)
# HTTP status of each failure kind: the request's own, news_reader.extraction.errors' kinds, and any other flow failure.
STATUS_OF_KIND = {
    "invalid_request": 400,
    "unauthorized": 401,
    "not_found": 404,
    "method_not_allowed": 405,
    "not_acceptable": 406,
    "article_too_long": 413,
    "request_too_large": 413,
    "unsupported_media_type": 415,
    "invalid_field": 422,
    "invalid_article": 422,
    "llm_rate_limited": 429,
    "invalid_model_output": 502,
    "llm_request_failed": 502,
    "llm_unavailable": 503,
    "database_unavailable": 503,
    "local_model": 503,
    "llm_timeout": 504,
    "flow_failed": 500,
}


class ScoreRequest(BaseModel):
    """The body of `POST /score`."""

    model_config = ConfigDict(extra="forbid", strict=True)

    article: str = Field(description="The article's plain text; the first line may be a headline.")


class RequestRejected(Exception):
    """A request refused before the flow runs; `kind` is a key of STATUS_OF_KIND."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind
        self.status = STATUS_OF_KIND[kind]


def error_body(kind: str, message: str) -> dict:
    return {"error": {"code": kind, "message": message}}


def check_api_key(authorization: str | None, api_key: str | None) -> None:
    """With a key configured, require `Authorization: Bearer <key>` (compared in constant time)."""
    if api_key is None:
        return
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), api_key.encode()):
        raise RequestRejected("unauthorized", "missing or wrong API key: send 'Authorization: Bearer <key>'")


def parse_json_body(body: bytes, mimetype: str | None, model: type[M], what: str, example: str) -> M:
    """A JSON object validated as `model`, or RequestRejected saying what is wrong with it; `what` and `example`
    name the body in the messages."""
    if mimetype != "application/json":
        raise RequestRejected("unsupported_media_type",
                              f"send {what} as JSON (Content-Type: application/json), not {mimetype or 'no type'}")
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as err:  # bad UTF-8 or JSON, integers over 4,300 digits, deep nesting
        raise RequestRejected("invalid_request", f"request body is not valid JSON: {err}") from err
    if not isinstance(data, dict):
        raise RequestRejected("invalid_request", f"request body must be a JSON object like {example}")
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise RequestRejected("invalid_field", validation_message(err, "body")) from err


def parse_score_request(body: bytes, mimetype: str | None, max_chars: int) -> ScoreRequest:
    """The request, or RequestRejected saying what is wrong with it."""
    request = parse_json_body(body, mimetype, ScoreRequest, "the article", '{"article": "..."}')
    try:
        # The flow's node prepares it again (the flow is self-contained); a bad one is refused here, before the flow.
        prepare_article(request.article, max_chars)
    except ArticleTooLong as err:
        raise RequestRejected("article_too_long", str(err)) from err
    except InvalidArticle as err:
        raise RequestRejected("invalid_article", str(err)) from err
    return request
