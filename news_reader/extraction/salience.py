"""Whether the news is about a company or names it in passing: the check each listed company passes before its
(costly) analysis. Measured on the dev split's listed companies (README, "Measured"): of those the model listed,
a quarter match a label; named in the headline or first paragraph, or at least three times, half do."""

from __future__ import annotations

import re
from typing import NamedTuple

_LEADING = {"the", "a", "an"}
# The StepError kind of a company left out by the check: a decision, reported so nothing is lost, not a failure.
PASSING_MENTION = "passing_mention"


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
