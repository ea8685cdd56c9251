"""The LLM client against a real HTTP server with scripted answers and faults."""

from __future__ import annotations

import json
import socket
from concurrent.futures import ThreadPoolExecutor

import pytest

from news_reader.extraction.errors import (
    InvalidModelOutput,
    LLMRateLimited,
    LLMRequestFailed,
    LLMTimeout,
    LLMUnavailable,
)
from news_reader.extraction.llm import LLMClient
from news_reader.extraction.schemas import BusinessCategory, BusinessSpecificInfo, GeneralInfo
from news_reader.settings import LLMSettings, LocalModelSettings
from tests.conftest import ACME_QUOTE, ARTICLE
from tests.fake_llm import (
    Reply,
    answer,
    connection_reset,
    error,
    html_page,
    not_a_completion,
    raw,
    slow,
    truncated,
)

GOOD = {"title": "T", "summary": "S."}


def test_returns_validated_answer_and_counts_tokens(fake_llm, fake_settings):
    fake_llm.script("GeneralInfo", answer(GOOD, prompt_tokens=700, completion_tokens=30, cached_tokens=600))
    value, usage = LLMClient(fake_settings).extract("general_info", "prompt", GeneralInfo, 100)
    assert value == GeneralInfo(title="T", summary="S.")
    assert (usage.calls, usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens) == (1, 700, 30, 600)


def test_cached_tokens_are_unknown_when_the_server_does_not_report_them(fake_llm, fake_settings):
    fake_llm.script("GeneralInfo", answer(GOOD))
    _, usage = LLMClient(fake_settings).extract("general_info", "prompt", GeneralInfo, 100)
    assert usage.cached_tokens is None


def test_every_server_gets_openais_strict_json_schema_by_default(fake_llm, fake_settings):
    fake_llm.script("GeneralInfo", answer(GOOD))
    LLMClient(fake_settings).extract("general_info", "prompt", GeneralInfo, 100)
    strict = fake_llm.seen[0].body["response_format"]
    assert strict["type"] == "json_schema" and strict["json_schema"]["name"] == "GeneralInfo"
    assert strict["json_schema"]["strict"] is True
    assert strict["json_schema"]["schema"]["additionalProperties"] is False
    assert set(strict["json_schema"]["schema"]["required"]) == {"title", "summary"}


def test_a_server_that_rejects_json_schema_can_get_the_schema_inside_json_object(fake_llm, fake_settings):
    fake_llm.script("GeneralInfo", answer(GOOD))
    settings = fake_settings.model_copy(update={"structured_output": "json_object_schema"})
    LLMClient(settings).extract("general_info", "prompt", GeneralInfo, 100)
    sent = fake_llm.seen[0].body["response_format"]
    assert sent == {"type": "json_object", "schema": GeneralInfo.model_json_schema()}


def test_log_probabilities_of_the_accepted_answer_come_back_when_asked_for(fake_llm, fake_settings):
    tokens = [{"token": "{", "logprob": -0.01, "bytes": None, "top_logprobs": [{"token": "{", "logprob": -0.01,
                                                                               "bytes": None}]}]
    fake_llm.script("GeneralInfo", Reply(content="{}"), Reply(content=json.dumps(GOOD), logprobs=tokens))
    client = LLMClient(fake_settings)
    value, usage, logprobs = client.extract_with_logprobs("general_info", "p", GeneralInfo, 100, top_logprobs=3)
    assert value.title == "T" and usage.calls == 2
    assert [(t.token, t.logprob, t.top_logprobs[0].token) for t in logprobs] == [("{", -0.01, "{")]
    assert all(s.body["logprobs"] is True and s.body["top_logprobs"] == 3 for s in fake_llm.seen)


def test_log_probabilities_are_empty_when_the_server_returns_none_and_not_asked_for_by_default(
        fake_llm, fake_settings):
    fake_llm.script("GeneralInfo", answer(GOOD))
    client = LLMClient(fake_settings)
    _, _, logprobs = client.extract_with_logprobs("general_info", "p", GeneralInfo, 100, top_logprobs=2)
    assert logprobs == []
    LLMClient(fake_settings).extract("general_info", "p", GeneralInfo, 100)
    assert "logprobs" not in fake_llm.seen[-1].body and "top_logprobs" not in fake_llm.seen[-1].body


def test_system_prompt_comes_first_and_the_prompt_follows(fake_llm, fake_settings):
    fake_llm.script("GeneralInfo", answer(GOOD))
    LLMClient(fake_settings).extract("general_info", "the prompt", GeneralInfo, 100)
    messages = fake_llm.seen[0].body["messages"]
    assert [m["role"] for m in messages] == ["system", "user"]
    assert messages[1]["content"] == "the prompt"


def test_rate_limit_is_retried_after_the_time_the_server_asks_for(fake_llm, fake_settings):
    fake_llm.script("GeneralInfo", error(429, retry_after=1), answer(GOOD))
    value, usage = LLMClient(fake_settings).extract("general_info", "prompt", GeneralInfo, 100)
    assert value.title == "T"
    assert usage.retries == 1
    first, second = fake_llm.seen
    assert second.at - first.at >= 1.0


def test_server_errors_are_retried_with_backoff(fake_llm, fake_settings):
    fake_llm.script("GeneralInfo", error(500), error(503), answer(GOOD))
    _, usage = LLMClient(fake_settings).extract("general_info", "prompt", GeneralInfo, 100)
    assert usage.retries == 2 and len(fake_llm.seen) == 3


def test_retries_stop_after_the_configured_number(fake_llm, fake_settings):
    fake_llm.script("GeneralInfo", error(500))
    settings = fake_settings.model_copy(update={"max_retries": 2, "max_retry_wait_s": 0.2})
    with pytest.raises(LLMRequestFailed, match="HTTP 500"):
        LLMClient(settings).extract("general_info", "prompt", GeneralInfo, 100)
    assert len(fake_llm.seen) == 3


def test_a_retry_after_longer_than_we_accept_fails_at_once(fake_llm, fake_settings):
    fake_llm.script("GeneralInfo", error(429, retry_after=3600))
    with pytest.raises(LLMRateLimited):
        LLMClient(fake_settings).extract("general_info", "prompt", GeneralInfo, 100)
    assert len(fake_llm.seen) == 1


def test_client_errors_are_not_retried(fake_llm, fake_settings):
    fake_llm.script("GeneralInfo", error(400))
    with pytest.raises(LLMRequestFailed, match="HTTP 400: scripted HTTP 400"):
        LLMClient(fake_settings).extract("general_info", "prompt", GeneralInfo, 100)
    assert len(fake_llm.seen) == 1


def test_malformed_output_is_repaired_once_with_the_error_shown_to_the_model(fake_llm, fake_settings):
    fake_llm.script("GeneralInfo", raw('{"title": "T"'), answer(GOOD))
    value, usage = LLMClient(fake_settings).extract("general_info", "prompt", GeneralInfo, 100)
    assert value.summary == "S."
    assert usage.calls == 2 and usage.prompt_tokens == 200
    repair = fake_llm.seen[1].body["messages"]
    assert repair[2] == {"role": "assistant", "content": '{"title": "T"'}
    assert "not valid" in repair[3]["content"]


def test_output_still_invalid_after_repair_is_a_typed_error(fake_llm, fake_settings):
    fake_llm.script("GeneralInfo", answer({"title": "T", "summary": "S.", "extra": 1}))
    with pytest.raises(InvalidModelOutput, match="extra: Extra inputs are not permitted") as caught:
        LLMClient(fake_settings).extract("general_info", "prompt", GeneralInfo, 100)
    assert caught.value.usage.calls == 2
    assert '"extra": 1' in caught.value.raw_output


def test_markdown_fenced_json_is_accepted(fake_llm, fake_settings):
    fake_llm.script("BusinessCategory", raw('```json\n{"is_about_business": false}\n```'))
    value, _ = LLMClient(fake_settings).extract("business_category", "prompt", BusinessCategory, 100)
    assert value.is_about_business is False


def test_a_quote_not_in_the_article_is_sent_back_for_repair(fake_llm, fake_settings):
    invented = {"business": "Acme", "stock_price_change": "increase", "reason": "r.",
                "relevant_substring": "Acme reported record sales of anvils across the whole of North America"}
    grounded = {**invented, "relevant_substring": ACME_QUOTE}
    fake_llm.script("BusinessSpecificInfo", answer(invented), answer(grounded))
    value, _ = LLMClient(fake_settings).extract(
        "business_analysis", "prompt", BusinessSpecificInfo, 100, context={"article": ARTICLE}
    )
    assert value.relevant_substring == ACME_QUOTE
    assert "not in the article" in fake_llm.seen[1].body["messages"][3]["content"]


def test_a_slow_server_times_out_with_a_typed_error(fake_llm, fake_settings):
    fake_llm.script("GeneralInfo", slow(answer(GOOD), 2.0))
    settings = fake_settings.model_copy(update={"timeout_s": 0.5, "max_retries": 1, "max_retry_wait_s": 0.1})
    with pytest.raises(LLMTimeout, match="0.5 s"):
        LLMClient(settings).extract("general_info", "prompt", GeneralInfo, 100)
    assert len(fake_llm.seen) == 2


def test_an_unreachable_server_is_a_typed_error():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = LLMSettings(base_url=f"http://127.0.0.1:{port}/v1", max_retries=1, max_retry_wait_s=0.1)
    with pytest.raises(LLMUnavailable, match=f"127.0.0.1:{port}"):
        LLMClient(settings).extract("general_info", "prompt", GeneralInfo, 100)


def test_concurrent_calls_are_capped(fake_llm, fake_settings):
    fake_llm.script("GeneralInfo", slow(answer(GOOD), 0.3))
    client = LLMClient(fake_settings.model_copy(update={"max_concurrency": 2}))
    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(lambda _: client.extract("general_info", "p", GeneralInfo, 100), range(6)))
    assert fake_llm.max_in_flight == 2


def test_calls_about_one_article_take_turns_while_other_articles_run_beside_them(fake_llm, fake_settings):
    fake_llm.script("GeneralInfo", slow(answer(GOOD), 0.3))
    client = LLMClient(fake_settings.model_copy(update={"max_concurrency": 4, "calls_per_article": 1}))
    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(lambda n: client.extract("general_info", "p", GeneralInfo, 100, article=f"a{n % 2}"), range(6)))
    assert fake_llm.max_in_flight == 2  # one call per article, two articles
    assert client._articles == {}  # nothing kept for articles that are done


def test_only_the_local_llm_limits_calls_per_article_by_default():
    assert LLMSettings().resolved_calls_per_article() == 1
    assert LLMSettings(base_url=LocalModelSettings().base_url).resolved_calls_per_article() == 1
    assert LLMSettings(base_url="https://api.openai.com/v1", max_concurrency=8).resolved_calls_per_article() == 8
    assert LLMSettings(calls_per_article=3).resolved_calls_per_article() == 3


NOT_COMPLETIONS = {
    "html page": html_page(),
    "error object": not_a_completion({"error": {"message": "upstream overloaded", "code": 503}}),
    "no choices": not_a_completion({"id": "x", "choices": []}),
    "choices missing": not_a_completion({"id": "x", "object": "chat.completion"}),
    "content null": Reply(content=None),
    "message missing": not_a_completion({"choices": [{"index": 0, "finish_reason": "stop"}]}),
    "choice not an object": not_a_completion({"choices": ["{}"]}),
    "content not text": not_a_completion({"choices": [{"message": {"role": "assistant", "content": 7}}]}),
    "usage not an object": not_a_completion({"choices": [{"message": {"content": "{}"}}], "usage": "many"}),
    "tokens not counted": not_a_completion({"choices": [{"message": {"content": "{}"}}],
                                            "usage": {"prompt_tokens": None, "completion_tokens": 1}}),
    "a list": not_a_completion([]),
    "a string": not_a_completion("x"),
    "truncated json": truncated(),
}


@pytest.mark.parametrize("reply", NOT_COMPLETIONS.values(), ids=NOT_COMPLETIONS.keys())
def test_an_answer_that_is_not_a_chat_completion_is_retried_then_a_typed_error(fake_llm, fake_settings, reply):
    fake_llm.script("GeneralInfo", reply)
    settings = fake_settings.model_copy(update={"max_retries": 1, "max_retry_wait_s": 0.1})
    with pytest.raises(LLMRequestFailed, match="^the LLM's answer is not a chat completion") as caught:
        LLMClient(settings).extract("general_info", "prompt", GeneralInfo, 100)
    assert len(fake_llm.seen) == 2
    assert caught.value.usage.retries == 1


def test_a_page_that_is_not_a_chat_completion_is_quoted_in_the_error(fake_llm, fake_settings):
    fake_llm.script("GeneralInfo", html_page())
    settings = fake_settings.model_copy(update={"max_retries": 0})
    with pytest.raises(LLMRequestFailed, match="not a chat completion: .*; it starts '<html><body>Gateway says hello"):
        LLMClient(settings).extract("general_info", "prompt", GeneralInfo, 100)


def test_an_error_object_answered_with_http_200_is_quoted_in_the_error(fake_llm, fake_settings):
    fake_llm.script("GeneralInfo", not_a_completion({"error": {"message": "upstream overloaded"}}))
    settings = fake_settings.model_copy(update={"max_retries": 0})
    with pytest.raises(LLMRequestFailed, match="upstream overloaded"):
        LLMClient(settings).extract("general_info", "prompt", GeneralInfo, 100)


def test_a_chat_completion_after_one_that_was_not_is_the_answer(fake_llm, fake_settings):
    fake_llm.script("GeneralInfo", not_a_completion({"choices": []}), answer(GOOD))
    settings = fake_settings.model_copy(update={"max_retry_wait_s": 0.1})
    value, usage = LLMClient(settings).extract("general_info", "prompt", GeneralInfo, 100)
    assert value.title == "T"
    assert (usage.calls, usage.retries, usage.prompt_tokens) == (1, 1, 100)


def test_a_reset_connection_is_retried_then_a_typed_error(fake_llm, fake_settings):
    fake_llm.script("GeneralInfo", connection_reset())
    settings = fake_settings.model_copy(update={"max_retries": 1, "max_retry_wait_s": 0.1})
    with pytest.raises(LLMUnavailable, match="Connection reset by peer"):
        LLMClient(settings).extract("general_info", "prompt", GeneralInfo, 100)
    assert len(fake_llm.seen) == 2


def test_an_answer_cut_off_at_the_token_limit_is_reported_without_a_pointless_repair(fake_llm, fake_settings):
    fake_llm.script("GeneralInfo", Reply(content='{"title": "T", "summ', finish_reason="length"))
    with pytest.raises(InvalidModelOutput, match="general_info: the answer was cut off at 100 tokens"):
        LLMClient(fake_settings).extract("general_info", "prompt", GeneralInfo, 100)
    assert len(fake_llm.seen) == 1
    assert fake_llm.seen[0].body["max_tokens"] == 100


@pytest.mark.parametrize("content", ["", None], ids=["empty", "null"])
def test_an_empty_answer_cut_off_at_the_token_limit_is_reported_as_cut_off(fake_llm, fake_settings, content):
    """What a reasoning model answers when its reasoning used up every token: not retried, its tokens counted."""
    fake_llm.script("GeneralInfo", Reply(content=content, finish_reason="length"))
    with pytest.raises(InvalidModelOutput, match="cut off at 100 tokens") as raised:
        LLMClient(fake_settings).extract("general_info", "prompt", GeneralInfo, 100)
    assert len(fake_llm.seen) == 1
    assert raised.value.usage.completion_tokens == 20
