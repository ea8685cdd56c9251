"""Fitting the direction's calibration on a dev run's outputs."""

import json

from click.testing import CliRunner

from evaluations.fit_calibration import main
from news_reader.extraction.calibration import Calibration

OVERCONFIDENT = {"increase": 0.9, "decrease": 0.05, "none": 0.05}


def write(tmp_path, labels: list[str]):
    """A run that says increase at 0.9 for every company, and a dataset whose companies have `labels`."""
    outputs, data = tmp_path / "output.jsonl", tmp_path / "dev.jsonl"
    outputs.write_text("".join(json.dumps({"line_number": i, "business_info": [
        {"business": "Acme", "stock_price_change": "increase", "direction_probabilities": OVERCONFIDENT}]}) + "\n"
        for i in range(len(labels))))
    data.write_text("".join(json.dumps({"article": "Acme wins\n\nAcme did.",
                                        "companies": [{"name": "Acme", "stock_price_change": label}]}) + "\n"
                            for label in labels))
    return outputs, data


def test_an_overconfident_model_is_tempered_towards_the_labels(tmp_path):
    outputs, data = write(tmp_path, ["none"] * 6 + ["increase"] * 3 + ["decrease"])
    out = tmp_path / "calibration.json"
    result = CliRunner().invoke(main, [str(outputs), "--data", str(data), "--out", str(out)])
    assert result.exit_code == 0, result.output
    fitted = Calibration.model_validate_json(out.read_text())
    calibrated = fitted.apply(OVERCONFIDENT)
    assert abs(calibrated["none"] - 0.6) < 0.05 and abs(calibrated["increase"] - 0.3) < 0.05
    assert "10 matched companies" in fitted.fitted_on


def test_the_test_split_is_refused(tmp_path):
    outputs, data = write(tmp_path, ["none"])
    test = data.rename(tmp_path / "test.jsonl")
    result = CliRunner().invoke(main, [str(outputs), "--data", str(test), "--out", str(tmp_path / "c.json")])
    assert result.exit_code == 2 and "fit on dev" in result.output
