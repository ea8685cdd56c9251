"""Make a model's quote verbatim: find the span of the article it stands for, or report that there is none."""

from __future__ import annotations

import re

from rapidfuzz import fuzz

# How close (0-100) a quote must be to an article span to be taken as that span.
MIN_SIMILARITY = 90.0
_TYPOGRAPHIC = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": "-"})


def ground_quote(quote: str, article: str) -> str | None:
    """Return the article's own text for `quote`, tolerating case, spacing and typographic quotes; else None."""
    needle = _normalise(quote).strip(" \"'.,;:")
    if not needle:
        return None
    haystack = _normalise(article)
    start = haystack.lower().find(needle.lower())
    if start >= 0:
        return _word_span(article, haystack, start, start + len(needle))
    alignment = fuzz.partial_ratio_alignment(needle.lower(), haystack.lower())
    if alignment is None or alignment.score < MIN_SIMILARITY:
        return None
    return _word_span(article, haystack, alignment.dest_start, alignment.dest_end)


def _normalise(text: str) -> str:
    """Same length as the input, so offsets map back to the original text."""
    return re.sub(r"\s", " ", text.translate(_TYPOGRAPHIC))


def _word_span(article: str, haystack: str, start: int, end: int) -> str:
    """Widen [start, end) to whole words and return that part of the original article."""
    while start > 0 and not haystack[start - 1].isspace():
        start -= 1
    while end < len(haystack) and not haystack[end].isspace():
        end += 1
    return article[start:end].strip().strip("\"'").strip()
