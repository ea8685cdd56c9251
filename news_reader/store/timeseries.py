"""Per hour or per day: what the dashboard plots."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from news_reader.percentiles import percentile
from news_reader.store.records import TimeseriesRow
from news_reader.store.tables import Analysis, Feedback

Bucket = Literal["hour", "day"]
_STEP = {"hour": timedelta(hours=1), "day": timedelta(days=1)}


def timeseries(session: Session, bucket: Bucket, since: datetime | None) -> list[TimeseriesRow]:
    if bucket not in _STEP:
        raise ValueError(f"bucket is hour or day, not {bucket!r}")
    analyses = select(Analysis.created_at, Analysis.error_kind, Analysis.latency_ms, Analysis.prompt_tokens,
                      Analysis.completion_tokens, Analysis.cost_usd)
    feedback = select(Feedback.created_at, Feedback.rating)
    if since is not None:
        analyses = analyses.where(Analysis.created_at >= since)
        feedback = feedback.where(Feedback.created_at >= since)
    rows: dict[datetime, TimeseriesRow] = {}
    latencies: dict[datetime, list[int]] = {}

    def row(at: datetime) -> TimeseriesRow:
        start = bucket_start(at, bucket)
        return rows.setdefault(start, TimeseriesRow(bucket=start))

    for at, error_kind, latency_ms, prompt_tokens, completion_tokens, cost_usd in session.execute(analyses):
        current = row(at)
        current.requests += 1
        if error_kind is not None:
            current.failures[error_kind] = current.failures.get(error_kind, 0) + 1
        latencies.setdefault(current.bucket, []).append(latency_ms)
        current.prompt_tokens += prompt_tokens
        current.completion_tokens += completion_tokens
        if cost_usd is not None:
            current.cost_usd = (current.cost_usd or 0.0) + cost_usd
    for at, rating in session.execute(feedback):
        current = row(at)
        if rating == "up":
            current.feedback_up += 1
        else:
            current.feedback_down += 1
    for start, values in latencies.items():
        rows[start].latency_ms_p50 = percentile(values, 50)
        rows[start].latency_ms_p95 = percentile(values, 95)
    return [rows.get(start) or TimeseriesRow(bucket=start) for start in _span(rows, bucket)]


def bucket_start(at: datetime, bucket: Bucket) -> datetime:
    at = at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return at.replace(hour=0) if bucket == "day" else at


def _span(rows: dict[datetime, TimeseriesRow], bucket: Bucket) -> list[datetime]:
    if not rows:
        return []
    first, last, step = min(rows), max(rows), _STEP[bucket]
    return [first + i * step for i in range(int((last - first) / step) + 1)]
