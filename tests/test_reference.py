"""The reference request that latency is measured against, on the experiment's own server."""

from __future__ import annotations

import pytest

from news_reader.evaluation.reference import (
    REFERENCE_COMPLETION_TOKENS,
    ReferenceRequestFailed,
    measure_reference_ms,
    relative_latency,
)
from news_reader.settings import LLMSettings
from tests.fake_llm import FakeLLM, error, reference_answer, slow


def settings(fake_llm: FakeLLM) -> LLMSettings:
    return LLMSettings(base_url=fake_llm.base_url, model="fake", max_retries=0)


def test_the_fake_answers_the_reference_at_its_length():
    assert reference_answer().usage["completion_tokens"] == REFERENCE_COMPLETION_TOKENS


def test_the_reference_times_a_fixed_request_of_fixed_length_after_an_untimed_one(fake_llm):
    fake_llm.script("text", slow(reference_answer(), 1.0), slow(reference_answer(), 0.3))
    times = measure_reference_ms(settings(fake_llm), samples=2)
    assert len(times) == 2 and all(300 <= ms < 1000 for ms in times)  # the slow first one is not counted
    assert len(fake_llm.seen) == 3
    assert all(seen.body["max_tokens"] == REFERENCE_COMPLETION_TOKENS and seen.body["temperature"] == 0.0
               and seen.body["model"] == "fake" and "response_format" not in seen.body for seen in fake_llm.seen)


def test_every_reference_request_misses_the_server_prompt_cache(fake_llm):
    fake_llm.script("text", reference_answer())
    measure_reference_ms(settings(fake_llm), samples=1)
    first, second = (seen.body["messages"][1]["content"] for seen in fake_llm.seen)
    assert first != second and first[:20] != second[:20]  # they differ at the start, before any shared prefix
    assert len(first) == len(second)


def test_an_answer_shorter_than_the_reference_is_refused(fake_llm):
    fake_llm.script("text", reference_answer(), reference_answer(tokens=12))
    with pytest.raises(ReferenceRequestFailed, match="12 tokens, not 48"):
        measure_reference_ms(settings(fake_llm))


def test_a_failed_reference_request_is_a_typed_error(fake_llm):
    fake_llm.script("text", error(503))
    with pytest.raises(ReferenceRequestFailed, match="the reference request failed"):
        measure_reference_ms(settings(fake_llm))


def test_wall_time_is_expressed_in_reference_requests():
    metrics = {"wall_ms_mean": 30_000.0, "wall_ms_p95": 66_000.0}
    assert relative_latency(metrics, [10_000, 12_000]) == {
        "reference_ms": 11_000.0, "wall_mean_per_reference": 30 / 11, "wall_p95_per_reference": 6.0}


def test_without_a_reference_or_a_wall_time_there_is_no_relative_latency():
    assert relative_latency({"wall_ms_mean": 30_000.0, "wall_ms_p95": 66_000.0}, []) == {
        "reference_ms": None, "wall_mean_per_reference": None, "wall_p95_per_reference": None}
    assert relative_latency({"wall_ms_mean": None, "wall_ms_p95": None}, [10_000, 10_000])[
        "wall_p95_per_reference"] is None
