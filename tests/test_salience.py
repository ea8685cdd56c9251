"""The check that keeps companies named only in passing out of the per-company analysis."""

import pytest

from news_reader.extraction.pipeline import analyze
from news_reader.extraction.salience import is_prominent
from tests.conftest import ARTICLE
from tests.fake_llm import answer

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
