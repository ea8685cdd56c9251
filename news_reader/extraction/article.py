"""Turn raw input (text or bytes) into a clean article, or refuse it with a clear reason."""

from __future__ import annotations

import re
import unicodedata

from news_reader.extraction.errors import ArticleTooLong, InvalidArticle

# Share of control or unassigned characters above which input is treated as binary, not text.
_MAX_ODD_CHAR_SHARE = 0.01
# A JSON body can carry half of a UTF-16 pair (`"\ud800"`): text that cannot be encoded, stored or sent.
_SURROGATE = re.compile("[\ud800-\udfff]")
HEADLINE_MAX_WORDS = 20
# A sentence ends at ., ! or ? (and any closing quote or bracket) before a space and a capital or an opening quote.
_SENTENCE_END = re.compile(r"[.!?][\"'’”)]*(?=\s+[\"'‘“(]?[A-Z0-9£$€])")


def decode(data: bytes) -> str:
    """UTF-8 (with or without BOM), else Windows-1252, the two encodings news text arrives in."""
    if b"\x00" in data:
        raise InvalidArticle("input is binary, not text (it contains NUL bytes)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            return data.decode("cp1252")
        except UnicodeDecodeError as err:
            raise InvalidArticle("input is neither UTF-8 nor Windows-1252 text") from err


def prepare_article(raw: str | bytes, max_chars: int) -> str:
    """Normalise line breaks and spacing; refuse empty, binary-looking, not encodable or over-long input."""
    text = decode(raw) if isinstance(raw, bytes) else raw
    if not isinstance(text, str):
        raise InvalidArticle(f"article must be text, not {type(text).__name__}")
    if surrogate := _SURROGATE.search(text):
        raise InvalidArticle(f"article is not valid Unicode: it has a lone surrogate (U+{ord(surrogate[0]):04X}) "
                             f"at character {surrogate.start() + 1:,}")
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    odd = sum(1 for ch in text if _is_odd(ch))
    if text and odd / len(text) > _MAX_ODD_CHAR_SHARE:
        raise InvalidArticle(f"input looks binary: {odd} of {len(text)} characters are control characters")
    text = "".join(ch for ch in text if not _is_odd(ch))
    text = re.sub(r"[ \t\f\v]+", " ", text)
    text = re.sub(r" *\n *", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text).strip()
    # The prompts fence the article with <article> tags; an article must not close the fence itself.
    text = re.sub(r"<(/?)(article)", "\u2039\\1\\2", text, flags=re.IGNORECASE)
    if not text:
        raise InvalidArticle("article is empty")
    if len(text) > max_chars:
        raise ArticleTooLong(
            f"article has {len(text):,} characters; the limit is {max_chars:,} (NEWS_READER_MAX_ARTICLE_CHARS)"
        )
    return text


def headline(article: str) -> str | None:
    """The first line when it reads as a headline: a short line of its own, then a blank line, then the text."""
    first, blank, rest = article.partition("\n\n")
    if not blank or "\n" in first or not rest.strip():
        return None
    if not 1 <= len(first.split()) <= HEADLINE_MAX_WORDS or first[-1] in ".,;:":
        return None
    return first


def first_sentence(text: str) -> str | None:
    """The text's first sentence, when another begins after it (so the first one is finished)."""
    end = _SENTENCE_END.search(text)
    return text[: end.end()] if end else None


def _is_odd(ch: str) -> bool:
    return ch not in "\n\t" and unicodedata.category(ch) in {"Cc", "Cn", "Co"}
