"""Feedback and history over HTTP. `POST /feedback` (in place of Prompt flow's own, which only logs a span) stores
a rating keyed by trace id, once per Idempotency-Key; `GET /api/analyses` and `/api/analyses/<trace_id>` list what
was analysed and what users said. Every `/score` request that reached the flow, answered or failed, is recorded, and
its answer says whether it was (X-Analysis-Stored; `"stored": false` in the body when not)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

from flask import Blueprint, Flask, Response, current_app, g, jsonify, request
from sqlalchemy.exc import SQLAlchemyError

from deployment.serving.observability import request_totals
from deployment.serving.score_request import RequestRejected, error_body, parse_json_body
from news_reader.store import (
    DuplicateTraceId,
    IdempotencyKeyReused,
    InvalidFeedback,
    Store,
    UnknownTraceId,
    UnstorableData,
)
from news_reader.store.feedback import IDEMPOTENCY_KEY, IDEMPOTENCY_KEY_MAX_CHARS, FeedbackPost
from news_reader.telemetry.metrics import NotStoredReason, record_feedback, record_not_stored
from news_reader.telemetry.trace_ids import current_trace_id

_log = logging.getLogger("news_reader.feedback")

MAX_PAGE = 100
STORED_HEADER = "X-Analysis-Stored"
IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
# model, prompt_tokens, completion_tokens, cached_tokens -> USD, or None when the price is unknown.
CostEstimate = Callable[[str, int, int, int | None], float | None]


def install_feedback(app: Flask, store: Store, model: str, variant: str = "default",
                     estimate_cost: CostEstimate | None = None) -> None:
    """Add the routes and record each analysis of `/score` in `store`, as run by `model` and flow `variant`."""
    api = Blueprint("history", __name__)

    @api.get("/api/analyses")
    def analyses():
        limit = _int_arg("limit", default=25, low=1, high=MAX_PAGE)
        offset = _int_arg("offset", default=0, low=0)
        return jsonify([a.model_dump(mode="json") for a in store.analyses(limit, offset)])

    @api.get("/api/analyses/<trace_id>")
    def analysis(trace_id: str):
        try:
            return store.analysis(trace_id).model_dump(mode="json")
        except UnknownTraceId as error:
            raise RequestRejected(error.kind, str(error)) from error

    def feedback():
        post = parse_json_body(request.get_data(cache=True), request.mimetype or None, FeedbackPost, "feedback",
                               '{"trace_id": ..., "rating": "up"}')
        try:
            stored, new = store.record_feedback(post.trace_id, post, _idempotency_key())
        except (UnknownTraceId, InvalidFeedback, IdempotencyKeyReused, UnstorableData) as error:  # 404 or 422
            raise RequestRejected(error.kind, str(error)) from error
        if new:
            record_feedback(post.rating)
        return stored.model_dump(mode="json"), 201, {} if new else {REPLAYED_HEADER: "true"}

    @app.before_request
    def start_clock() -> None:
        g.feedback_started = time.perf_counter()

    @app.after_request
    def record_analysis(response: Response) -> Response:
        """Store the analysis of a `/score` request that reached the flow, as answered, and say in the answer
        whether it was: a caller must not be given a trace id that cannot take feedback. Flask runs after_request
        hooks last registered first: one that changes the answer of a failed flow (app.py's explain_flow_failure) is
        registered after this one, so that what is stored is what is answered."""
        if request.endpoint != "score" or "flow_result" not in g:
            return response  # refused before the flow ran: not an analysis
        answer = response.get_json(silent=True)
        stored = _store_analysis(answer if isinstance(answer, dict) else {}, response.status_code == 200)
        response.headers[STORED_HEADER] = "true" if stored else "false"
        if not stored and isinstance(answer, dict):
            response.set_data(current_app.json.dumps({**answer, "stored": False}))
        return response

    def _store_analysis(answer: dict, ok: bool) -> bool:
        if ok:
            prompt, completion, cached = _tokens(answer.get("usage", []))
        else:  # no usage in an error body: what the request's steps spent, as the request event counts it
            totals = request_totals()
            prompt, completion = totals.get("prompt_tokens", 0), totals.get("completion_tokens", 0)
            cached = totals.get("cached_tokens")
        trace_id = answer.get("trace_id") or current_trace_id()
        try:
            store.record_analysis(
                trace_id=trace_id, article=json.loads(request.get_data(cache=True))["article"],
                result=answer if ok else None, error_kind=None if ok else _error_kind(answer), model=model,
                variant=variant, latency_ms=round((time.perf_counter() - g.feedback_started) * 1000),
                prompt_tokens=prompt, completion_tokens=completion, cached_tokens=cached,
                cost_usd=estimate_cost(model, prompt, completion, cached) if estimate_cost else None,
            )
        except Exception as error:  # the answer is computed and paid for: no failure to store it may replace it
            _log.exception("analysis %s was not recorded", trace_id)
            record_not_stored(_not_stored_reason(error))
            return False
        return True

    @app.errorhandler(SQLAlchemyError)
    def database_unavailable(error: SQLAlchemyError):
        _log.error("database error: %s", type(error).__name__)
        return jsonify(error_body("database_unavailable", "the database of analyses and feedback cannot be used "
                                                          "right now; try again later")), 503

    app.register_blueprint(api)
    app.view_functions["feedback"] = feedback


def _idempotency_key() -> str | None:
    """The request's Idempotency-Key, a token or (as the IETF draft writes it) a quoted string; None without one."""
    given = request.headers.get(IDEMPOTENCY_HEADER)
    if given is None:
        return None
    key = given.strip()
    if len(key) > 1 and key[0] == key[-1] == '"':
        key = key[1:-1]
    if not IDEMPOTENCY_KEY.fullmatch(key):
        raise RequestRejected("invalid_field", f"{IDEMPOTENCY_HEADER}: 1 to {IDEMPOTENCY_KEY_MAX_CHARS} printable "
                                               "ASCII characters without spaces, such as a UUID")
    return key


def _not_stored_reason(error: Exception) -> NotStoredReason:
    if isinstance(error, UnstorableData):
        return "unstorable_data"
    if isinstance(error, DuplicateTraceId):
        return "duplicate_trace_id"
    return "database_unavailable" if isinstance(error, SQLAlchemyError) else "unexpected_error"


def _int_arg(name: str, default: int, low: int, high: int | None = None) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or value < low or (high is not None and value > high):
        bounds = f"from {low} to {high}" if high is not None else f"of at least {low}"
        raise RequestRejected("invalid_field", f"{name}: must be an integer {bounds}, not {raw!r}")
    return value


def _tokens(usage: list[dict]) -> tuple[int, int, int | None]:
    """Prompt, completion and cached tokens over every step; cached is None when no step reports it."""
    cached = [u["cached_tokens"] for u in usage if u.get("cached_tokens") is not None]
    return (sum(u.get("prompt_tokens", 0) for u in usage), sum(u.get("completion_tokens", 0) for u in usage),
            sum(cached) if cached else None)


def _error_kind(answer: dict) -> str:
    error = answer.get("error")
    return error.get("code", "flow_failed") if isinstance(error, dict) else "flow_failed"
