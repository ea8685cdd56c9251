"""Whether the news is about a company or names it in passing: the checks each listed company passes before its
(costly) analysis. Measured on the dev split's listed companies (README, "Measured"): of those the model listed, a
quarter match a label; named in the headline or first paragraph, or at least three times, half do; of those, the
ones the model then says the news is about (asked one at a time, P(yes) at least 0.6), four in five do."""

from __future__ import annotations

import re
from typing import NamedTuple

from news_reader.extraction.direction import value_probabilities
from news_reader.extraction.llm import LLMClient
from news_reader.extraction.schemas import StepUsage
from news_reader.extraction.steps import STEPS

_LEADING = {"the", "a", "an"}
# The StepError kind of a company left out by the check: a decision, reported so nothing is lost, not a failure.
PASSING_MENTION = "passing_mention"
# The kind of a company the model says the news is not about (NEWS_READER_MIN_ABOUT_PROBABILITY).
NOT_ABOUT = "not_about_company"


def is_prominent(article: str, name: str, min_mentions: int) -> bool:
    """The company's name (its first distinctive word) is in the headline or the first paragraph, or in the article
    at least `min_mentions` times; `min_mentions` 0 keeps every company."""
    if min_mentions <= 0:
        return True
    words = [w for w in re.findall(r"\w[\w&'.-]*", name) if w.casefold() not in _LEADING]
    if not words:
        return False
    word = re.compile(rf"(?<!\w){re.escape(words[0])}(?!\w)", re.IGNORECASE)
    paragraphs = [p for p in article.split("\n") if p.strip()]
    if any(word.search(p) for p in paragraphs[:2]):
        return True
    return len(word.findall(article)) >= min_mentions


class Selection(NamedTuple):
    """Which listed businesses are analysed, in the order listed, and why the others are not."""

    analysed: list[str]
    passing: list[str]  # named only in passing
    over_cap: list[str]  # prominent, but more than max_businesses


def select(article: str, names: list[str], min_mentions: int, max_businesses: int) -> Selection:
    """The prominent names, at most `max_businesses` of them; the rest, by reason."""
    prominent = [name for name in names if is_prominent(article, name, min_mentions)]
    passing = [name for name in names if name not in prominent]
    return Selection(prominent[:max_businesses], passing, prominent[max_businesses:])


def about_probability(client: LLMClient, article: str, name: str) -> tuple[float | None, StepUsage]:
    """The model's probability that the news is about company `name` (the business_salience step's "yes"), from
    its answer's log-probabilities; None where the server returns none."""
    step = STEPS["business_salience"]
    top = client.settings.top_logprobs or None
    _, usage, tokens = step.run_with_logprobs(client, step.render(article, business=name), article, top)
    probabilities = value_probabilities(tokens, "about_company", ("yes", "no"))
    return (probabilities["yes"] if probabilities else None), usage
