"""Trace ids as the API, the logs and the store write them: 32 lowercase hex digits."""

from __future__ import annotations

import uuid

from opentelemetry import trace


def trace_id_hex(trace_id: int) -> str:
    return format(trace_id, "032x")


def active_trace_id() -> str | None:
    """The OpenTelemetry trace id of the current span, or None when nothing traces."""
    context = trace.get_current_span().get_span_context()
    return trace_id_hex(context.trace_id) if context.is_valid else None


def current_trace_id() -> str:
    """The current span's trace id, or a fresh id of the same form when nothing traces."""
    return active_trace_id() or uuid.uuid4().hex
