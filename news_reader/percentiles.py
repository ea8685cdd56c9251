"""Nearest-rank percentiles: the dashboard's and the evaluation's p50 and p95 are values that were measured."""

from __future__ import annotations

import math
from collections.abc import Iterable


def percentile(values: Iterable[float], p: float) -> float:
    """Nearest-rank percentile: the smallest value with at least p% of the values at or below it."""
    ordered = sorted(values)
    return float(ordered[max(math.ceil(p / 100 * len(ordered)) - 1, 0)])
