"""LLM-as-judge of the `reason`: is it supported by the article, and does it agree with the predicted direction?

The judge is not shown the prediction: it says which way the reason points, and the code compares that with the
predicted direction. Small models judge "which way does this argue" far more reliably than "is this consistent".
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field

from news_reader.evaluation.scoring import CompanyMatch, JudgedReason
from news_reader.extraction.article import headline
from news_reader.extraction.errors import NewsReaderError
from news_reader.extraction.llm import LLMClient
from news_reader.extraction.prompting import output_format, render_file
from news_reader.extraction.schemas import StockPriceChange, StrictSchema

JUDGE_MAX_TOKENS = 40
JUDGE_PROMPT = Path(__file__).parent / "prompts" / "judge_reason.jinja2"


class ReasonVerdict(StrictSchema):
    # Direction first: measured on the local model, asking for `supported` first made it answer false throughout.
    implied_direction: StockPriceChange = Field(description="The share-price move the reason argues for.")
    supported: bool = Field(description="true if the excerpt states the facts the reason relies on.")


def excerpt(article: str, quote: str) -> str:
    """The headline and the paragraphs the quote comes from: enough context to check a reason, at a fraction of
    the article's tokens."""
    start = article.find(quote) if quote else -1
    if start < 0:
        return article
    breaks = list(re.finditer(r"\n\s*\n", article))
    begin = max((b.end() for b in breaks if b.end() <= start), default=0)
    end = min((b.start() for b in breaks if b.start() >= start + len(quote)), default=len(article))
    title = headline(article)
    body = article[begin:end].strip()
    return f"{title}\n\n{body}" if title and begin > 0 else body


def judge_reasons(client: LLMClient, article: str, matches: list[CompanyMatch]) -> list[JudgedReason]:
    """One verdict per matched company; a failed judge call is recorded as such, not raised."""
    results = []
    answer_format = output_format(ReasonVerdict)
    for match in matches:
        prompt = render_file(
            JUDGE_PROMPT, excerpt=excerpt(article, match.quote), business=match.business, reason=match.reason,
            output_format=answer_format,
        )
        correct = match.predicted == match.expected
        try:
            verdict, _ = client.extract("judge_reason", prompt, ReasonVerdict, JUDGE_MAX_TOKENS)
        except NewsReaderError as error:
            results.append(JudgedReason(business=match.business, passed=None, direction_correct=correct,
                                        error=f"{error.kind}: {error}"))
            continue
        consistent = verdict.implied_direction == match.predicted
        results.append(JudgedReason(
            business=match.business, passed=verdict.supported and consistent, supported=verdict.supported,
            consistent=consistent, direction_correct=correct,
        ))
    return results
