"""How far the direction's confidence can be trusted: reliability bins, expected calibration error, and what keeping
only the entries above a confidence threshold does to company+direction precision and recall."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pydantic import BaseModel

BINS = 10
THRESHOLDS = (0.0, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


class Entry(BaseModel):
    """One company the flow listed: its direction's confidence, whether it matches a labelled company, and whether
    its direction is then the labelled one."""

    confidence: float | None
    matched: bool
    right: bool


class Bin(BaseModel):
    lower: float
    upper: float
    count: int
    mean_confidence: float
    accuracy: float


class ThresholdRow(BaseModel):
    threshold: float
    kept: int
    precision: float | None
    recall: float | None
    f1: float | None


def reliability(entries: Iterable[Entry], bins: int = BINS) -> list[Bin]:
    """The matched entries with a confidence, in equal-width confidence bins (empty bins left out)."""
    rated = [e for e in entries if e.matched and e.confidence is not None]
    out = []
    for i in range(bins):
        lower, upper = i / bins, (i + 1) / bins
        inside = [e for e in rated if lower <= e.confidence < upper or (i == bins - 1 and e.confidence == 1.0)]
        if inside:
            out.append(Bin(lower=lower, upper=upper, count=len(inside),
                           mean_confidence=sum(e.confidence for e in inside) / len(inside),
                           accuracy=sum(e.right for e in inside) / len(inside)))
    return out


def expected_calibration_error(entries: Iterable[Entry], bins: int = BINS) -> float | None:
    """The count-weighted mean gap between confidence and accuracy over the bins; None with nothing rated."""
    table = reliability(entries, bins)
    total = sum(b.count for b in table)
    return sum(b.count * abs(b.accuracy - b.mean_confidence) for b in table) / total if total else None


def threshold_table(entries: Sequence[Entry], labelled: int, thresholds: Sequence[float] = THRESHOLDS
                    ) -> list[ThresholdRow]:
    """Company+direction precision and recall when only entries whose confidence is at least the threshold are
    kept; an entry without a confidence is kept at threshold 0 only. `labelled` counts the labelled companies."""
    rows = []
    for threshold in thresholds:
        kept = [e for e in entries if threshold == 0 or (e.confidence is not None and e.confidence >= threshold)]
        right = sum(e.right for e in kept)
        precision = right / len(kept) if kept else None
        recall = right / labelled if labelled else None
        f1 = 2 * right / (len(kept) + labelled) if kept or labelled else None
        rows.append(ThresholdRow(threshold=threshold, kept=len(kept), precision=precision, recall=recall, f1=f1))
    return rows
