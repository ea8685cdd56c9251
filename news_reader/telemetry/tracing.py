"""The process's one OpenTelemetry tracer provider and where its spans go: an OTLP/HTTP endpoint, Azure Monitor and
Prompt flow's local trace UI, each when configured."""

from __future__ import annotations

import os
import urllib.request
from collections.abc import Sequence

from azure.monitor.opentelemetry.exporter import AzureMonitorTraceExporter
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.environment_variables import OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, Decision, Sampler, SamplingResult

from news_reader import __version__
from news_reader.settings import TelemetrySettings

SERVICE = "news-reader"
# Set on the provider once configured: the names of the destinations its spans go to.
_DESTINATIONS = "_news_reader_span_destinations"


class SkipScrapes(Sampler):
    """Every span, except a trace per scrape of /metrics, which would bury the requests."""

    def should_sample(self, parent_context, trace_id, name, kind=None, attributes=None, links=None,
                      trace_state=None) -> SamplingResult:
        if attributes and attributes.get("http.route") == "/metrics":
            return SamplingResult(Decision.DROP)
        return ALWAYS_ON.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)

    def get_description(self) -> str:
        return "SkipScrapes"


def configure_tracing(settings: TelemetrySettings, processors: Sequence[SpanProcessor] = ()) -> list[str]:
    """Install the global tracer provider, or extend the SDK provider already installed, once per process: the
    in-process `processors` and a batch exporter per destination. Returns the destinations' names."""
    provider = trace.get_tracer_provider()
    if hasattr(provider, _DESTINATIONS):
        return getattr(provider, _DESTINATIONS)
    if not isinstance(provider, TracerProvider):
        resource = Resource.create({SERVICE_NAME: SERVICE, SERVICE_VERSION: __version__, "collection": SERVICE})
        provider = TracerProvider(resource=resource, sampler=SkipScrapes())
        trace.set_tracer_provider(provider)
    for processor in processors:
        provider.add_span_processor(processor)
    exporters = span_exporters(settings)
    for exporter in exporters.values():
        provider.add_span_processor(BatchSpanProcessor(exporter))
    setattr(provider, _DESTINATIONS, list(exporters))
    return list(exporters)


def add_span_exporter(exporter: SpanExporter) -> None:
    """Send the configured provider's spans to one more destination, in batches."""
    provider = trace.get_tracer_provider()
    if not hasattr(provider, _DESTINATIONS):
        raise RuntimeError("configure_tracing() first")
    provider.add_span_processor(BatchSpanProcessor(exporter))


def span_exporters(settings: TelemetrySettings) -> dict[str, SpanExporter]:
    """An exporter per destination configured: OTLP/HTTP (protobuf) when OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or
    OTEL_EXPORTER_OTLP_ENDPOINT is set, Azure Monitor with a connection string, and Prompt flow's trace UI when it
    answers at `settings.trace_ui_url`."""
    exporters: dict[str, SpanExporter] = {}
    if os.environ.get(OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) or os.environ.get(OTEL_EXPORTER_OTLP_ENDPOINT):
        exporters["otlp"] = OTLPSpanExporter()  # reads both; the generic endpoint gets the path /v1/traces
    if connection_string := azure_monitor_connection_string():
        # Without offline storage: it keeps unsent spans in the temporary folder.
        exporters["azure_monitor"] = AzureMonitorTraceExporter(connection_string=connection_string,
                                                               disable_offline_storage=True)
    trace_ui = settings.trace_ui_url.rstrip("/")
    if trace_ui and _answers(f"{trace_ui}/heartbeat"):
        exporters["promptflow_trace_ui"] = OTLPSpanExporter(endpoint=f"{trace_ui}/v1/traces")
    return exporters


def azure_monitor_connection_string() -> str | None:
    """APPLICATIONINSIGHTS_CONNECTION_STRING, else an instrumentation key as Azure ML passes it to a deployment with
    Application Insights on (read in the same order as Prompt flow's serving app)."""
    if connection_string := os.environ.get("APPLICATIONINSIGHTS_CONNECTION_STRING"):
        return connection_string
    key = os.environ.get("AML_APP_INSIGHTS_KEY") or os.environ.get("APPINSIGHTS_INSTRUMENTATIONKEY")
    return f"InstrumentationKey={key}" if key else None


def trace_ui_link(settings: TelemetrySettings) -> str:
    """This service's traces in Prompt flow's trace UI."""
    return f"{settings.trace_ui_url.rstrip('/')}/v1.0/ui/traces/?#collection={SERVICE}"


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1):
            return True
    except OSError:
        return False
