"""The checks that keep companies named only in passing out of the per-company analysis: where they are named,
and the model's answer to whether the news is about them."""

import math

import pytest

from news_reader.extraction.llm import get_client
from news_reader.extraction.pipeline import analyze
from news_reader.extraction.salience import NOT_ABOUT, about_probability, is_prominent
from tests.conftest import ARTICLE
from tests.fake_llm import Reply, answer, raw

TEXT = ("Acme profits jump\n\nAcme Corp said profits rose, helped by a deal.\n\n"
        "Shares in The Globex Company rose too. Globex and Globex again. Initech was mentioned once.")


@pytest.mark.parametrize(("name", "prominent"), [
    ("Acme Corp", True),  # in the headline
    ("The Globex Company", True),  # named three times ("The" is not its distinctive word)
    ("Initech", False),  # once, late
    ("Acme", True),
    ("Hooli", False),  # not named at all
])
def test_a_company_must_lead_the_article_or_be_named_often(name, prominent):
    assert is_prominent(TEXT, name, min_mentions=3) is prominent


def test_whole_words_only_and_0_keeps_everyone():
    assert not is_prominent("Headline\n\nFirst.\n\nAcmeville, Acmeville, Acmeville.", "Acme", 3)
    assert is_prominent(TEXT, "Initech", min_mentions=0)
    assert is_prominent(TEXT, "Initech", min_mentions=1)


def test_a_company_named_in_passing_is_reported_as_skipped_not_analysed(business_script, fake_settings,
                                                                          monkeypatch):
    monkeypatch.setenv("NEWS_READER_MIN_MENTIONS", "3")
    article = ARTICLE + "\n\nSeparately, Initech was mentioned."
    business_script.script("BusinessesInvolved", answer({"businesses": ["Acme Corp", "Initech", "Globex"]}))
    info = analyze(article, fake_settings)
    assert "Initech" not in [b.business for b in info.business_info]
    skipped = [e for e in info.errors if e.business == "Initech"]
    assert skipped[0].kind == "passing_mention" and "named only in passing" in skipped[0].message
    analysed = [s for s in business_script.seen if "BusinessSpecificInfo" in str(s.body)]
    assert len(analysed) == 2 and not any('company "Initech"' in m["content"] for s in analysed
                                          for m in s.body["messages"])


def yes_no(p_yes: float) -> Reply:
    """The salience question's answer with the log-probabilities of its value's first token."""
    text = '{"about_company": "yes"}' if p_yes >= 0.5 else '{"about_company": "no"}'
    head = '{"about_company": "'
    alternatives = {"yes": math.log(p_yes), "no": math.log(1 - p_yes), "maybe": math.log(0.01)}
    chosen = text[len(head):text.index('"', len(head))]

    def token(text: str, logprob: float = -0.01, top: dict | None = None) -> dict:
        ranked = [{"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in (top or {}).items()]
        return {"token": text, "logprob": logprob, "bytes": list(text.encode()), "top_logprobs": ranked}

    tokens = [token(head), token(chosen, alternatives[chosen], alternatives), token(text[len(head) + len(chosen):])]
    return Reply(content=text, logprobs=tokens)


def test_the_probability_that_the_news_is_about_a_company_is_read_from_the_yes(business_script, fake_settings):
    business_script.script("BusinessSalience:Acme Corp", yes_no(0.8))
    p_yes, usage = about_probability(get_client(fake_settings), ARTICLE, "Acme Corp")
    assert p_yes == pytest.approx(0.8)  # "maybe" starts neither value: not counted
    assert usage.step == "business_salience" and usage.calls == 1
    question = business_script.seen[-1].body
    assert question["top_logprobs"] == fake_settings.top_logprobs and ARTICLE in question["messages"][1]["content"]


def test_a_company_the_model_says_the_news_is_not_about_is_reported_not_analysed(business_script, fake_settings,
                                                                                  monkeypatch):
    monkeypatch.setenv("NEWS_READER_MIN_ABOUT_PROBABILITY", "0.6")
    business_script.script("BusinessSalience:Acme Corp", yes_no(0.9))
    business_script.script("BusinessSalience:Globex", yes_no(0.55))  # leans yes, but below the threshold
    info = analyze(ARTICLE, fake_settings)
    assert [b.business for b in info.business_info] == ["Acme Corp"]
    [left_out] = info.errors
    assert (left_out.business, left_out.kind) == ("Globex", NOT_ABOUT) and "0.55" in left_out.message
    assert "BusinessSpecificInfo:Globex" not in business_script.keys_seen()
    asked = [(u.step, u.business) for u in info.usage if u.step == "business_salience"]
    assert sorted(asked) == [("business_salience", "Acme Corp"), ("business_salience", "Globex")]


def test_without_log_probabilities_or_with_the_check_off_every_prominent_company_is_analysed(
        business_script, fake_settings, monkeypatch):
    info = analyze(ARTICLE, fake_settings)  # the fixture's salience answers carry no log-probabilities
    assert [b.business for b in info.business_info] == ["Acme Corp", "Globex"] and info.errors == []
    monkeypatch.setenv("NEWS_READER_MIN_ABOUT_PROBABILITY", "0")
    business_script.seen.clear()
    assert len(analyze(ARTICLE, fake_settings).business_info) == 2
    assert not [k for k in business_script.keys_seen() if k.startswith("BusinessSalience")]


def test_a_failed_salience_question_fails_that_company_only_and_keeps_its_cost(business_script, fake_settings):
    business_script.script("BusinessSalience:Globex", raw("not json"))
    info = analyze(ARTICLE, fake_settings)
    assert [b.business for b in info.business_info] == ["Acme Corp"]
    [failed] = info.errors
    assert (failed.business, failed.step, failed.kind) == ("Globex", "business_analysis", "invalid_model_output")
    assert [u.business for u in info.usage if u.step == "business_salience"].count("Globex") == 1
