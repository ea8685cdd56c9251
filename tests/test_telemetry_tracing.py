"""Where spans go: OTLP/HTTP, Azure Monitor and Prompt flow's trace UI, each sent to a real listener on loopback."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import Decision
from pytest_httpserver import HTTPServer

from news_reader.settings import TelemetrySettings
from news_reader.telemetry.tracing import SkipScrapes, span_exporters, trace_ui_link
from tests.conftest import free_port

NO_TRACE_UI = TelemetrySettings(trace_ui_url="")
SPAN_DESTINATION_VARIABLES = ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                              "APPLICATIONINSIGHTS_CONNECTION_STRING", "AML_APP_INSIGHTS_KEY",
                              "APPINSIGHTS_INSTRUMENTATIONKEY"]


@pytest.fixture(autouse=True)
def no_destination(monkeypatch):
    for name in SPAN_DESTINATION_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL", "true")  # no self-telemetry to Microsoft


@pytest.fixture
def listener() -> Iterator[HTTPServer]:
    server = HTTPServer(host="127.0.0.1")
    server.start()
    yield server
    server.clear()
    server.stop()


def send_span(exporter: SpanExporter, name: str = "news_reader.general_info") -> str:
    """Export one finished span through `exporter`; its trace id."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("test").start_as_current_span(name) as span:
        span.set_attribute("gen_ai.usage.input_tokens", 100)
    provider.shutdown()
    return format(span.get_span_context().trace_id, "032x")


def received_spans(server: HTTPServer, path: str) -> list:
    """The spans posted to `path`, each post checked to be OTLP protobuf."""
    spans = []
    for request, _ in server.log:
        if request.path != path:
            continue
        assert request.headers["Content-Type"] == "application/x-protobuf"
        message = ExportTraceServiceRequest.FromString(request.get_data())
        spans += [s for rs in message.resource_spans for ss in rs.scope_spans for s in ss.spans]
    return spans


def test_nothing_is_exported_without_a_destination():
    assert span_exporters(NO_TRACE_UI) == {}


def test_an_otlp_endpoint_gets_protobuf_spans_at_its_per_signal_path(listener, monkeypatch):
    listener.expect_request("/v1/traces", method="POST").respond_with_data("")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", listener.url_for("/"))
    exporters = span_exporters(NO_TRACE_UI)
    assert list(exporters) == ["otlp"]
    trace_id = send_span(exporters["otlp"])
    [span] = received_spans(listener, "/v1/traces")
    assert (span.name, span.trace_id.hex()) == ("news_reader.general_info", trace_id)
    assert [(a.key, a.value.int_value) for a in span.attributes] == [("gen_ai.usage.input_tokens", 100)]


def test_a_traces_endpoint_is_used_as_given(listener, monkeypatch):
    listener.expect_request("/collector/traces", method="POST").respond_with_data("")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")  # the per-signal variable wins
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", listener.url_for("/collector/traces"))
    send_span(span_exporters(NO_TRACE_UI)["otlp"])
    assert len(received_spans(listener, "/collector/traces")) == 1


def test_azure_monitor_gets_spans_at_the_connection_strings_endpoint_and_nothing_is_stored(listener, monkeypatch):
    listener.expect_request("/v2.1/track", method="POST").respond_with_json(
        {"itemsReceived": 1, "itemsAccepted": 1, "errors": []})
    monkeypatch.setenv("APPLICATIONINSIGHTS_CONNECTION_STRING", "InstrumentationKey=00000000-0000-0000-0000-"
                       f"000000000000;IngestionEndpoint={listener.url_for('/')}")
    exporter = span_exporters(NO_TRACE_UI)["azure_monitor"]
    assert exporter.storage is None, "offline storage would write to the temporary folder"
    send_span(exporter)
    # The exporter may also post its own usage statistics (statsbeat): look for the span among everything sent.
    envelopes = [e for request, _ in listener.log for e in json.loads(request.get_data())]
    spans = [e for e in envelopes if e["data"]["baseType"] in ("RemoteDependencyData", "RequestData")]
    assert [e["data"]["baseData"]["name"] for e in spans] == ["news_reader.general_info"]


def test_the_instrumentation_key_azure_ml_passes_also_turns_azure_monitor_on(monkeypatch):
    monkeypatch.setenv("AML_APP_INSIGHTS_KEY", "00000000-0000-0000-0000-000000000000")
    assert list(span_exporters(NO_TRACE_UI)) == ["azure_monitor"]


def test_prompt_flows_trace_ui_gets_spans_when_it_answers(listener):
    listener.expect_request("/heartbeat").respond_with_json({"promptflow": "1.18.5"})
    listener.expect_request("/v1/traces", method="POST").respond_with_data("Traces received")
    settings = TelemetrySettings(trace_ui_url=listener.url_for("/"))
    exporters = span_exporters(settings)
    assert list(exporters) == ["promptflow_trace_ui"]
    send_span(exporters["promptflow_trace_ui"])
    assert [request.path for request, _ in listener.log] == ["/heartbeat", "/v1/traces"]
    assert len(received_spans(listener, "/v1/traces")) == 1
    assert trace_ui_link(settings) == f"{listener.url_for('/v1.0/ui/traces/')}?#collection=news-reader"


def test_prompt_flows_trace_ui_is_left_out_when_nothing_answers():
    assert span_exporters(TelemetrySettings(trace_ui_url=f"http://127.0.0.1:{free_port()}")) == {}


@pytest.mark.parametrize(("route", "decision"), [("/metrics", Decision.DROP), ("/score", Decision.RECORD_AND_SAMPLE),
                                                 (None, Decision.RECORD_AND_SAMPLE)])
def test_only_scrapes_of_the_metrics_go_untraced(route, decision):
    attributes = {"http.route": route} if route else {}
    assert SkipScrapes().should_sample(None, 1, "GET", attributes=attributes).decision == decision
