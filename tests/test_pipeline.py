"""The extraction on the plain-Python path: the step graph, fan-out, and what happens when parts fail. The DAG flow
runs the same node functions (tests/test_flows.py checks that it gives the same result)."""

import pytest

from news_reader.extraction.errors import InvalidModelOutput, LLMRequestFailed
from news_reader.extraction.pipeline import analyze, analyze_single
from news_reader.settings import PipelineSettings
from tests.conftest import ACME_ANSWER, ACME_QUOTE, ARTICLE, GLOBEX_ANSWER, GLOBEX_QUOTE, SPORT_ARTICLE
from tests.fake_llm import Reply, answer, error, raw, slow


def test_a_business_article_gets_every_step_and_one_analysis_per_business(business_script, fake_settings):
    info = analyze(ARTICLE, fake_settings)
    assert info.title == "Acme profits soar as Globex deal collapses"
    assert info.is_about_business is True
    assert [(b.business, b.stock_price_change, b.relevant_substring) for b in info.business_info] == [
        ("Acme Corp", "increase", ACME_QUOTE),
        ("Globex", "decrease", GLOBEX_QUOTE),
    ]
    assert [(u.step, u.business) for u in info.usage] == [
        ("general_info", None), ("business_category", None), ("businesses_involved", None),
        ("business_salience", "Acme Corp"), ("business_analysis", "Acme Corp"),
        ("business_salience", "Globex"), ("business_analysis", "Globex"),
    ]
    assert len(info.trace_id) == 32 and info.errors == []


def test_a_non_business_article_never_asks_about_businesses(fake_llm, fake_settings):
    fake_llm.script("GeneralInfo", answer({"title": "Claxton hunting first major medal", "summary": "S."}))
    fake_llm.script("BusinessCategory", answer({"is_about_business": False}))
    info = analyze(SPORT_ARTICLE, fake_settings)
    assert info.business_info == []
    assert sorted(fake_llm.keys_seen()) == ["BusinessCategory", "GeneralInfo"]


def test_general_info_and_classification_run_concurrently(business_script, fake_settings):
    business_script.script("GeneralInfo", slow(answer({"title": "T", "summary": "S."}), 0.5))
    business_script.script("BusinessCategory", slow(answer({"is_about_business": False}), 0.5))
    analyze(ARTICLE, fake_settings)
    assert business_script.max_in_flight == 2


def test_one_business_failing_keeps_the_others(business_script, fake_settings):
    business_script.script("BusinessSpecificInfo:Globex", raw("not json"))
    info = analyze(ARTICLE, fake_settings)
    assert [b.business for b in info.business_info] == ["Acme Corp"]
    [failure] = info.errors
    assert (failure.business, failure.kind) == ("Globex", "invalid_model_output")
    [globex_usage] = [u for u in info.usage if u.business == "Globex" and u.step == "business_analysis"]
    assert globex_usage.calls == 2


def test_a_business_whose_server_fails_keeps_the_others_and_a_repaired_answer_counts(business_script, fake_settings):
    business_script.script("BusinessSpecificInfo:Acme Corp", error(500))
    business_script.script("BusinessSpecificInfo:Globex", raw("{"), answer(GLOBEX_ANSWER))
    info = analyze(ARTICLE, fake_settings.model_copy(update={"max_retries": 1, "max_retry_wait_s": 0.2}))
    assert [b.business for b in info.business_info] == ["Globex"]
    assert [(e.business, e.kind) for e in info.errors] == [("Acme Corp", "llm_request_failed")]


def test_a_business_whose_answer_is_too_slow_times_out_and_the_others_are_kept(business_script, fake_settings):
    business_script.script("BusinessSpecificInfo:Acme Corp", slow(answer(ACME_ANSWER), 3))
    info = analyze(ARTICLE, fake_settings.model_copy(update={"timeout_s": 1, "max_retries": 0}))
    assert [b.business for b in info.business_info] == ["Globex"]
    assert [(e.business, e.kind) for e in info.errors] == [("Acme Corp", "llm_timeout")]


def test_a_rate_limited_business_is_retried_not_lost(business_script, fake_settings):
    business_script.script("BusinessSpecificInfo:Globex", error(429, retry_after=0.2), answer(GLOBEX_ANSWER))
    info = analyze(ARTICLE, fake_settings)
    assert [b.business for b in info.business_info] == ["Acme Corp", "Globex"]
    assert [u.retries for u in info.usage if u.business == "Globex" and u.step == "business_analysis"] == [1]


def test_a_failure_to_find_businesses_keeps_title_summary_and_classification(business_script, fake_settings):
    business_script.script("BusinessesInvolved", raw("[]"))
    info = analyze(ARTICLE, fake_settings)
    assert (info.title, info.is_about_business, info.business_info) == (
        "Acme profits soar as Globex deal collapses", True, [])
    assert [(e.step, e.kind) for e in info.errors] == [("businesses_involved", "invalid_model_output")]


def test_a_summary_cut_off_at_its_budget_keeps_its_first_sentence_and_the_article(business_script, fake_settings):
    cut_off = '{"title": "Acme profits soar", "summary": "Acme made more money. Globex did not. The deal between the'
    business_script.script("GeneralInfo", Reply(content=cut_off, finish_reason="length"))
    info = analyze(ARTICLE, fake_settings)
    assert (info.summary, len(info.business_info)) == ("Acme made more money.", 2)
    assert [(e.step, e.kind, e.message) for e in info.errors] == [("general_info", "invalid_model_output",
        "general_info: the answer was cut off at 250 tokens; the summary's first sentence is kept")]


def test_a_summary_cut_off_in_its_first_sentence_fails_the_article(business_script, fake_settings):
    business_script.script("GeneralInfo", Reply(content='{"title": "A", "summary": "Acme made', finish_reason="length"))
    with pytest.raises(InvalidModelOutput, match="general_info: the answer was cut off at 250 tokens"):
        analyze(ARTICLE, fake_settings)


def test_a_list_of_businesses_cut_off_at_its_budget_keeps_the_names_completed_before_the_cut(
        business_script, fake_settings):
    business_script.script("BusinessesInvolved", Reply(
        content='{"businesses": ["Acme Corp", "Globex", "Acme Corp", "Glo', finish_reason="length"))
    info = analyze(ARTICLE, fake_settings)
    assert [b.business for b in info.business_info] == ["Acme Corp", "Globex"]
    [failure] = info.errors
    assert (failure.step, failure.kind) == ("businesses_involved", "invalid_model_output")
    assert failure.message == ("businesses_involved: the answer was cut off at 200 tokens; "
                               "the 2 names before the cut are kept")


def test_a_list_cut_off_before_its_first_name_is_complete_loses_only_the_businesses(business_script, fake_settings):
    business_script.script("BusinessesInvolved", Reply(content='{"businesses": ["Acme', finish_reason="length"))
    info = analyze(ARTICLE, fake_settings)
    assert (info.title, info.business_info) == ("Acme profits soar as Globex deal collapses", [])
    assert [e.message for e in info.errors] == ["businesses_involved: the answer was cut off at 200 tokens"]


def test_an_unexpected_error_in_one_business_keeps_the_others(business_script, fake_settings, monkeypatch):
    from news_reader.extraction.steps import Step

    real_run = Step.run_with_logprobs

    def run(step, client, prompt, article, top_logprobs):
        if '"Globex"' in prompt:
            raise RuntimeError("disk full")
        return real_run(step, client, prompt, article, top_logprobs)

    monkeypatch.setattr(Step, "run_with_logprobs", run)
    info = analyze(ARTICLE, fake_settings)
    assert [b.business for b in info.business_info] == ["Acme Corp"]
    assert [(e.business, e.kind, e.message) for e in info.errors] == [
        ("Globex", "unexpected_error", "RuntimeError: disk full")]


def test_a_failed_general_info_stops_before_the_businesses_are_analysed(business_script, fake_settings):
    business_script.script("GeneralInfo", error(400))
    business_script.script("BusinessCategory", slow(answer({"is_about_business": True}), 0.5))
    with pytest.raises(LLMRequestFailed, match="HTTP 400"):
        analyze(ARTICLE, fake_settings)
    assert not [k for k in business_script.keys_seen() if k.startswith("BusinessSpecificInfo")]


def test_a_headline_in_the_text_is_the_title_verbatim(business_script, fake_settings):
    business_script.script("GeneralInfo", answer({"title": "Acme Has A Great Quarter", "summary": "S."}))
    assert analyze(ARTICLE, fake_settings).title == "Acme profits soar as Globex deal collapses"


def test_without_a_headline_the_title_is_the_models(business_script, fake_settings):
    business_script.script("GeneralInfo", answer({"title": "Acme has a great quarter", "summary": "S."}))
    headless = ARTICLE.split("\n\n", 1)[1]
    assert analyze(headless, fake_settings).title == "Acme has a great quarter"


def test_variants_of_unknown_steps_are_refused(fake_settings):
    with pytest.raises(ValueError, match="no such step: general"):
        analyze(ARTICLE, fake_settings, variants={"general": "variant_1"})


def test_businesses_over_the_limit_are_reported_not_dropped_silently(business_script, fake_settings):
    info = analyze(ARTICLE, fake_settings, PipelineSettings(max_businesses=1))
    assert [b.business for b in info.business_info] == ["Acme Corp"]
    assert [(e.business, e.kind) for e in info.errors] == [("Globex", "skipped")]


def test_a_prompt_variant_changes_the_prompt_sent(business_script, fake_settings):
    analyze(ARTICLE, fake_settings, variants={"general_info": "variant_1"})
    [general] = [s for s in business_script.seen if s.key == "GeneralInfo"]
    assert "at most 10 words" in general.body["messages"][1]["content"]


def test_the_single_prompt_baseline_gives_the_same_shape_from_one_call(fake_llm, fake_settings):
    fake_llm.script("ArticleExtraction", answer({
        "title": "T", "summary": "S.", "is_about_business": True,
        "business_info": [{"business": "Acme Corp", "stock_price_change": "increase", "reason": "r.",
                           "relevant_substring": ACME_QUOTE}],
    }))
    info = analyze_single(ARTICLE, fake_settings)
    assert [b.business for b in info.business_info] == ["Acme Corp"]
    assert [u.step for u in info.usage] == ["single_prompt"] and len(fake_llm.seen) == 1


def test_the_single_prompt_keeps_the_article_when_only_one_quote_is_invented(fake_llm, fake_settings):
    invented = {**GLOBEX_ANSWER, "relevant_substring": "Globex will open twenty rocket skate shops in Asia next year"}
    fake_llm.script("ArticleExtraction", answer({
        "title": "T", "summary": "S.", "is_about_business": True,
        "business_info": [{"business": "Acme Corp", "stock_price_change": "increase", "reason": "r.",
                           "relevant_substring": ACME_QUOTE}, invented],
    }))
    info = analyze_single(ARTICLE, fake_settings)
    assert [b.business for b in info.business_info] == ["Acme Corp"]
    assert [(e.business, e.kind) for e in info.errors] == [("Globex", "invalid_model_output")]
    assert info.usage[0].calls == 2


def test_the_single_prompt_fails_clearly_when_the_answer_is_not_json(fake_llm, fake_settings):
    fake_llm.script("ArticleExtraction", raw("I cannot answer that."))
    with pytest.raises(InvalidModelOutput, match="single_prompt: model output is invalid"):
        analyze_single(ARTICLE, fake_settings)


def test_the_single_prompt_drops_businesses_of_a_non_business_article(fake_llm, fake_settings):
    fake_llm.script("ArticleExtraction", answer({
        "title": "T", "summary": "S.", "is_about_business": False,
        "business_info": [{"business": "Acme Corp", "stock_price_change": "none", "reason": "r.",
                           "relevant_substring": ACME_QUOTE}],
    }))
    assert analyze_single(ARTICLE, fake_settings).business_info == []
