"""The domain schema. These models are what the model is asked for and what the code validates."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from news_reader.extraction.grounding import ground_quote

StockPriceChange = Literal["increase", "decrease", "none"]
QUOTE_MIN_WORDS, QUOTE_MAX_WORDS = 8, 25
# A list the model is held to: without it, the 1.5B model can repeat names until max_tokens runs out.
MAX_LISTED_BUSINESSES = 10


class StrictSchema(BaseModel):
    """Extra keys are errors, and every field is required: the shape OpenAI's strict structured outputs need."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _no_blank_strings(cls, value: object, info: ValidationInfo) -> object:
        """Tidy spacing, except in quotes: a quote stays exactly as the article has it, line breaks included."""
        if isinstance(value, str):
            value = value.strip() if info.field_name == "relevant_substring" else " ".join(value.split())
            if not value:
                raise ValueError("must not be empty")
        return value


class GeneralInfo(StrictSchema):
    title: str = Field(
        description="The article's headline copied exactly when the text starts with one; otherwise a short headline."
    )
    summary: str = Field(description="One sentence that summarises the whole article.")


class BusinessCategory(StrictSchema):
    is_about_business: bool = Field(
        description="true if the article is mainly about companies, markets, trade or the economy; "
        "false if it is mainly about something else, even when it mentions a company in passing."
    )


class BusinessesInvolved(StrictSchema):
    businesses: list[str] = Field(
        description="Names of the companies the news is substantively about, as written in the article. "
        "Not people, governments, regulators, countries or companies mentioned only in passing. Empty if none.",
        json_schema_extra={"maxItems": MAX_LISTED_BUSINESSES},
    )

    @field_validator("businesses", mode="after")
    @classmethod
    def _unique(cls, names: list[str]) -> list[str]:
        seen: dict[str, str] = {}
        for name in (" ".join(n.split()) for n in names):  # names, unlike quotes, may be tidied
            if name and name.casefold() not in seen:
                seen[name.casefold()] = name
        return list(seen.values())[:MAX_LISTED_BUSINESSES]  # a server that ignores maxItems


class BusinessSalience(StrictSchema):
    about_company: Literal["yes", "no"] = Field(
        description='"yes" if this news is about the company itself; "no" if it is not a company, or only '
        "mentioned in passing."
    )


class BusinessSpecificInfo(StrictSchema):
    # Evidence first: with constrained decoding, fields are generated in this order.
    business: str = Field(description="The company's name.")
    relevant_substring: str = Field(
        description=f"A quote of {QUOTE_MIN_WORDS} to {QUOTE_MAX_WORDS} consecutive words copied exactly from "
        "the article that shows how the news affects the company."
    )
    reason: str = Field(description="One short sentence explaining, from the quote, how the news affects the company.")
    stock_price_change: StockPriceChange = Field(
        description="How this news is likely to move the company's share price: increase, decrease or none."
    )

    @model_validator(mode="after")
    def _quote_is_from_article(self, info: ValidationInfo) -> BusinessSpecificInfo:
        """With the article in the validation context, replace the quote by the article's own words or fail."""
        article = (info.context or {}).get("article")
        if article is None:
            return self
        span = ground_quote(self.relevant_substring, article, QUOTE_MIN_WORDS, QUOTE_MAX_WORDS)
        if span is None:
            raise ValueError("relevant_substring is not in the article: copy the words exactly as they appear")
        self.relevant_substring = span
        return self


class BusinessInfo(BusinessSpecificInfo):
    """One business in the result: the model's analysis, and how sure the model is of its direction."""

    model_config = ConfigDict(extra="forbid")

    direction_probabilities: dict[StockPriceChange, float] | None = Field(
        None, description="The model's probability of each direction, read from its token log-probabilities; null "
        "where the LLM server returns none.")
    confidence: float | None = Field(
        None, ge=0, le=1, description="The probability of the predicted direction (stock_price_change); null where "
        "the LLM server returns no log-probabilities.")


class ArticleExtraction(BusinessCategory, GeneralInfo):
    """Everything in one answer: what the single-prompt baseline asks for."""

    business_info: list[BusinessSpecificInfo] = Field(
        description="One entry per company the news is substantively about; empty if it is not about business."
    )


class StepUsage(BaseModel):
    """Tokens and time one step spent, over all its LLM calls (retries included)."""

    step: str
    business: str | None = None
    calls: int = 0
    # Failed attempts (rate limits, server errors, timeouts) that were retried.
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    # None when the server does not report cached tokens (llama.cpp's server, OpenAI and Azure OpenAI do).
    cached_tokens: int | None = None
    # From sending the step's first call to its last answer, waits for a free server slot included: calls sent at
    # once to a server that answers one at a time each count the others' time.
    latency_ms: int = 0
    # When the first call was sent (UTC). With `latency_ms` it places the step on the article's timeline, from
    # which the evaluation takes the article's wall time.
    started_at: datetime | None = None


class StepError(BaseModel):
    """A step that failed without failing the article, e.g. the analysis of one business."""

    step: str
    business: str | None = None
    kind: str
    message: str


class ArticleInfo(ArticleExtraction):
    """The result for one article."""

    business_info: list[BusinessInfo] = Field(
        description="One entry per company the news is substantively about; empty if it is not about business."
    )
    trace_id: str
    usage: list[StepUsage]
    errors: list[StepError] = Field(default_factory=list)
