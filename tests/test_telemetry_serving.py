"""Traces, JSON log events and metrics of the serving app, run in this process over the fake LLM: its spans are
kept in memory, its log lines in a buffer."""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from flask.testing import FlaskClient
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families
from pytest_httpserver import HTTPServer

from deployment.serving.app import create_app
from news_reader.extraction.llm import LLMClient
from news_reader.extraction.schemas import GeneralInfo
from news_reader.settings import LLMSettings, ServingSettings
from news_reader.telemetry.logs import configure_logging
from tests.conftest import ACME_ANSWER, ARTICLE, GLOBEX_ANSWER, REPO
from tests.fake_llm import FakeLLM, answer, error, raw

KEY = "serving-key-91c2"
AUTH = {"Authorization": f"Bearer {KEY}"}
GENERAL_INFO = answer({"title": "Acme profits soar", "summary": "Acme's profits rose."})
# USD per million tokens for the fake model; Acme's analysis reports 40 cached prompt tokens.
PRICES = "fake: {input: 1.0, cached_input: 0.5, output: 4.0}\n"
REQUEST_COST = (6 * (100 * 1.0 + 20 * 4.0) + (60 * 1.0 + 40 * 0.5 + 20 * 4.0)) / 1_000_000
STEPS = {("general_info", None), ("business_category", None), ("businesses_involved", None),
         ("business_salience", "Acme Corp"), ("business_salience", "Globex"),
         ("business_analysis", "Acme Corp"), ("business_analysis", "Globex")}


@dataclass
class Served:
    client: FlaskClient
    spans: InMemorySpanExporter
    log: io.StringIO

    def score(self, article: str = ARTICLE, **kwargs):
        return self.client.post("/score", json={"article": article}, headers=AUTH, **kwargs)

    def events(self, **fields) -> list[dict]:
        """The log events so far that have these fields."""
        lines = [json.loads(line) for line in self.log.getvalue().splitlines()]
        return [e for e in lines if all(e.get(k) == v for k, v in fields.items())]

    def spans_of(self, trace_id: str) -> list:
        return [s for s in self.spans.get_finished_spans() if format(s.context.trace_id, "032x") == trace_id]

    def metrics(self) -> dict[tuple, float]:
        """The scraped samples by name and labels, parsed with prometheus-client's own parser."""
        text = self.client.get("/metrics", headers=AUTH).get_data(as_text=True)
        return {(s.name, *sorted(s.labels.items())): s.value
                for family in text_string_to_metric_families(text) for s in family.samples}


def growth(before: dict, after: dict, name: str, **labels: str) -> float:
    key = (name, *sorted(labels.items()))
    return after.get(key, 0) - before.get(key, 0)


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeLLM]:
    server = HTTPServer(host="127.0.0.1", threaded=True)
    server.start()
    fake = FakeLLM(server)
    fake.script("GeneralInfo", GENERAL_INFO)
    fake.script("BusinessCategory", answer({"is_about_business": True}))
    fake.script("BusinessesInvolved", answer({"businesses": ["Acme Corp", "Globex"]}))
    for name in ("Acme Corp", "Globex"):
        fake.script(f"BusinessSalience:{name}", answer({"about_company": "yes"}))
    fake.script("BusinessSpecificInfo:Acme Corp", answer(ACME_ANSWER, cached_tokens=40))
    fake.script("BusinessSpecificInfo:Globex", answer(GLOBEX_ANSWER))
    yield fake
    server.clear()
    server.stop()


@pytest.fixture(scope="module")
def served(llm: FakeLLM, tmp_path_factory) -> Iterator[Served]:
    saved = dict(os.environ)
    state = tmp_path_factory.mktemp("telemetry")
    (state / "prices.yaml").write_text(PRICES)
    os.environ.update({"PF_DISABLE_TRACING": "false", "NEWS_READER_TRACE_UI_URL": "",
                       "NEWS_READER_LLM_MAX_RETRIES": "1", "NEWS_READER_LLM_MAX_RETRY_WAIT_S": "0.2",
                       "NEWS_READER_PRICES_FILE": str(state / "prices.yaml"),
                       "NEWS_READER_DATABASE_URL": f"sqlite:///{state / 'news_reader.db'}"})
    spans = InMemorySpanExporter()
    try:
        app = create_app(REPO / "flows" / "news_reader", ServingSettings(api_key=KEY),
                         LLMSettings(base_url=llm.base_url, api_key="llm-key", model="fake"))
        trace.get_tracer_provider().add_span_processor(SimpleSpanProcessor(spans))
        log = io.StringIO()
        configure_logging(log)
        yield Served(app.test_client(), spans, log)
    finally:
        spans.shutdown()
        logging.getLogger("news_reader").handlers.clear()
        logging.getLogger("news_reader").propagate = True
        os.environ.clear()
        os.environ.update(saved)


def test_each_request_is_one_trace_whose_id_is_returned(served):
    first, second = served.score().json["trace_id"], served.score().json["trace_id"]
    assert first != second
    for trace_id in (first, second):
        spans = served.spans_of(trace_id)
        [root] = [s for s in spans if s.parent is None]
        assert root.name == "POST /score"
        names = [s.name for s in spans]
        assert {"news_reader", "general_info", "business_analysis", "assemble"} <= set(names)  # flow and nodes
        assert sorted(n for n in names if n.startswith("news_reader.")) == sorted(f"news_reader.{s}" for s, _ in STEPS)
        assert names.count("chat fake") == len(STEPS)


def test_every_llm_call_span_carries_the_model_tokens_latency_and_retries(served, llm):
    llm.script("GeneralInfo", error(503, retry_after=0), GENERAL_INFO)
    try:
        trace_id = served.score().json["trace_id"]
    finally:
        llm.script("GeneralInfo", GENERAL_INFO)
    spans = served.spans_of(trace_id)
    calls = {s.parent.span_id: s for s in spans if s.name == "chat fake"}
    for step in (s for s in spans if s.name.startswith("news_reader.")):
        call = calls[step.context.span_id]
        assert call.kind == trace.SpanKind.CLIENT
        assert {k: call.attributes[k] for k in ("gen_ai.operation.name", "gen_ai.request.model",
                                                "gen_ai.response.model", "gen_ai.usage.input_tokens",
                                                "gen_ai.usage.output_tokens")} == {
            "gen_ai.operation.name": "chat", "gen_ai.request.model": "fake", "gen_ai.response.model": "fake",
            "gen_ai.usage.input_tokens": 100, "gen_ai.usage.output_tokens": 20}
        assert call.attributes["news_reader.latency_ms"] >= 0
        assert call.attributes["news_reader.retries"] == (1 if step.name == "news_reader.general_info" else 0)
        acme_analysis = (step.name, step.attributes.get("news_reader.business")) == (
            "news_reader.business_analysis", "Acme Corp")
        cached = 40 if acme_analysis else None
        assert call.attributes.get("gen_ai.usage.cache_read.input_tokens") == cached


def test_the_business_analysis_spans_name_their_business(served):
    trace_id = served.score().json["trace_id"]
    steps = [s.attributes for s in served.spans_of(trace_id) if s.name.startswith("news_reader.")]
    assert {(a["news_reader.step"], a.get("news_reader.business")) for a in steps} == STEPS


def test_each_step_and_the_request_are_json_events_with_the_trace_id(served):
    trace_id = served.score().json["trace_id"]
    steps = served.events(event="step", trace_id=trace_id)
    assert {(e["step"], e["business"]) for e in steps} == STEPS
    assert all(e["status"] == "ok" and e["model"] == "fake" and e["latency_ms"] >= 0 for e in steps)
    [request] = served.events(event="request", trace_id=trace_id)
    assert (request["outcome"], request["http_status"], request["error"]) == ("ok", 200, None)
    assert (request["llm_calls"], request["prompt_tokens"], request["completion_tokens"], request["cached_tokens"]) \
        == (7, 700, 140, 40)
    assert request["cost_usd"] == pytest.approx(REQUEST_COST)


def test_the_logs_hold_no_article_text_prompt_or_key(served):
    served.score()
    served.client.post("/score", json={"article": ARTICLE}, headers={"Authorization": "Bearer wrong"})
    text = served.log.getvalue()
    assert served.events(event="request", outcome="rejected", error="unauthorized")
    for secret in ("rocket skates", "Consider the company", KEY, "llm-key"):
        assert secret not in text


def test_a_failed_request_is_logged_and_counted_with_its_error_code_and_the_step_that_failed(served, llm):
    before = served.metrics()
    llm.script("GeneralInfo", error(500))
    try:
        response = served.score()
    finally:
        llm.script("GeneralInfo", GENERAL_INFO)
    assert response.status_code == 502
    after = served.metrics()
    assert growth(before, after, "news_reader_requests_total", outcome="failed") == 1
    assert growth(before, after, "news_reader_request_failures_total", code="llm_request_failed") == 1
    assert growth(before, after, "news_reader_step_failures_total", step="general_info",
                  error="llm_request_failed") == 1
    [request] = served.events(event="request", error="llm_request_failed")
    assert (request["outcome"], request["http_status"]) == ("failed", 502)
    [step] = served.events(event="step", trace_id=request["trace_id"], step="general_info")
    assert (step["status"], step["error"], step["retries"]) == ("error", "llm_request_failed", 1)


def test_a_failed_analysis_is_stored_with_the_tokens_its_request_event_reports(served, llm):
    """Both take what the steps spent from one place, once per request: neither may leave the other nothing."""
    llm.script("GeneralInfo", raw("not JSON at all"))  # the answer, then the repair: two calls, both unusable
    try:
        response = served.score()
    finally:
        llm.script("GeneralInfo", GENERAL_INFO)
    trace_id = response.json["trace_id"]
    [request] = served.events(event="request", trace_id=trace_id)
    stored = served.client.get(f"/api/analyses/{trace_id}", headers=AUTH).json
    assert (stored["status"], stored["error_kind"]) == ("error", "invalid_model_output")
    assert (stored["prompt_tokens"], stored["completion_tokens"]) == (request["prompt_tokens"],
                                                                      request["completion_tokens"])
    assert stored["prompt_tokens"] >= 200, "general info's two calls at least"


def test_metrics_count_requests_failures_latency_tokens_and_cost(served):
    before = served.metrics()
    served.score()
    served.score(article="   ")
    after = served.metrics()

    def grew(name: str, **labels: str) -> float:
        return growth(before, after, name, **labels)

    assert grew("news_reader_requests_total", outcome="ok") == 1
    assert grew("news_reader_requests_total", outcome="rejected") == 1
    assert grew("news_reader_request_failures_total", code="invalid_article") == 1
    assert grew("news_reader_request_duration_seconds_count", outcome="ok") == 1
    assert grew("news_reader_llm_tokens_total", model="fake", type="input") == 700
    assert grew("news_reader_llm_tokens_total", model="fake", type="cached_input") == 40
    assert grew("news_reader_llm_tokens_total", model="fake", type="output") == 140
    assert grew("news_reader_llm_calls_total", model="fake", step="business_analysis") == 2
    assert grew("news_reader_llm_calls_total", model="fake", step="business_salience") == 2
    assert grew("news_reader_llm_cost_usd_total", model="fake") == pytest.approx(REQUEST_COST)


def test_metrics_need_the_api_key_like_the_api(served):
    assert served.client.get("/metrics").status_code == 401
    response = served.client.get("/metrics", headers=AUTH)
    assert response.status_code == 200 and response.mimetype == "text/plain"


def test_content_logging_puts_the_prompt_and_answer_into_the_step_event(served, llm, monkeypatch):
    monkeypatch.setenv("NEWS_READER_LOG_CONTENT", "true")
    client = LLMClient(LLMSettings(base_url=llm.base_url, model="fake"))
    client.extract("general_info", "the prompt", GeneralInfo, 100)
    [event] = served.events(event="step", prompt="the prompt")
    assert GeneralInfo.model_validate_json(event["answer"]).title == "Acme profits soar"

