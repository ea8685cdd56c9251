"""Feedback and history over HTTP. `POST /feedback` (in place of Prompt flow's own, which only logs a span) stores
a rating keyed by trace id; `GET /api/analyses` and `/api/analyses/<trace_id>` list what was analysed and what users
said. Every `/score` request that reached the flow, answered or failed, is recorded."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

from flask import Blueprint, Flask, Response, g, jsonify, request, request_finished
from sqlalchemy.exc import SQLAlchemyError

from deployment.serving.score_request import RequestRejected, error_body, parse_json_body
from news_reader.store import DuplicateTraceId, InvalidFeedback, Store, UnknownTraceId
from news_reader.store.feedback import FeedbackPost
from news_reader.telemetry.metrics import record_feedback
from news_reader.telemetry.trace_ids import current_trace_id

_log = logging.getLogger("news_reader.feedback")

MAX_PAGE = 100
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
            stored = store.record_feedback(post.trace_id, post)
        except (UnknownTraceId, InvalidFeedback) as error:  # kinds not_found (404) and invalid_field (422)
            raise RequestRejected(error.kind, str(error)) from error
        record_feedback(post.rating)
        return stored.model_dump(mode="json"), 201

    @app.before_request
    def start_clock() -> None:
        g.feedback_started = time.perf_counter()

    def record_analysis(sender: Flask, response: Response, **_) -> None:
        """On Flask's request_finished signal rather than in an after_request hook: it comes after every hook,
        including the one that gives a failed flow its own error kind."""
        if request.endpoint != "score" or "flow_result" not in g:
            return  # refused before the flow ran: not an analysis
        answer = response.get_json(silent=True) or {}
        ok = response.status_code == 200
        if ok:
            prompt, completion, cached = _tokens(answer.get("usage", []))
        else:  # no usage in an error body: what the request's steps spent, as the request event counted it
            totals = g.get("request_totals") or {}
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
        except (SQLAlchemyError, DuplicateTraceId):
            _log.exception("analysis %s was not recorded", trace_id)

    @app.errorhandler(SQLAlchemyError)
    def database_unavailable(error: SQLAlchemyError):
        _log.error("database error: %s", type(error).__name__)
        return jsonify(error_body("database_unavailable", "the database of analyses and feedback cannot be used "
                                                          "right now; try again later")), 503

    app.register_blueprint(api)
    app.view_functions["feedback"] = feedback
    request_finished.connect(record_analysis, app, weak=False)


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
