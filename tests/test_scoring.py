"""Scores against the labels: company matching, per-line scores, aggregation, the LLM judge."""

from __future__ import annotations

import pytest

from news_reader.evaluation.judge import excerpt, judge_reasons
from news_reader.evaluation.matching import match_companies, name_tokens
from news_reader.evaluation.scoring import CompanyMatch, JudgedReason, aggregate, cohen_kappa, score_line
from news_reader.extraction.llm import LLMClient
from tests.conftest import ACME_ANSWER, ACME_QUOTE, ARTICLE, GLOBEX_ANSWER
from tests.fake_llm import FakeLLM, answer, error

EXPECTED = {
    "title_reference": "Acme profits soar as Globex deal collapses",
    "summary_reference": "Acme's profits rose while Globex lost a takeover.",
    "is_about_business": True,
    "companies": [{"name": "Acme", "aliases": ["Acme Corp"], "stock_price_change": "increase"},
                  {"name": "Initech", "aliases": [], "stock_price_change": "decrease"}],
}


def prediction(**changes) -> dict:
    # The two steps are sent at once; the server answers business_category after 1 s, general_info after 4 s.
    usage = [{"step": "general_info", "calls": 1, "prompt_tokens": 700, "completion_tokens": 50,
              "cached_tokens": None, "latency_ms": 4000, "started_at": "2026-12-02T10:00:00.000Z"},
             {"step": "business_category", "calls": 1, "prompt_tokens": 650, "completion_tokens": 7,
              "cached_tokens": None, "latency_ms": 1000, "started_at": "2026-12-02T10:00:00.000Z"}]
    return {"title": "Acme profits soar as Globex deal collapses", "summary": "Acme's profits rose 40%.",
            "is_about_business": True, "business_info": [ACME_ANSWER, GLOBEX_ANSWER], "trace_id": "t",
            "usage": usage, "errors": [], **changes}


@pytest.mark.parametrize(("name", "tokens"), [
    ("Nestlé S.A.'s", ("nestle",)), ("Yukos Oil Company", ("yukos", "oil")), ("AT&T Inc.", ("at", "and", "t")),
    ("The Carlyle Group", ("carlyle", "group")),
])
def test_names_are_normalised_without_accents_possessives_or_legal_forms(name, tokens):
    assert name_tokens(name) == tokens


def test_matching_uses_aliases_spacing_and_whole_word_parts_one_to_one():
    labels = [{"name": "Time Warner", "aliases": ["TimeWarner"]}, {"name": "Yukos", "aliases": []},
              {"name": "BA", "aliases": ["British Airways"]}]
    matches, extra, missed = match_companies(["TimeWarner Inc", "Yukos Oil", "British Airways plc", "AOL", "Yukos"],
                                             labels)
    assert {(m.predicted, m.label["name"]) for m in matches} == {
        ("TimeWarner Inc", "Time Warner"), ("British Airways plc", "BA"), ("Yukos", "Yukos")}
    assert extra == ["Yukos Oil", "AOL"] and missed == []  # the exact "Yukos" wins over the partial "Yukos Oil"


def test_short_names_do_not_match_as_parts_of_longer_ones():
    matches, _, missed = match_companies(["BA"], [{"name": "BAA", "aliases": ["BAA plc"]}])
    assert matches == [] and len(missed) == 1


@pytest.mark.parametrize(("predicted", "label", "matched"), [
    ("BMW", "BMW Group", True), ("JFE", "JFE Holdings", True), ("Yukos Oil", "Yukos", True),
    ("Ireland", "Bank of Ireland", False), ("Motors", "General Motors", False),
])
def test_a_partial_name_must_start_the_other(predicted, label, matched):
    assert bool(match_companies([predicted], [{"name": label, "aliases": []}])[0]) is matched


def test_a_repeated_company_is_matched_by_its_first_entry():
    second = {**ACME_ANSWER, "stock_price_change": "decrease", "reason": "Second."}
    score = score_line(prediction(business_info=[ACME_ANSWER, second]), EXPECTED, ARTICLE)
    assert [(m.predicted, m.reason) for m in score.matches] == [("increase", ACME_ANSWER["reason"])]
    assert score.companies_fp == 1


def test_naming_no_company_scores_f1_zero_not_unknown():
    m = aggregate([score_line(prediction(business_info=[]), EXPECTED, ARTICLE)], [])
    assert m["company_precision"] is None and m["company_recall"] == 0.0 and m["company_f1"] == 0.0


def test_a_line_is_scored_against_its_labels():
    score = score_line(prediction(), EXPECTED, ARTICLE)
    assert score.schema_valid and score.title_match and score.title_f1 == 1.0
    assert 0 < score.summary_rouge_l < 1
    assert (score.companies_tp, score.companies_fp, score.companies_fn) == (1, 1, 1)  # Acme; Globex; Initech
    [match] = score.matches
    assert (match.business, match.label, match.predicted, match.expected) == ("Acme Corp", "Acme", "increase",
                                                                              "increase")
    assert (score.quotes_total, score.quotes_grounded) == (2, 2)
    assert (score.llm_calls, score.prompt_tokens, score.completion_tokens, score.cached_tokens) == (2, 1350, 57, None)
    assert (score.wall_ms, score.step_latency_sum_ms) == (4000, 5000)


def test_wall_time_runs_from_the_first_call_to_the_last_answer_not_the_sum_of_queued_calls():
    # Four business analyses sent at once to a server that answers one at a time: each latency includes its wait
    # behind the others (smoke line 3), after general info and business category took 30 s together.
    shared = [{"step": step, "latency_ms": 30_000, "started_at": "2026-12-02T10:00:00Z"}
              for step in ("general_info", "business_category")]
    fan_out = [{"step": "business_analysis", "latency_ms": ms, "started_at": "2026-12-02T10:00:35Z"}
               for ms in (16_700, 30_600, 45_700, 65_100)]
    score = score_line(prediction(usage=shared + fan_out), EXPECTED, ARTICLE)
    assert score.wall_ms == 35_000 + 65_100
    assert score.step_latency_sum_ms == 60_000 + 158_100


def test_outputs_that_do_not_say_when_steps_started_have_no_wall_time():
    usage = [{"step": "general_info", "latency_ms": 4000}, {"step": "business_category", "latency_ms": 1000}]
    scores = [score_line(prediction(usage=usage), EXPECTED, ARTICLE), score_line(prediction(), EXPECTED, ARTICLE)]
    assert scores[0].wall_ms is None and scores[0].step_latency_sum_ms == 5000
    m = aggregate(scores, [])
    assert m["wall_ms_mean"] is None and m["wall_ms_p95"] is None  # not a mean of the lines that have one
    assert m["step_latency_sum_ms_mean"] == 5000


def test_an_invalid_output_and_an_invented_quote_are_counted():
    invented = {**ACME_ANSWER, "relevant_substring": "Acme said nothing of the kind at all, ever, to anyone here"}
    score = score_line(prediction(title="", business_info=[invented]), EXPECTED, ARTICLE)
    assert not score.schema_valid and not score.title_match and score.title_f1 == 0.0
    assert (score.quotes_total, score.quotes_grounded) == (1, 0)


def test_companies_left_out_by_the_salience_checks_are_counted_apart_from_step_errors():
    errors = [{"step": "business_analysis", "business": name, "kind": kind, "message": "m"}
              for name, kind in (("Initech", "passing_mention"), ("Japan", "not_about_company"),
                                 ("Hooli", "not_about_company"), ("Globex", "llm_timeout"))]
    score = score_line(prediction(errors=errors), EXPECTED, ARTICLE)
    assert (score.step_errors, score.passing_mentions, score.not_about) == (1, 1, 2)


def test_aggregation_micro_averages_companies_and_counts_what_can_be_counted():
    business = score_line(prediction(), EXPECTED, ARTICLE)
    sport = score_line(prediction(is_about_business=False, business_info=[], title="Claxton wins"),
                       {**EXPECTED, "is_about_business": False, "companies": []}, ARTICLE)
    judged = [JudgedReason(business="Acme Corp", passed=True, direction_correct=True),
              JudgedReason(business="X", passed=None, direction_correct=False, error="llm_timeout: ...")]
    m = aggregate([business, sport], judged)
    assert m["schema_valid_rate"] == 1.0 and m["title_match_rate"] == 0.5
    assert m["business_accuracy"] == 1.0 and m["business_precision"] == 1.0 and m["business_recall"] == 1.0
    assert m["company_precision"] == 0.5 and m["company_recall"] == 0.5 and m["company_f1"] == 0.5
    assert m["direction_accuracy"] == 1.0 and m["grounding_rate"] == 1.0
    assert m["business_accuracy_majority"] == 0.5 and m["direction_macro_f1"] == 1.0
    assert m["company_direction_f1"] == 0.5  # as company F1: every matched direction is right
    assert m["judge_pass_rate"] == 1.0 and m["judge_agreement"] == 1.0  # the failed judge call is left out
    assert m["judge_kappa"] is None  # one verdict: chance agreement is total
    assert m["llm_calls_per_article"] == 2 and m["prompt_tokens_per_article"] == 1350
    assert m["cached_tokens_per_article"] is None and m["cached_share"] is None
    assert m["wall_ms_mean"] == 4000 and m["wall_ms_p95"] == 4000 and m["lines_evaluated"] == 2
    assert m["step_latency_sum_ms_mean"] == 5000 and m["step_latency_sum_ms_p95"] == 5000


def test_the_cached_share_is_of_all_prompt_tokens_when_every_line_reports_cached_tokens():
    def cached(tokens: list[int]) -> dict:
        usage = [{**u, "cached_tokens": t} for u, t in zip(prediction()["usage"], tokens, strict=True)]
        return prediction(usage=usage)

    lines = [score_line(cached([600, 300]), EXPECTED, ARTICLE), score_line(cached([0, 450]), EXPECTED, ARTICLE)]
    m = aggregate(lines, [])
    assert m["cached_tokens_per_article"] == 675 and m["cached_share"] == 1350 / 2700


def test_rates_with_nothing_to_count_are_none_not_zero():
    m = aggregate([], [])
    assert m["company_f1"] is None and m["direction_accuracy"] is None and m["wall_ms_p95"] is None


def test_cohen_kappa():
    assert cohen_kappa([True, False, True, False], [True, False, True, False]) == 1.0
    assert cohen_kappa([True, True, False, False], [True, False, True, False]) == 0.0
    assert cohen_kappa([True, True, True, False], [True, True, False, False]) == pytest.approx(0.5)


def test_the_judge_sees_the_quotes_paragraph_and_the_headline_not_the_whole_article():
    text = "Headline here\n\nFirst paragraph about other things.\n\nSecond one: " + ACME_QUOTE + " indeed.\n\nLast."
    assert excerpt(text, ACME_QUOTE) == "Headline here\n\nSecond one: " + ACME_QUOTE + " indeed."


def test_the_judge_gives_one_verdict_per_match_and_records_a_failed_call(fake_llm: FakeLLM, fake_settings):
    fake_llm.script("ReasonVerdict", answer({"supported": True, "implied_direction": "decrease"}), error(400))
    matches = [CompanyMatch(business="Acme Corp", label="Acme", predicted="increase", expected="increase",
                            reason="Profits rose.", quote=ACME_QUOTE),
               CompanyMatch(business="Globex", label="Globex", predicted="decrease", expected="none",
                            reason="Deal collapsed.", quote="x")]
    first, second = judge_reasons(LLMClient(fake_settings), ARTICLE, matches)
    assert (first.passed, first.supported, first.consistent, first.direction_correct) == (False, True, False, True)
    assert second.passed is None and second.error.startswith("llm_request_failed") and not second.direction_correct
    prompt = fake_llm.seen[0].body["messages"][1]["content"]
    assert ACME_QUOTE in prompt and "Profits rose." in prompt
    instruction = prompt.split("</excerpt>")[1].split("Answer with one JSON object")[0]
    assert "increase" not in instruction  # the judge is not shown the prediction
