"""The probability of each value of an answer's field, read from the log-probabilities of the answer's tokens: the
share-price direction of an analysis, the yes or no of a salience check, the true or false of a classification.

The first token of the field's value decides it (`de` can only start `decrease`). The server returns, at that
token, the model's own most likely alternatives before structured output constrained them; the alternatives that
start one of the values, renormalised, are the model's belief in each value.
"""

from __future__ import annotations

import math
import re
import typing

from openai.types.chat import ChatCompletionTokenLogprob

from news_reader.extraction.schemas import StockPriceChange

DIRECTIONS: tuple[str, ...] = typing.get_args(StockPriceChange)


def direction_probabilities(tokens: list[ChatCompletionTokenLogprob]) -> dict[str, float] | None:
    """Each direction's probability from an analysis answer's tokens (see `value_probabilities`)."""
    return value_probabilities(tokens, "stock_price_change", DIRECTIONS)


def value_probabilities(
    tokens: list[ChatCompletionTokenLogprob], field: str, values: tuple[str, ...]
) -> dict[str, float] | None:
    """The probability of each of the field's `values` (strings, or literals such as `true`) from the answer's tokens;
    None when the tokens do not show the field's value, or none of the alternatives at it starts a value (no
    log-probabilities, or too few)."""
    spans, offset = [], 0
    for token in tokens:
        raw = bytes(token.bytes) if token.bytes is not None else token.token.encode()
        spans.append((offset, raw, token))
        offset += len(raw)
    found = re.search(rb'"' + re.escape(field.encode()) + rb'"\s*:\s*("?)', b"".join(raw for _, raw, _ in spans))
    if found is None:
        return None
    closing = found[1].decode()  # a string's value ends with its quote
    start = found.end()
    at = next(((begin, raw, token) for begin, raw, token in spans if begin <= start < begin + len(raw)), None)
    if at is None:
        return None
    begin, raw, token = at
    before = raw[: start - begin]  # what the token holds before the value, e.g. ` "` when the quote is merged in
    mass = dict.fromkeys(values, 0.0)
    alternatives = {a.token: a for a in token.top_logprobs} | {token.token: token}
    for alternative in alternatives.values():
        text = bytes(alternative.bytes) if alternative.bytes is not None else alternative.token.encode()
        if not text.startswith(before):
            continue
        value = _started(text[len(before):].decode("utf-8", "replace"), values, closing)
        if value is not None:
            mass[value] += math.exp(alternative.logprob)
    total = sum(mass.values())
    return {d: p / total for d, p in mass.items()} if total > 0 else None


def _started(text: str, values: tuple[str, ...], closing: str) -> str | None:
    """The one value (with its `closing` quote, if any) that `text` begins, or that begins with `text`."""
    if not text:
        return None
    matching = [d for d in values if f"{d}{closing}".startswith(text) or text.startswith(f"{d}{closing}")]
    return matching[0] if len(matching) == 1 else None
