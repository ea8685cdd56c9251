"""What a user says about one analysis: a thumbs up or down, an optional comment, and per company a corrected
direction."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from news_reader.extraction.schemas import StockPriceChange

COMMENT_MAX_CHARS = 2_000
MAX_CORRECTIONS = 20
# A client's key for one submission: printable ASCII without spaces (a UUID, say), at most as long as Stripe's.
IDEMPOTENCY_KEY_MAX_CHARS = 255
IDEMPOTENCY_KEY = re.compile(rf"[!-~]{{1,{IDEMPOTENCY_KEY_MAX_CHARS}}}")


class Correction(BaseModel):
    """The direction the user says is right for one company of the analysis."""

    model_config = ConfigDict(extra="forbid", strict=True)

    business: str = Field(min_length=1, max_length=200, description="The company, as the analysis names it.")
    stock_price_change: StockPriceChange


class FeedbackRequest(BaseModel):
    """Feedback on one analysis."""

    model_config = ConfigDict(extra="forbid", strict=True)

    rating: Literal["up", "down"]
    comment: str | None = Field(None, max_length=COMMENT_MAX_CHARS)
    corrections: list[Correction] = Field(default_factory=list, max_length=MAX_CORRECTIONS)

    @field_validator("comment")
    @classmethod
    def _blank_is_no_comment(cls, comment: str | None) -> str | None:
        return comment.strip() or None if comment is not None else None

    @field_validator("corrections")
    @classmethod
    def _one_per_company(cls, corrections: list[Correction]) -> list[Correction]:
        names = [c.business.casefold() for c in corrections]
        if len(set(names)) != len(names):
            raise ValueError("each company may be corrected once")
        return corrections


class FeedbackPost(FeedbackRequest):
    """The body of `POST /feedback`: the feedback and the trace id of the analysis it is about."""

    trace_id: str = Field(min_length=1, max_length=64)
