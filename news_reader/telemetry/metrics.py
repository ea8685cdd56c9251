"""Prometheus metrics: scoring requests by outcome, failures by error code, latency, LLM tokens and estimated cost,
analyses answered but not stored, and user feedback. They live in prometheus-client's default registry, with its
process metrics."""

from __future__ import annotations

import threading
from functools import cache
from pathlib import Path
from typing import Literal, get_args

import yaml
from prometheus_client import REGISTRY, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.exposition import choose_encoder
from pydantic import BaseModel, ConfigDict, NonNegativeFloat, TypeAdapter

from news_reader.settings import PRICES_FILE

disable_created_metrics()  # a `_created` series per counter would double the output
Outcome = Literal["ok", "rejected", "failed"]
Rating = Literal["up", "down"]
# Why an answered analysis was not stored: the database failed (after a retry), refused a value (a lone surrogate,
# NUL on PostgreSQL), already holds the trace id, or something else went wrong.
NotStoredReason = Literal["database_unavailable", "unstorable_data", "duplicate_trace_id", "unexpected_error"]

REQUESTS = Counter("news_reader_requests", "Scoring requests, by outcome: ok, rejected (4xx before the flow runs) "
                   "or failed (the flow or the LLM failed)", ["outcome"])
FAILURES = Counter("news_reader_request_failures", "Scoring requests not answered with a result, by error code",
                   ["code"])
LATENCY = Histogram("news_reader_request_duration_seconds", "Time to answer a scoring request", ["outcome"],
                    buckets=(0.1, 0.5, 1, 2.5, 5, 10, 20, 30, 45, 60, 90, 120, 180))
STEP_FAILURES = Counter("news_reader_step_failures", "Failed steps, by step and error kind; a failed business "
                        "analysis leaves its request answered", ["step", "error"])
LLM_CALLS = Counter("news_reader_llm_calls", "LLM calls, by model and step", ["model", "step"])
LLM_RETRIES = Counter("news_reader_llm_retries", "Retried LLM attempts, by model and step", ["model", "step"])
LLM_TOKENS = Counter("news_reader_llm_tokens", "LLM tokens, by model and type: input, cached_input (a part of input) "
                     "and output", ["model", "type"])
LLM_COST = Counter("news_reader_llm_cost_usd", "Estimated LLM cost in US dollars, from the price table", ["model"])
FEEDBACK = Counter("news_reader_feedback", "User ratings of results", ["rating"])
NOT_STORED = Counter("news_reader_analyses_not_stored", "Analyses answered but not stored, so that feedback on "
                     "them is refused (the answer says stored: false), by reason", ["reason"])
APPROVAL = Gauge("news_reader_feedback_approval_ratio", "Share of thumbs-up among the ratings since start "
                 "(NaN before the first)")

for outcome in get_args(Outcome):
    REQUESTS.labels(outcome)
for rating in get_args(Rating):
    FEEDBACK.labels(rating)
for reason in get_args(NotStoredReason):
    NOT_STORED.labels(reason)
APPROVAL.set(float("nan"))
_ratings = dict.fromkeys(get_args(Rating), 0)
_ratings_lock = threading.Lock()
# The table costs are estimated from: the shipped one until the entry point names its own (use_price_table).
_prices_file = PRICES_FILE


class Price(BaseModel):
    """US dollars per million tokens; cached input costs `input` unless priced."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input: NonNegativeFloat
    output: NonNegativeFloat
    cached_input: NonNegativeFloat | None = None


@cache
def price_table(path: Path) -> dict[str, Price]:
    """The prices by model name, read once per file."""
    return TypeAdapter(dict[str, Price]).validate_python(yaml.safe_load(path.read_text(encoding="utf-8")) or {})


def use_price_table(path: Path) -> None:
    """Estimate costs from the table at `path` from now on. The entry point passes its TelemetrySettings.prices_file
    (NEWS_READER_PRICES_FILE), read once at start."""
    global _prices_file
    _prices_file = path


def estimate_cost(model: str, prompt_tokens: int, completion_tokens: int, cached_tokens: int | None = None
                  ) -> float | None:
    """US dollars for these tokens at the price table's rates (see use_price_table); None for an unpriced model.
    Cached tokens are part of the prompt tokens."""
    price = price_table(_prices_file).get(model)
    if price is None:
        return None
    cached = cached_tokens or 0
    cached_rate = price.input if price.cached_input is None else price.cached_input
    dollars = (prompt_tokens - cached) * price.input + cached * cached_rate + completion_tokens * price.output
    return dollars / 1_000_000


def record_request(outcome: Outcome, code: str | None, seconds: float) -> None:
    REQUESTS.labels(outcome).inc()
    LATENCY.labels(outcome).observe(seconds)
    if code is not None:
        FAILURES.labels(code).inc()


def record_step(model: str, step: str, error: str | None, calls: int, retries: int, prompt_tokens: int,
                completion_tokens: int, cached_tokens: int | None) -> float | None:
    """Count one step's failure, if it failed, and its LLM use; the estimated cost (None for an unpriced model)."""
    if error is not None:
        STEP_FAILURES.labels(step, error).inc()
    LLM_CALLS.labels(model, step).inc(calls)
    LLM_RETRIES.labels(model, step).inc(retries)
    LLM_TOKENS.labels(model, "input").inc(prompt_tokens)
    LLM_TOKENS.labels(model, "output").inc(completion_tokens)
    if cached_tokens is not None:
        LLM_TOKENS.labels(model, "cached_input").inc(cached_tokens)
    cost = estimate_cost(model, prompt_tokens, completion_tokens, cached_tokens)
    if cost is not None:
        LLM_COST.labels(model).inc(cost)
    return cost


def record_feedback(rating: Rating) -> None:
    """Count a user's thumbs up or down, and update the approval ratio."""
    if rating not in _ratings:
        raise ValueError(f"rating must be one of {', '.join(_ratings)}, not {rating!r}")
    FEEDBACK.labels(rating).inc()
    with _ratings_lock:
        _ratings[rating] += 1
        APPROVAL.set(_ratings["up"] / sum(_ratings.values()))


def record_not_stored(reason: NotStoredReason) -> None:
    """Count an analysis that was answered but could not be stored."""
    NOT_STORED.labels(reason).inc()


def exposition(accept: str | None = None) -> tuple[bytes, str]:
    """Every metric, in the format a scraper's Accept header asks for (Prometheus text 0.0.4 by default), and its
    content type."""
    encode, content_type = choose_encoder(accept or "")
    return encode(REGISTRY), content_type
