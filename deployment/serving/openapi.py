"""The endpoint's OpenAPI 3.1 document: scoring, feedback, history and metrics, with schemas taken from the pydantic
models (3.1 uses their JSON Schema dialect, 2020-12)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from deployment.serving.feedback_routes import IDEMPOTENCY_HEADER, REPLAYED_HEADER, STORED_HEADER
from deployment.serving.score_request import STATUS_OF_KIND, ScoreRequest
from news_reader import __version__
from news_reader.extraction.schemas import ArticleInfo
from news_reader.store.feedback import IDEMPOTENCY_KEY_MAX_CHARS, FeedbackPost
from news_reader.store.records import StoredAnalysis, StoredFeedback

NOT_STORED = ("false when the analysis could not be stored (the database failed, also when tried again, or refused "
              "a value): feedback on its trace id would be refused. Absent when it is stored.")


class ScoreAnswer(ArticleInfo):
    """The answer of `POST /score`: the analysis (ArticleInfo, the flow's output) and, only when it could not be
    stored, `"stored": false`."""

    stored: bool = Field(True, description=NOT_STORED)


def _schemas(*models: type[BaseModel]) -> dict:
    schemas: dict = {}
    for model in models:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    return schemas


def _json(schema: dict) -> dict:
    return {"content": {"application/json": {"schema": schema}}}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def openapi_document(max_chars: int, max_request_bytes: int, auth: bool) -> dict:
    """The document for a server with these limits, and with or without an API key."""
    schemas = _schemas(ScoreRequest, ArticleInfo, ScoreAnswer, FeedbackPost, StoredFeedback, StoredAnalysis)
    schemas["ScoreRequest"]["properties"]["article"]["maxLength"] = max_chars
    schemas["Error"] = {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {"type": "object", "required": ["code", "message"], "properties": {
                "code": {"type": "string", "enum": sorted(STATUS_OF_KIND)}, "message": {"type": "string"}}},
            "trace_id": {"type": "string", "description": "Of a scoring request that reached the flow."},
            "stored": {"type": "boolean", "description": NOT_STORED.replace("analysis", "failed analysis")},
        },
    }
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    stored = {STORED_HEADER: {"description": "On every answer of a request that reached the flow: true when its "
                                             "analysis is stored and can take feedback, false when not.",
                              "schema": {"type": "string", "enum": ["true", "false"]}}}
    failures = {
        "400": "Not JSON, or not a JSON object.",
        "401": "Missing or wrong API key (only when one is configured).",
        "405": "Not a POST.",
        "406": "The Accept header does not allow application/json.",
        "413": f"Body over {max_request_bytes:,} bytes or article over {max_chars:,} characters.",
        "415": "Content-Type is not application/json.",
        "422": "Missing, extra or mistyped field; empty, binary-looking or not valid Unicode article.",
        "429": "The LLM is rate limiting and retries ran out.",
        "431": "Request headers over the server's limit (NEWS_READER_SERVING_MAX_HEADER_BYTES).",
        "501": "A Transfer-Encoding the server does not implement.",
        "502": "The LLM failed or answered with unusable output.",
        "503": "The LLM cannot be reached.",
        "504": "The LLM did not answer in time.",
        "500": "The flow failed for another reason.",
    }
    flow_failures = {"429", "502", "503", "504", "500"}  # answers with the trace id of the request, as a result has
    score = {
        "summary": "Analyse one article",
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/ScoreRequest"}}}},
        "responses": {
            "200": {"description": "The analysis, with the trace id of the request.", "headers": stored,
                    **_json(_ref("ScoreAnswer"))},
            **{code: {"description": text, **error, **({"headers": stored} if code in flow_failures else {})}
               for code, text in failures.items()},
        },
    }
    refused = {code: {"description": text, **error} for code, text in {
        "400": "Not JSON, or a bad query parameter.", "401": "Missing or wrong API key (only when one is configured).",
        "404": "No analysis has this trace id.", "415": "Content-Type is not application/json.",
        "422": "Missing, extra or mistyped field, or a correction of a company the analysis does not name.",
        "503": "The database cannot be used right now."}.items()}
    idempotency_key = {
        "name": IDEMPOTENCY_HEADER, "in": "header", "required": False,
        "description": "A new key per submission (a UUID, say), sent again when the client retries it: a post with "
                       "the key of a stored one is not stored again but answered with the stored feedback, if it is "
                       "the same feedback (analysis, rating, comment, corrections), and with 422 if not. A quoted "
                       "string, as the IETF draft writes it, is taken without its quotes.",
        "schema": {"type": "string", "minLength": 1, "maxLength": IDEMPOTENCY_KEY_MAX_CHARS, "pattern": "^[!-~]+$"},
    }
    replayed = {REPLAYED_HEADER: {"description": "true when the answer is a stored post's, for a repeated "
                                                 f"{IDEMPOTENCY_HEADER}; absent otherwise.",
                                  "schema": {"type": "string", "enum": ["true"]}}}
    feedback = {
        "summary": "Rate one analysis, keyed by its trace id",
        "parameters": [idempotency_key],
        "requestBody": {"required": True, **_json(_ref("FeedbackPost"))},
        "responses": {"201": {"description": "The stored feedback.", "headers": replayed,
                              **_json(_ref("StoredFeedback"))},
                      **refused,
                      "422": {"description": "Missing, extra or mistyped field, a correction of a company the analysis "
                                             "does not name, text the database cannot store, or an "
                                             f"{IDEMPOTENCY_HEADER} already used for other feedback.", **error}},
    }
    page = [{"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100,
                                                         "default": 25}},
            {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0, "default": 0}}]
    history = {"summary": "Past analyses with their feedback, newest first", "parameters": page, "responses": {
        "200": {"description": "A page of analyses.", **_json({"type": "array", "items": _ref("StoredAnalysis")})},
        **refused}}
    one = {"summary": "One analysis with its feedback",
           "parameters": [{"name": "trace_id", "in": "path", "required": True, "schema": {"type": "string"}}],
           "responses": {"200": {"description": "The analysis.", **_json(_ref("StoredAnalysis"))}, **refused}}
    metrics = {"summary": "Metrics in Prometheus' text format",
               "responses": {"200": {"description": "The metrics.", "content": {"text/plain": {}}}}}
    operations = [score, feedback, history, one, metrics]
    if auth:
        for operation in operations:
            operation["security"] = [{"apiKey": []}]
    status = {"200": {"description": "Up", "content": {"application/json": {"schema": {"type": "object"}}}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "News Reader", "version": __version__,
                 "description": "Extracts structured information from a news article and predicts, per company, "
                                "whether the news moves its stock price."},
        "paths": {
            "/score": {"post": score},
            "/feedback": {"post": feedback},
            "/api/analyses": {"get": history},
            "/api/analyses/{trace_id}": {"get": one},
            "/metrics": {"get": metrics},
            "/health": {"get": {"summary": "Liveness and readiness", "responses": status}},
            "/version": {"get": {"summary": "Versions of the service, flow and model", "responses": status}},
        },
        "components": {"schemas": schemas,
                       "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer"}}},
    }
