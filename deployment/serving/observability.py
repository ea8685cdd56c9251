"""Traces, JSON logs and metrics for the serving app. `start_telemetry` runs before Prompt flow's app is made, so
that ours is the one tracer provider which Prompt flow's spans (and Azure ML's data collector) join; `observe` then
hooks the app's requests and adds `GET /metrics` (which needs the API key, like every route but probes and
API documents)."""

from __future__ import annotations

import logging
import os
import time

from flask import Flask, Response, g, request, request_finished, request_started
from promptflow._utils.logger_utils import LoggerFactory, get_pf_logging_level

from news_reader.settings import TelemetrySettings
from news_reader.telemetry.events import STEP_EVENTS, log_request, log_startup
from news_reader.telemetry.logs import configure_logging
from news_reader.telemetry.metrics import Outcome, exposition, record_request, use_price_table
from news_reader.telemetry.trace_ids import active_trace_id
from news_reader.telemetry.tracing import configure_tracing, trace_ui_link

# Prompt flow's settings in the server, unless set otherwise.
_PROMPTFLOW_DEFAULTS = {
    # Flow and node spans, and the flow run's trace id in every result.
    "PF_DISABLE_TRACING": "false",
    # Our provider exports: the serving app's and the executor's own exporters would send every span twice (and
    # their OTLP one is broken).
    "PF_BUILTIN_TRACE_EXPORTERS_DISABLE": "true",
    "PF_TRACING_SKIP_EXPORTER_SETUP": "true",
    # Prompt flow's log lines (one per node, a long traceback per failed request) off: our events are the record.
    "PF_LOGGING_LEVEL": "CRITICAL",
}


def start_telemetry(settings: TelemetrySettings | None = None) -> None:
    """Prompt flow's tracing on and its logs quiet, JSON logs, and the tracer provider with its exporters and the
    step events."""
    settings = settings or TelemetrySettings()
    use_price_table(settings.prices_file)
    for name, value in _PROMPTFLOW_DEFAULTS.items():
        os.environ.setdefault(name, value)
    for logger in LoggerFactory._existing_loggers:  # made at import, before PF_LOGGING_LEVEL was set
        logger.setLevel(get_pf_logging_level())
    # Prompt flow's OpenAI instrumentation sets None-valued token details on every call the server reports none for.
    logging.getLogger("opentelemetry.attributes").setLevel(logging.ERROR)
    configure_logging()
    destinations = configure_tracing(settings, [STEP_EVENTS])
    # Read by our exporter already. Prompt flow's app would make OTLP metric and log exporters of it, which fail
    # with opentelemetry >= 1.35 (a traceback a minute); the per-signal OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is ours.
    os.environ.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    # Likewise for Azure Monitor: Prompt flow's app would add its own metric and log exporters, each leaving an
    # offline-storage folder in the temporary directory; our span exporter has read the connection already.
    for name in ("APPLICATIONINSIGHTS_CONNECTION_STRING", "AML_APP_INSIGHTS_KEY", "APPINSIGHTS_INSTRUMENTATIONKEY"):
        os.environ.pop(name, None)
    log_startup(destinations, trace_ui_link(settings) if "promptflow_trace_ui" in destinations else None)


def observe(app: Flask) -> None:
    """A `request` event and request metrics per `POST /score`, and `GET /metrics`."""
    request_started.connect(_start_clock, app)
    request_finished.connect(_record_request, app)
    app.add_url_rule("/metrics", "metrics", _metrics)


def _start_clock(sender: Flask, **_) -> None:
    g.observed_since = time.perf_counter()


def _record_request(sender: Flask, response: Response, **_) -> None:
    """Once the answer is final (every after_request hook has run), so that a failure has its own code."""
    if request.path != "/score":
        return
    seconds = time.perf_counter() - g.observed_since
    status = response.status_code
    outcome: Outcome = "ok" if status < 400 else "rejected" if status < 500 and status != 429 else "failed"
    error = None if outcome == "ok" else _error(response)
    record_request(outcome, error and error["code"], seconds)
    log_request(active_trace_id(), outcome, status, round(seconds * 1000), error, request_totals())


def request_totals() -> dict:
    """What the current request's steps spent (LLM calls, retries, tokens, cost), taken from the step events once
    per request: the request event reports it, and a failed analysis is stored with it."""
    if "request_totals" not in g:
        g.request_totals = STEP_EVENTS.request_totals(active_trace_id())
    return g.request_totals


def _error(response: Response) -> dict:
    """The code and message of the API's error body."""
    body = response.get_json(silent=True)
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and error.get("code"):
        return {"code": str(error["code"]), "message": error.get("message")}
    return {"code": f"http_{response.status_code}", "message": None}


def _metrics() -> Response:
    body, content_type = exposition(request.headers.get("Accept"))
    return Response(body, content_type=content_type)
