"""On the real embedded model: the DAG flow through Prompt flow end to end (about a minute), and what the client
relies on llama-server for (structured output held to the schema, cached tokens, log-probabilities)."""

from __future__ import annotations

from typing import Literal

import pytest
from pydantic import BaseModel, ConfigDict

from news_reader import local_model, local_server
from news_reader.extraction.llm import LLMClient
from news_reader.extraction.schemas import QUOTE_MAX_WORDS, QUOTE_MIN_WORDS, ArticleInfo
from news_reader.settings import LLMSettings, LocalModelSettings
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


class Unlikely(BaseModel):
    """An answer the model would not give unprompted: only a grammar makes it."""

    model_config = ConfigDict(extra="forbid")
    colour: Literal["zyxwv-purple"]
    count: int


def test_the_answer_is_held_to_the_json_schema_and_comes_with_log_probabilities(local_llm):
    client = LLMClient(LLMSettings())
    answer, usage, tokens = client.extract_with_logprobs(
        "probe", "What colour is the sky? One word.", Unlikely, 40, top_logprobs=3)
    assert answer.colour == "zyxwv-purple" and usage.calls == 1
    assert "zyxwv" in "".join(t.token for t in tokens)
    assert all(t.logprob <= 0 and 1 <= len(t.top_logprobs) <= 3 for t in tokens)


def test_a_repeated_prompt_prefix_is_reported_as_cached(local_llm):
    client = LLMClient(LLMSettings())
    prefix = SAMPLE + "\n\nQuestion: "
    _, first = client.extract("probe", prefix + "which colour is the sky?", Unlikely, 40)
    _, second = client.extract("probe", prefix + "which colour is the sea?", Unlikely, 40)
    assert second.cached_tokens is not None and second.cached_tokens >= 0.8 * first.prompt_tokens
