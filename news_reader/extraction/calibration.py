"""The direction's probabilities, calibrated: temperature scaling with one bias per direction,
p' ∝ exp(log p / temperature + bias), fitted by maximum likelihood on the dev split (`evaluations/fit_calibration.py`).
The most probable calibrated direction is the one the product answers, and its probability is the confidence."""

from __future__ import annotations

import math
from functools import cache
from pathlib import Path

from pydantic import BaseModel, Field

from news_reader.extraction.schemas import StockPriceChange


class Calibration(BaseModel):
    temperature: float = Field(gt=0)
    bias: dict[StockPriceChange, float]
    fitted_on: str = Field(description="The run and dataset it was fitted on, and what it scored there.")

    def apply(self, probabilities: dict[str, float]) -> dict[str, float]:
        logits = {d: math.log(max(p, 1e-9)) / self.temperature + self.bias.get(d, 0.0)
                  for d, p in probabilities.items()}
        top = max(logits.values())
        weights = {d: math.exp(z - top) for d, z in logits.items()}
        total = sum(weights.values())
        return {d: w / total for d, w in weights.items()}


@cache
def load(path: Path | None) -> Calibration | None:
    """The calibration in `path` (None: the model's own probabilities)."""
    return Calibration.model_validate_json(path.read_text()) if path is not None else None


def decide(probabilities: dict[str, float], calibration: Calibration | None) -> tuple[dict[str, float], str]:
    """The (calibrated) probabilities and the most probable direction under them: the direction answered."""
    if calibration is not None:
        probabilities = calibration.apply(probabilities)
    return probabilities, max(probabilities, key=probabilities.get)
