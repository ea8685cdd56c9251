"""The dashboard as one PNG: requests and failures, latency, tokens and cost, and feedback, per hour or day."""

from __future__ import annotations

import io
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # no display: render to memory

import matplotlib.pyplot as plt  # noqa: E402

from news_reader.store.records import TimeseriesRow  # noqa: E402


def render_dashboard(rows: Sequence[TimeseriesRow], bucket: str) -> bytes:
    """Four panels over the same time axis; an empty history gives a figure that says so."""
    figure, axes = plt.subplots(4, 1, figsize=(10, 11), sharex=True, layout="constrained")
    try:
        if not rows:
            figure.text(0.5, 0.5, "No analyses yet", ha="center", va="center", fontsize=16)
            for ax in axes:
                ax.set_axis_off()
        else:
            _draw(axes, rows, bucket)
        out = io.BytesIO()
        figure.savefig(out, format="png", dpi=90)
        return out.getvalue()
    finally:
        plt.close(figure)


def _draw(axes, rows: Sequence[TimeseriesRow], bucket: str) -> None:
    at = [r.bucket for r in rows]
    width = (1 / 24 if bucket == "hour" else 1) * 0.8
    requests, latency, tokens, feedback = axes

    failures = [sum(r.failures.values()) for r in rows]
    requests.bar(at, [r.requests - f for r, f in zip(rows, failures, strict=True)], width, label="answered")
    requests.bar(at, failures, width, bottom=[r.requests - f for r, f in zip(rows, failures, strict=True)],
                 color="tab:red", label="failed")
    requests.set_title(f"Requests per {bucket}")
    requests.legend(loc="upper left")

    latency.plot(at, [_seconds(r.latency_ms_p50) for r in rows], marker="o", label="p50")
    latency.plot(at, [_seconds(r.latency_ms_p95) for r in rows], marker="o", label="p95")
    latency.set_title("Latency (s)")
    latency.legend(loc="upper left")

    tokens.bar(at, [r.prompt_tokens for r in rows], width, label="prompt")
    tokens.bar(at, [r.completion_tokens for r in rows], width, bottom=[r.prompt_tokens for r in rows],
               label="completion")
    tokens.set_title("Tokens and estimated cost")
    tokens.legend(loc="upper left")
    cost = tokens.twinx()
    cost.plot(at, [r.cost_usd for r in rows], color="black", marker="s", label="cost (USD)")
    cost.set_ylabel("USD")

    feedback.bar(at, [r.feedback_up for r in rows], width, color="tab:green", label="up")
    feedback.bar(at, [-r.feedback_down for r in rows], width, color="tab:red", label="down")
    feedback.axhline(0, color="grey", linewidth=0.5)
    feedback.set_title("Feedback (up above, down below the line)")
    feedback.legend(loc="upper left")


def _seconds(ms: float | None) -> float | None:
    return None if ms is None else ms / 1000
