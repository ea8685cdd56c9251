"""Replaying a recorded run's business analyses under other decision settings."""

import pytest

from evaluations.replay_decisions import replay
from news_reader.extraction.calibration import Calibration

ARTICLE = "Acme wins contract\n\nAcme Corp beat Globex to a deal.\n\nLater, Initech was named once."
OUTPUT = {
    "line_number": 0,
    "business_info": [
        {"business": name, "stock_price_change": "increase", "confidence": 0.8,
         "direction_probabilities": {"increase": 0.8, "decrease": 0.1, "none": 0.1}}
        for name in ("Acme Corp", "Initech", "Globex")],
    "usage": [{"step": "general_info", "business": None}, *({"step": "business_analysis", "business": name}
                                                             for name in ("Acme Corp", "Initech", "Globex"))],
    "errors": [],
}


def test_passing_mentions_and_companies_over_the_cap_are_dropped_with_their_tokens():
    replayed = replay(OUTPUT, ARTICLE, min_mentions=3, max_businesses=1, calibration=None)
    assert [b["business"] for b in replayed["business_info"]] == ["Acme Corp"]
    assert [u["business"] for u in replayed["usage"]] == [None, "Acme Corp"]
    assert sorted((e["business"], e["kind"]) for e in replayed["errors"]) == [("Globex", "skipped"),
                                                                              ("Initech", "passing_mention")]
    assert "line_number" not in replayed


def test_the_direction_is_read_again_through_the_calibration():
    leaning_none = Calibration(temperature=1.0, bias={"increase": -3.0, "decrease": -1.0, "none": 0.0}, fitted_on="x")
    acme = replay(OUTPUT, ARTICLE, min_mentions=0, max_businesses=5, calibration=leaning_none)["business_info"][0]
    assert acme["stock_price_change"] == "none"
    assert acme["confidence"] == pytest.approx(acme["direction_probabilities"]["none"])
    as_recorded = replay(OUTPUT, ARTICLE, min_mentions=0, max_businesses=5, calibration=None)
    assert [b["stock_price_change"] for b in as_recorded["business_info"]] == ["increase"] * 3
