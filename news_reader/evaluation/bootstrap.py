"""How sure is a difference between two runs? A paired bootstrap over the articles both runs evaluated."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np

from news_reader.evaluation import directions
from news_reader.evaluation.records import LineResult

RESAMPLES = 2000
_NEEDS_CONFUSION = {"direction_macro_f1", "company_direction_f1"}
_Sums = dict[str, np.ndarray]  # per-line values, summed or averaged over each resample


def _ratio(part: np.ndarray, whole: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(whole > 0, part / np.where(whole > 0, whole, 1), np.nan)


# Each metric as a function of per-resample sums and means; micro-averaged where the run's metric is.
RESAMPLED: dict[str, Callable[[_Sums, _Sums], np.ndarray]] = {
    "business_accuracy": lambda s, m: m["business_correct"],
    "company_f1": lambda s, m: _ratio(2 * s["companies_tp"], 2 * s["companies_tp"] + s["companies_fp"]
                                      + s["companies_fn"]),
    "direction_accuracy": lambda s, m: _ratio(s["directions_correct"], s["directions_total"]),
    "direction_macro_f1": lambda s, m: directions.macro_f1(s),
    "company_direction_f1": lambda s, m: directions.company_direction_f1(s),
    "summary_rouge_l": lambda s, m: m["summary_rouge_l"],
    "prompt_tokens_per_article": lambda s, m: m["prompt_tokens"],
    "completion_tokens_per_article": lambda s, m: m["completion_tokens"],
    "wall_ms_mean": lambda s, m: m["wall_ms"],
    "step_latency_sum_ms_mean": lambda s, m: m["step_latency_sum_ms"],
}


def difference_interval(
    a: list[LineResult], b: list[LineResult], metric: str, level: float = 0.95, seed: int = 0
) -> tuple[float, float] | None:
    """The `level` interval of metric(b) - metric(a) over resampled articles; None without common articles."""
    by_line_a, by_line_b = {r.line: r for r in a}, {r.line: r for r in b}
    common = sorted(by_line_a.keys() & by_line_b.keys())
    if not common or metric not in RESAMPLED:
        return None
    if metric in _NEEDS_CONFUSION and any(r.confusion is None for r in [*a, *b] if r.directions_total):
        return None  # a record made before the confusion was kept
    picks = np.random.default_rng(seed).integers(0, len(common), size=(RESAMPLES, len(common)))
    values = [RESAMPLED[metric](*_resample([by[line] for line in common], picks)) for by in (by_line_a, by_line_b)]
    differences = values[1] - values[0]
    differences = differences[~np.isnan(differences)]
    if differences.size == 0:
        return None
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(differences, [tail, 100 - tail])
    return float(low), float(high)


def _resample(lines: list[LineResult], picks: np.ndarray) -> tuple[_Sums, _Sums]:
    """Sums and means of each field per resample; tokens and latency of unscored lines (None) are left out."""
    fields = [f for f in LineResult.model_fields if f not in ("line", "scored", "confusion", "entries")]
    table = {f: np.array([np.nan if getattr(r, f) is None else float(getattr(r, f)) for r in lines])[picks]
             for f in fields}
    table.update({key: np.array([float((r.confusion or {}).get(key, 0)) for r in lines])[picks]
                  for key in directions.CELLS})
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a resample of unscored lines only has no mean
        return ({f: np.nansum(v, axis=1) for f, v in table.items()},
                {f: np.nanmean(v, axis=1) for f, v in table.items()})
