"""Fit the direction's calibration (news_reader/extraction/calibration.py) on a recorded flow run over the dev split:
temperature and per-direction biases by maximum likelihood over the companies that match a label, on a grid.

    python evaluations/fit_calibration.py .state/pf/.runs/<dev run>/flow_outputs/output.jsonl

The test split is refused: tuning uses dev alone.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import click
import numpy as np

from news_reader.evaluation.matching import match_companies
from news_reader.evaluation.records import read_jsonl
from news_reader.extraction.calibration import Calibration
from news_reader.extraction.direction import DIRECTIONS
from news_reader.extraction.salience import select
from news_reader.settings import DIRECTION_CALIBRATION_FILE, PipelineSettings

REPO = Path(__file__).resolve().parents[1]
TEMPERATURES = np.round(np.arange(0.5, 8.01, 0.25), 2)
BIASES = np.round(np.arange(-4, 4.01, 0.25), 2)


def labelled_probabilities(outputs: list[dict], dataset: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """The log-probabilities (rows in DIRECTIONS order) and labelled direction of every matched company among those
    the flow would analyse today (salience check and cap, as NEWS_READER_MIN_MENTIONS and _MAX_BUSINESSES say)."""
    logs, labels = [], []
    by_line = {int(o["line_number"]): o for o in outputs}
    limits = PipelineSettings()
    for line, expected in enumerate(dataset):
        listed = {e["business"]: e for e in (by_line.get(line) or {}).get("business_info") or []}  # names are unique
        analysed = select(expected["article"], list(listed), limits.min_mentions, limits.max_businesses).analysed
        rated = [name for name in analysed if listed[name].get("direction_probabilities")]
        matches, _, _ = match_companies(rated, expected["companies"])
        for match in matches:
            p = listed[match.predicted]["direction_probabilities"]
            logs.append([np.log(max(p[d], 1e-9)) for d in DIRECTIONS])
            labels.append(DIRECTIONS.index(match.label["stock_price_change"]))
    return np.array(logs), np.array(labels)


def mean_nll(logits: np.ndarray, labels: np.ndarray) -> float:
    """The mean negative log-likelihood of the labels under the softmax of each row of logits."""
    z = logits - logits.max(axis=1, keepdims=True)
    return float(np.mean(np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(labels)), labels]))


def fit(logs: np.ndarray, labels: np.ndarray) -> tuple[float, dict[str, float], float]:
    """The temperature and biases (none's fixed at 0) of least mean negative log-likelihood, and that NLL."""
    best = (np.inf, 1.0, (0.0, 0.0))
    for t in TEMPERATURES:
        scaled = logs / t
        for b_inc, b_dec in itertools.product(BIASES, BIASES):
            nll = mean_nll(scaled + np.array([b_inc, b_dec, 0.0]), labels)
            if nll < best[0]:
                best = (nll, float(t), (float(b_inc), float(b_dec)))
    nll, t, (b_inc, b_dec) = best
    return t, {"increase": b_inc, "decrease": b_dec, "none": 0.0}, nll


@click.command()
@click.argument("outputs", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--data", default=REPO / "data" / "eval" / "dev.jsonl", show_default=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", default=DIRECTION_CALIBRATION_FILE, show_default=True,
              type=click.Path(dir_okay=False, path_type=Path))
def main(outputs: Path, data: Path, out: Path) -> None:
    """Fit on the flow outputs OUTPUTS of a run over --data (the dev split) and write the calibration to --out."""
    if data.name == "test.jsonl":
        raise click.BadParameter("the test split is for reporting; fit on dev", param_hint="--data")
    logs, labels = labelled_probabilities(read_jsonl(outputs), read_jsonl(data))
    if not len(labels):
        raise click.ClickException("no matched company with direction probabilities to fit on")
    temperature, bias, nll = fit(logs, labels)
    before = mean_nll(logs, labels)
    fitted_on = (f"{len(labels)} matched companies of {data.relative_to(REPO) if data.is_relative_to(REPO) else data}"
                 f" ({outputs.parent.parent.name}); mean NLL {before:.3f} before, {nll:.3f} after")
    calibration = Calibration(temperature=temperature, bias=bias, fitted_on=fitted_on)
    out.write_text(calibration.model_dump_json(indent=2) + "\n")
    click.echo(f"wrote {out}: temperature {temperature}, bias {bias}; {fitted_on}")


if __name__ == "__main__":
    main()
