"""Make a model's quote verbatim: find the span of the article it stands for, or report that there is none."""

from __future__ import annotations

import re

from rapidfuzz import fuzz

# How close (0-100) a quote must be to an article span to be taken as that span. Measured on real outputs: quotes
# with a dropped or merged word score 80-90, invented sentences about the same companies 45-65.
MIN_SIMILARITY = 80.0
_TYPOGRAPHIC = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": "-"})
_STRIP = " \"'.,;:"


def ground_quote(quote: str, article: str, min_words: int, max_words: int) -> str | None:
    """The article's own words for `quote` (tolerating case, spacing, typography), fitted to the word limits.

    A span shorter than `min_words` is widened with the article's next (then previous) words, a longer one cut
    to its first `max_words`, so the result is always verbatim. None when the quote is not in the article.
    """
    needle = _normalise(quote).strip(_STRIP)
    if not needle:
        return None
    haystack = _normalise(article)
    start = haystack.find(needle)
    if start >= 0:
        end = start + len(needle)
    else:
        alignment = fuzz.partial_ratio_alignment(needle, haystack)
        if alignment is None or alignment.score < MIN_SIMILARITY:
            return None
        start, end = alignment.dest_start, alignment.dest_end
    words = [m.span() for m in re.finditer(r"\S+", article)]
    # A word belongs to the quote when the match covers at least half of it (alignments can start mid-word).
    inside = [i for i, (s, e) in enumerate(words) if 2 * (min(e, end) - max(s, start)) >= e - s]
    if not inside:
        return None
    first, last = inside[0], inside[-1]
    while last - first + 1 < min_words and (first > 0 or last < len(words) - 1):
        if last < len(words) - 1:
            last += 1
        else:
            first -= 1
    last = min(last, first + max_words - 1)
    return article[words[first][0] : words[last][1]].strip(_STRIP)


def _normalise(text: str) -> str:
    """Lower case, plain quotes and spaces, with the same length as the input so offsets map back to it."""
    text = re.sub(r"\s", " ", text.translate(_TYPOGRAPHIC))
    # str.lower() can change length ("İ" becomes two characters); keep such characters as they are.
    return "".join(low if len(low := ch.lower()) == 1 else ch for ch in text)
