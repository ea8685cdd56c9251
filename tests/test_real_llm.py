"""End to end: the DAG flow through Prompt flow on the real embedded model (slow: about a minute)."""

from __future__ import annotations

import pytest

from news_reader import local_model, local_server
from news_reader.extraction.schemas import QUOTE_MAX_WORDS, QUOTE_MIN_WORDS, ArticleInfo
from news_reader.settings import LocalModelSettings
from tests.conftest import REPO

pytestmark = pytest.mark.real_llm
SAMPLE = (REPO / "flows" / "sample_article.txt").read_text()


@pytest.fixture(scope="module")
def local_llm():
    """The local server, started for these tests unless it already runs (then it is left running)."""
    settings = LocalModelSettings()
    if not local_model.is_installed(settings):
        pytest.fail("the local model is not installed: run `make setup`")
    was_running = local_server.status(settings).healthy
    local_server.start(settings)
    yield settings
    if not was_running:
        local_server.stop(settings)


def test_the_flow_names_the_company_of_a_business_article(local_llm):
    from promptflow.client import PFClient
    from promptflow.entities import OpenAIConnection

    pf = PFClient()
    connection = OpenAIConnection(name="news_reader_llm", api_key="local", base_url=local_llm.base_url)
    pf.connections.create_or_update(connection)
    info = ArticleInfo.model_validate(pf.test(flow=REPO / "flows" / "news_reader", inputs={"article": SAMPLE}))

    assert info.is_about_business is True
    assert any("timewarner" in b.business.replace(" ", "").lower() for b in info.business_info), info.business_info
    for entry in info.business_info:
        assert entry.relevant_substring in SAMPLE
        assert QUOTE_MIN_WORDS <= len(entry.relevant_substring.split()) <= QUOTE_MAX_WORDS
    assert all(u.prompt_tokens > 0 and u.completion_tokens > 0 for u in info.usage)
