"""Replaying a recorded run's business analyses under other decision settings."""

import pytest

from evaluations.replay_decisions import classified, replay
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


def probe(name: str, p_yes: float | None) -> dict:
    return {"line_number": 0, "business": name, "p_yes": p_yes,
            "usage": {"step": "business_salience", "calls": 1, "latency_ms": 2000,
                      "started_at": "2026-12-03T10:00:00+00:00"}}


def test_companies_the_model_says_the_news_is_not_about_are_dropped_and_the_questions_cost_is_added():
    recorded = {**OUTPUT, "usage": [{**u, "started_at": "2026-12-03T08:00:00+00:00", "latency_ms": 5000}
                                    for u in OUTPUT["usage"]]}
    probes = {"Acme Corp": probe("Acme Corp", 0.9), "Initech": probe("Initech", 0.1), "Globex": probe("Globex", None)}
    replayed = replay(recorded, ARTICLE, min_mentions=0, max_businesses=3, calibration=None, probes=probes,
                      min_about=0.6)
    # Globex's question gave no probability: it is analysed, as the flow does.
    assert [b["business"] for b in replayed["business_info"]] == ["Acme Corp", "Globex"]
    assert [(e["business"], e["kind"]) for e in replayed["errors"]] == [("Initech", "not_about_company")]
    assert [u["business"] for u in replayed["usage"] if u["step"] == "business_analysis"] == ["Acme Corp", "Globex"]
    questions = [u for u in replayed["usage"] if u["step"] == "business_salience"]  # after the recorded calls
    assert [(u["business"], u["started_at"]) for u in questions] == [
        ("Acme Corp", "2026-12-03T08:00:05+00:00"), ("Initech", "2026-12-03T08:00:07+00:00"),
        ("Globex", "2026-12-03T08:00:09+00:00")]


def test_without_the_question_nothing_is_asked():
    replayed = replay(OUTPUT, ARTICLE, min_mentions=0, max_businesses=3, calibration=None,
                      probes={"Initech": probe("Initech", 0.1)}, min_about=0.0)
    assert len(replayed["business_info"]) == 3
    assert not [u for u in replayed["usage"] if u["step"] == "business_salience"]


def test_an_article_the_probe_calls_non_business_loses_what_the_business_steps_found_and_spent():
    recorded = {**OUTPUT, "is_about_business": True,
                "usage": [*OUTPUT["usage"], {"step": "businesses_involved", "business": None}],
                "errors": [{"step": "business_analysis", "business": "Initech", "kind": "passing_mention"},
                           {"step": "general_info", "business": None, "kind": "invalid_model_output"}]}
    business = {"line_number": 0, "p_true": 0.3}
    assert classified(recorded, business, min_business=0.25) is recorded
    assert classified(recorded, {**business, "p_true": None}, min_business=0.45) is recorded
    now = classified(recorded, business, min_business=0.45)
    assert (now["is_about_business"], now["business_info"]) == (False, [])
    assert [u["step"] for u in now["usage"]] == ["general_info"]
    assert [e["step"] for e in now["errors"]] == ["general_info"]


def test_an_article_the_probe_calls_business_that_was_recorded_non_business_cannot_be_replayed():
    recorded = {**OUTPUT, "is_about_business": False, "business_info": []}
    assert classified(recorded, {"line_number": 0, "p_true": 0.5}, min_business=0.45) is None


def test_lines_run_again_are_matched_to_the_dataset_by_article_id():
    from evaluations.replay_decisions import REPO, rerun_outputs
    from news_reader.evaluation.records import read_jsonl

    results = REPO / "evaluations" / "results" / "trust"
    run = results / "dev-rerun_default_20261204_190929"
    labels = read_jsonl(REPO / "data" / "eval" / "dev.jsonl")
    again = rerun_outputs(run.with_suffix(".json"), run.with_suffix(".outputs.jsonl"), labels)
    # 11 articles were run again; lines 37 and 42 timed out (and were run again alone, dev-rerun-timed-out_*)
    assert sorted(again) == [9, 14, 17, 43, 46, 49, 80, 82, 105]
    assert all(labels[n]["article"].startswith(output["title"]) for n, output in again.items())
