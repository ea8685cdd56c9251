"""What the store hands back: analyses with their feedback, dashboard rows and export summaries."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from news_reader.store.feedback import Correction

EXPORT_RULES = """Rules, applied to each analysis's latest feedback:
- thumbs up: the model's answer is the label;
- corrections override the direction of the companies they name (with either rating);
- thumbs down without corrections says the answer is wrong but not what is right: left out;
- a failed analysis has no answer to label: left out.
Title and summary references are the model's; companies get no aliases."""


class StoredFeedback(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    trace_id: str
    rating: Literal["up", "down"]
    comment: str | None
    corrections: list[Correction]
    variant: str
    model: str
    created_at: datetime


class StoredAnalysis(BaseModel):
    """One request that reached the flow. `result` is the answer (ArticleInfo) when `status` is ok; `error_kind`
    says what failed otherwise."""

    model_config = ConfigDict(from_attributes=True)

    trace_id: str
    created_at: datetime
    article: str
    result: dict | None
    variant: str
    model: str
    status: Literal["ok", "error"]
    error_kind: str | None
    latency_ms: int
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int | None
    cost_usd: float | None
    feedback: list[StoredFeedback]


class TimeseriesRow(BaseModel):
    """One hour or day: requests and their failures by kind, latency, tokens, cost, and feedback given."""

    bucket: datetime
    requests: int = 0
    failures: dict[str, int] = Field(default_factory=dict)
    latency_ms_p50: float | None = None
    latency_ms_p95: float | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    # Sum over the analyses whose cost is known; None when none is.
    cost_usd: float | None = None
    feedback_up: int = 0
    feedback_down: int = 0


class ExportSummary(BaseModel):
    """What `export_dataset` wrote and what it left out."""

    path: Path
    examples: int
    left_out_thumbs_down_without_corrections: int
    left_out_failed_analyses: int
