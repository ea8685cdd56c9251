"""Direction metrics from the confusion of the matched companies' directions, and what trivial answers score.

Each function takes the counts of an evaluation (a confusion cell, `companies_fp`, `companies_fn`) as numbers or as
numpy arrays of them, one per bootstrap resample, and answers in kind; NaN where there is nothing to count.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping

import numpy as np

from news_reader.extraction.direction import DIRECTIONS


def cell(expected: str, predicted: str) -> str:
    """A confusion cell's key: `none>increase` counts companies labelled none that the flow said would increase."""
    return f"{expected}>{predicted}"


CELLS = tuple(cell(e, p) for e in DIRECTIONS for p in DIRECTIONS)
Counts = Mapping[str, float | np.ndarray]


def confusion(pairs: Iterable[tuple[str, str]]) -> dict[str, int]:
    """The non-zero cells of (expected, predicted) pairs, in CELLS order."""
    pairs = list(pairs)
    counts = {key: sum(cell(e, p) == key for e, p in pairs) for key in CELLS}
    return {key: n for key, n in counts.items() if n}


def _get(counts: Counts, key: str):
    return np.asarray(counts.get(key, 0), dtype=float)


def _ratio(part, whole):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(whole > 0, part / np.where(whole > 0, whole, 1), np.nan)


def _expected(counts: Counts, direction: str):
    return sum(_get(counts, cell(direction, p)) for p in DIRECTIONS)


def _predicted(counts: Counts, direction: str):
    return sum(_get(counts, cell(e, direction)) for e in DIRECTIONS)


def matched(counts: Counts):
    return sum(_get(counts, key) for key in CELLS)


def accuracy(counts: Counts):
    return _ratio(sum(_get(counts, cell(d, d)) for d in DIRECTIONS), matched(counts))


def macro_f1(counts: Counts):
    """The mean of each direction's F1, over the directions that are labelled or predicted at all."""
    scores = [_ratio(2 * _get(counts, cell(d, d)), _expected(counts, d) + _predicted(counts, d)) for d in DIRECTIONS]
    stacked = np.stack(np.broadcast_arrays(*scores))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # nothing matched: no direction to average
        return np.nanmean(stacked, axis=0)


def company_direction_f1(counts: Counts):
    """F1 where a prediction counts only if its company matches a label and its direction is the labelled one: a
    wrong direction is both a false positive and a false negative."""
    right = sum(_get(counts, cell(d, d)) for d in DIRECTIONS)
    wrong = matched(counts) - right
    fp, fn = _get(counts, "companies_fp") + wrong, _get(counts, "companies_fn") + wrong
    return _ratio(2 * right, 2 * right + fp + fn)


def always_none(counts: Counts) -> dict:
    """The counts had the flow answered `none` for every company it matched: the trivial answer to beat."""
    return {**counts, **{cell(e, p): _expected(counts, e) if p == "none" else 0.0
                         for e in DIRECTIONS for p in DIRECTIONS}}
