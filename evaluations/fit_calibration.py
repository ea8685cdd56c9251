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
from news_reader.extraction.calibration import DEFAULT_FILE, Calibration
from news_reader.extraction.direction import DIRECTIONS
from news_reader.extraction.salience import is_prominent
from news_reader.settings import PipelineSettings

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
        listed = (by_line.get(line) or {}).get("business_info") or []
        analysed = [e for e in listed if is_prominent(expected["article"], e["business"], limits.min_mentions)]
        entries = [e for e in analysed[: limits.max_businesses] if e.get("direction_probabilities")]
        matches, _, _ = match_companies([e["business"] for e in entries], expected["companies"])
        first = {}
        for entry in entries:
            first.setdefault(entry["business"], entry)
        for match in matches:
            p = first[match.predicted]["direction_probabilities"]
            logs.append([np.log(max(p[d], 1e-9)) for d in DIRECTIONS])
            labels.append(DIRECTIONS.index(match.label["stock_price_change"]))
    return np.array(logs), np.array(labels)


def fit(logs: np.ndarray, labels: np.ndarray) -> tuple[float, dict[str, float], float]:
    """The temperature and biases (none's fixed at 0) of least mean negative log-likelihood, and that NLL."""
    best = (np.inf, 1.0, (0.0, 0.0))
    rows = np.arange(len(labels))
    for t in TEMPERATURES:
        scaled = logs / t
        for b_inc, b_dec in itertools.product(BIASES, BIASES):
            z = scaled + np.array([b_inc, b_dec, 0.0])
            z -= z.max(axis=1, keepdims=True)
            nll = float(np.mean(np.log(np.exp(z).sum(axis=1)) - z[rows, labels]))
            if nll < best[0]:
                best = (nll, float(t), (float(b_inc), float(b_dec)))
    nll, t, (b_inc, b_dec) = best
    return t, {"increase": b_inc, "decrease": b_dec, "none": 0.0}, nll


@click.command()
@click.argument("outputs", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--data", default=REPO / "data" / "eval" / "dev.jsonl", show_default=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", default=DEFAULT_FILE, show_default=True, type=click.Path(dir_okay=False, path_type=Path))
def main(outputs: Path, data: Path, out: Path) -> None:
    """Fit on the flow outputs OUTPUTS of a run over --data (the dev split) and write the calibration to --out."""
    if data.name == "test.jsonl":
        raise click.BadParameter("the test split is for reporting; fit on dev", param_hint="--data")
    logs, labels = labelled_probabilities(read_jsonl(outputs), read_jsonl(data))
    if not len(labels):
        raise click.ClickException("no matched company with direction probabilities to fit on")
    temperature, bias, nll = fit(logs, labels)
    before = float(np.mean(np.log(np.exp(logs).sum(axis=1)) - logs[np.arange(len(labels)), labels]))
    fitted_on = (f"{len(labels)} matched companies of {data.relative_to(REPO) if data.is_relative_to(REPO) else data}"
                 f" ({outputs.parent.parent.name}); mean NLL {before:.3f} before, {nll:.3f} after")
    out.write_text(Calibration(temperature=temperature, bias=bias, fitted_on=fitted_on).model_dump_json(indent=2) + "\n")
    click.echo(f"wrote {out}: temperature {temperature}, bias {bias}; {fitted_on}")


if __name__ == "__main__":
    main()
