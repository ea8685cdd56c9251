"""Log events drawn from the spans the core opens: one per step (per business for the analysis) with its trace id,
status, latency, tokens and estimated cost, and one per scoring request with the request's totals. No article text,
prompt or answer, unless NEWS_READER_LOG_CONTENT put them into the spans."""

from __future__ import annotations

import logging
import threading

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.trace import StatusCode

from news_reader.telemetry.metrics import record_step
from news_reader.telemetry.trace_ids import trace_id_hex

_log = logging.getLogger("news_reader.events")
# Requests whose steps have ended but the request not yet; bounded for traces that never get a request event.
_MAX_OPEN_TRACES = 1000


class StepEvents(SpanProcessor):
    """At the end of every step span (one with `news_reader.step`): a `step` event, the LLM metrics, and the
    totals of its trace, which the request event takes."""

    def __init__(self) -> None:
        self._totals: dict[str, dict] = {}
        self._lock = threading.Lock()

    def on_end(self, span: ReadableSpan) -> None:
        attributes = span.attributes or {}
        step = attributes.get("news_reader.step")
        if step is None:
            return
        model = str(attributes.get("gen_ai.request.model", ""))
        usage = {
            "calls": attributes.get("news_reader.llm_calls", 0),
            "retries": attributes.get("news_reader.retries", 0),
            "prompt_tokens": attributes.get("gen_ai.usage.input_tokens", 0),
            "completion_tokens": attributes.get("gen_ai.usage.output_tokens", 0),
            "cached_tokens": attributes.get("gen_ai.usage.cache_read.input_tokens"),
        }
        failed = span.status.status_code == StatusCode.ERROR
        error = str(attributes.get("error.type", "unexpected_error")) if failed else None
        cost = record_step(model, step, error, **usage)
        trace_id = trace_id_hex(span.context.trace_id)
        content = {key: attributes[f"news_reader.{key}"] for key in ("prompt", "answer")
                   if f"news_reader.{key}" in attributes}
        _log.log(logging.WARNING if failed else logging.INFO, "step", extra={
            "trace_id": trace_id, "span_id": format(span.context.span_id, "016x"), "step": step,
            "business": attributes.get("news_reader.business"), "model": model, "status": "error" if failed else "ok",
            "error": error, "latency_ms": attributes.get("news_reader.latency_ms"), **usage, "cost_usd": cost,
            **content,
        })
        self._add(trace_id, usage, cost)

    def request_totals(self, trace_id: str | None) -> dict:
        """What the trace's steps spent (LLM calls, retries, tokens, cost), forgotten once taken."""
        with self._lock:
            return self._totals.pop(trace_id, {}) if trace_id else {}

    def _add(self, trace_id: str, usage: dict, cost: float | None) -> None:
        with self._lock:
            totals = self._totals.setdefault(trace_id, {
                "llm_calls": 0, "retries": 0, "prompt_tokens": 0, "completion_tokens": 0, "cached_tokens": None,
                "cost_usd": 0.0,
            })
            totals["llm_calls"] += usage["calls"]
            totals["retries"] += usage["retries"]
            totals["prompt_tokens"] += usage["prompt_tokens"]
            totals["completion_tokens"] += usage["completion_tokens"]
            if usage["cached_tokens"] is not None:
                totals["cached_tokens"] = (totals["cached_tokens"] or 0) + usage["cached_tokens"]
            if cost is None or totals["cost_usd"] is None:
                totals["cost_usd"] = None  # unknown as soon as one step's model has no price
            else:
                totals["cost_usd"] = round(totals["cost_usd"] + cost, 10)
            if len(self._totals) > _MAX_OPEN_TRACES:
                del self._totals[next(iter(self._totals))]


STEP_EVENTS = StepEvents()


def log_request(trace_id: str | None, outcome: str, http_status: int, latency_ms: int, error: dict | None,
                totals: dict) -> None:
    """The `request` event: how a scoring request ended, its error code and message if any, and its totals."""
    error = error or {}
    _log.log(logging.INFO if outcome == "ok" else logging.WARNING, "request", extra={
        "trace_id": trace_id, "outcome": outcome, "http_status": http_status, "latency_ms": latency_ms,
        "error": error.get("code"), "error_message": error.get("message"), **totals,
    })


def log_startup(destinations: list[str], trace_ui: str | None) -> None:
    """The `telemetry` event: where spans go."""
    _log.info("telemetry", extra={"span_destinations": destinations, "trace_ui": trace_ui})
