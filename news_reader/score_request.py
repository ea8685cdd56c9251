"""The scoring API's contract, independent of any web framework: the request, its checks, the error body, the
status of each failure and the OpenAPI document. The local server and the Azure ML endpoint answer alike."""

from __future__ import annotations

import hmac
import json

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from news_reader import __version__
from news_reader.article import prepare_article
from news_reader.errors import ArticleTooLong, InvalidArticle
from news_reader.schemas import ArticleInfo

# HTTP status of each failure kind: the request's own, news_reader.errors' kinds, and any other flow failure.
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


def parse_score_request(body: bytes, mimetype: str | None, max_chars: int) -> ScoreRequest:
    """The request, or RequestRejected saying what is wrong with it."""
    if mimetype != "application/json":
        raise RequestRejected("unsupported_media_type",
                              f"send the article as JSON (Content-Type: application/json), not {mimetype or 'no type'}")
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as err:  # bad UTF-8 or JSON, integers over 4,300 digits, deep nesting
        raise RequestRejected("invalid_request", f"request body is not valid JSON: {err}") from err
    if not isinstance(data, dict):
        raise RequestRejected("invalid_request", 'request body must be a JSON object like {"article": "..."}')
    try:
        request = ScoreRequest.model_validate(data)
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in err.errors())
        raise RequestRejected("invalid_field", problems) from err
    try:
        prepare_article(request.article, max_chars)
    except ArticleTooLong as err:
        raise RequestRejected("article_too_long", str(err)) from err
    except InvalidArticle as err:
        raise RequestRejected("invalid_article", str(err)) from err
    return request


def openapi_document(max_chars: int, max_request_bytes: int, auth: bool) -> dict:
    """OpenAPI 3.1 description of the endpoint; the request and result schemas are the pydantic models' (3.1 uses
    their JSON Schema dialect, 2020-12)."""
    schemas: dict = {}
    for model in (ScoreRequest, ArticleInfo):
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    schemas["ScoreRequest"]["properties"]["article"]["maxLength"] = max_chars
    schemas["Error"] = {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {
            "code": {"type": "string", "enum": sorted(STATUS_OF_KIND)}, "message": {"type": "string"}}}},
    }
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    failures = {
        "400": "Not JSON, or not a JSON object.",
        "401": "Missing or wrong API key (only when one is configured).",
        "405": "Not a POST.",
        "406": "The Accept header does not allow application/json.",
        "413": f"Body over {max_request_bytes:,} bytes or article over {max_chars:,} characters.",
        "415": "Content-Type is not application/json.",
        "422": "Missing, extra or mistyped field; empty or binary-looking article.",
        "429": "The LLM is rate limiting and retries ran out.",
        "502": "The LLM failed or answered with unusable output.",
        "503": "The LLM cannot be reached.",
        "504": "The LLM did not answer in time.",
        "500": "The flow failed for another reason.",
    }
    score = {
        "summary": "Analyse one article",
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/ScoreRequest"}}}},
        "responses": {
            "200": {"description": "The analysis, with the trace id of the request.", "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/ArticleInfo"}}}},
            **{code: {"description": text, **error} for code, text in failures.items()},
        },
    }
    if auth:
        score["security"] = [{"apiKey": []}]
    status = {"200": {"description": "Up", "content": {"application/json": {"schema": {"type": "object"}}}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "News Reader", "version": __version__,
                 "description": "Extracts structured information from a news article and predicts, per company, "
                                "whether the news moves its stock price."},
        "paths": {
            "/score": {"post": score},
            "/health": {"get": {"summary": "Liveness and readiness", "responses": status}},
            "/version": {"get": {"summary": "Versions of the service, flow and model", "responses": status}},
        },
        "components": {"schemas": schemas,
                       "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer"}}},
    }
