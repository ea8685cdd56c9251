"""Alias-aware matching of predicted company names to the labelled companies of an article."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# Words that do not tell companies apart: legal forms and articles ("Yukos Oil Company" is "Yukos Oil").
_NOISE = {"the", "plc", "inc", "corp", "corporation", "ltd", "limited", "co", "company", "sa", "ag", "nv", "llc"}
_MIN_PARTIAL_CHARS = 3


@dataclass(frozen=True)
class Match:
    predicted: str
    label: dict  # the labelled company: name, aliases, stock_price_change


def name_tokens(name: str) -> tuple[str, ...]:
    """`Nestlé S.A.'s` -> ('nestle',): accents, possessives, punctuation and legal forms removed."""
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().casefold()
    text = re.sub(r"['’]s\b", "", text.replace("&", " and "))
    text = re.sub(r"(?<=\b\w)\.(?=\w\b)", "", text)  # S.A. -> SA
    tokens = tuple(t for t in re.findall(r"[a-z0-9]+", text) if t not in _NOISE)
    return tokens


def _names(label: dict) -> list[tuple[str, ...]]:
    return [t for t in (name_tokens(n) for n in [label["name"], *label.get("aliases", [])]) if t]


def _exact(predicted: tuple[str, ...], label: dict) -> bool:
    """Same words, ignoring spaces between them: `TimeWarner` is `Time Warner`."""
    return any("".join(predicted) == "".join(name) for name in _names(label))


def _partial(predicted: tuple[str, ...], label: dict) -> bool:
    """One name starts the other, in whole words: `Yukos` and `Yukos Oil`, `BMW` and `BMW Group`; but not
    `Ireland` and `Bank of Ireland`, nor `Motors` and `General Motors`."""
    for name in _names(label):
        short, long = sorted((predicted, name), key=len)
        if len("".join(short)) >= _MIN_PARTIAL_CHARS and long[: len(short)] == short:
            return True
    return False


def match_companies(predicted: list[str], labels: list[dict]) -> tuple[list[Match], list[str], list[dict]]:
    """One-to-one matches (exact names first, then partial), unmatched predictions, unmatched labels. A name
    given twice is matched once; the repeat counts as unmatched."""
    remaining_predicted = list(predicted)
    remaining_labels = list(labels)
    matches: list[Match] = []
    for rule in (_exact, _partial):
        for name in list(remaining_predicted):
            tokens = name_tokens(name)
            label = next((lab for lab in remaining_labels if tokens and rule(tokens, lab)), None)
            if label is not None:
                matches.append(Match(name, label))
                remaining_predicted.remove(name)
                remaining_labels.remove(label)
    return matches, remaining_predicted, remaining_labels
