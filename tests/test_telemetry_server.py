"""The server process (`python -m deployment.serving`): Prompt flow's tracing on by default, spans to an OTLP
endpoint, Azure ML's data collector and Prompt flow's local trace UI at once, JSON events instead of Prompt flow's
tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from pytest_httpserver import HTTPServer

from tests.conftest import ARTICLE, GENERAL_INFO_ANSWER, free_port, running_server
from tests.fake_llm import FakeLLM, answer, error


@pytest.fixture(scope="module")
def collectors() -> Iterator[HTTPServer]:
    """An OTLP/HTTP endpoint and Azure ML's data collector sidecar, on one listener."""
    server = HTTPServer(host="127.0.0.1", threaded=True)
    server.expect_request("/v1/traces", method="POST").respond_with_data("")
    server.expect_request("/modeldata/log", method="POST").respond_with_data("")
    server.start()
    yield server
    server.clear()
    server.stop()


@pytest.fixture(scope="module")
def temp(tmp_path_factory) -> Path:
    """The subprocesses' temporary folder: importing promptflow leaves an empty folder in it (the offline storage of
    Prompt flow's own telemetry exporter, made even with telemetry off)."""
    return tmp_path_factory.mktemp("temp")


@pytest.fixture(scope="module")
def trace_ui(temp: Path) -> Iterator[str]:
    """Prompt flow's local trace service and UI on the tests' pf home, run as `make traces` runs it."""
    address = f"127.0.0.1:{free_port()}"
    url = f"http://{address}"
    service = subprocess.Popen([Path(sys.executable).with_name("waitress-serve"), f"--listen={address}",
                                "promptflow._cli._pf._service:get_app"], env={**os.environ, "TMPDIR": str(temp)},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_for(lambda: _answers(f"{url}/heartbeat")), "the trace service did not start"
        yield url
    finally:
        service.terminate()
        service.wait(timeout=30)


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).ok
    except requests.ConnectionError:
        return False


@pytest.fixture(scope="module")
def server(llm: FakeLLM, collectors: HTTPServer, trace_ui: str, temp: Path, tmp_path_factory
           ) -> Iterator[tuple[str, Path]]:
    """The server's URL and its output. PF_DISABLE_TRACING is left unset, as in a plain `make serve`."""
    state = tmp_path_factory.mktemp("telemetry-server")
    env = {"PF_DISABLE_TRACING": None, "TMPDIR": str(temp),
           "NEWS_READER_DATABASE_URL": f"sqlite:///{state / 'news_reader.db'}",
           "NEWS_READER_LLM_BASE_URL": llm.base_url, "NEWS_READER_LLM_MODEL": "fake",
           "NEWS_READER_LLM_MAX_RETRIES": "0", "NEWS_READER_TRACE_UI_URL": trace_ui,
           "OTEL_EXPORTER_OTLP_ENDPOINT": collectors.url_for("/"), "OTEL_BSP_SCHEDULE_DELAY": "500",
           "NEWS_READER_SERVING_COLLECT_DATA": "true", "AZUREML_MDC_ENABLED": "true",
           "AZUREML_MDC_PORT": str(collectors.port)}
    log = state / "server.log"
    with running_server(env, log) as url:
        yield url, log


def wait_for(found: Callable[[], bool], seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while not found() and time.monotonic() < deadline:
        time.sleep(0.3)
    return found()


def otlp_span_names(collectors: HTTPServer, trace_id: str | None = None) -> list[str]:
    """The names of the spans exported over OTLP so far, of one trace or all."""
    names = []
    for request, _ in list(collectors.log):
        if request.path == "/v1/traces":
            message = ExportTraceServiceRequest.FromString(request.get_data())
            names += [s.name for rs in message.resource_spans for ss in rs.scope_spans for s in ss.spans
                      if trace_id is None or s.trace_id.hex() == trace_id]
    return names


def collected_traces(collectors: HTTPServer) -> str:
    return "".join(request.get_data(as_text=True) for request, _ in list(collectors.log)
                   if request.path == "/modeldata/log" and request.headers["ce-type"] == "azureml.inference.app_traces")


def events(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]


def test_one_trace_per_request_reaches_the_otlp_endpoint_the_data_collector_and_the_trace_ui(server, collectors,
                                                                                             trace_ui):
    url, _ = server
    trace_id = requests.post(f"{url}/score", json={"article": ARTICLE}, timeout=60).json()["trace_id"]
    # The request, Prompt flow's flow and node spans (its tracing is on by default), our step and LLM call spans.
    expected = {"POST /score", "news_reader", "general_info", "news_reader.general_info", "chat fake"}
    assert wait_for(lambda: expected <= set(otlp_span_names(collectors, trace_id)))
    assert wait_for(lambda: trace_id in collected_traces(collectors))
    assert wait_for(lambda: f"0x{trace_id}" in trace_ui_line_runs(trace_ui))


def trace_ui_line_runs(trace_ui: str) -> set[str]:
    """The trace ids the trace UI lists for this service."""
    runs = requests.get(f"{trace_ui}/v1.0/LineRuns/list", params={"collection": "news-reader"}, timeout=10).json()
    return {run["trace_id"] for run in runs}


def test_a_failure_is_one_json_event_and_not_prompt_flows_traceback(server, llm):
    url, log = server
    llm.script("GeneralInfo", error(500))
    try:
        response = requests.post(f"{url}/score", json={"article": ARTICLE}, timeout=60)
    finally:
        llm.script("GeneralInfo", answer(GENERAL_INFO_ANSWER))
    assert response.status_code == 502
    assert wait_for(lambda: any(e["event"] == "request" and e["error"] == "llm_request_failed" for e in events(log)))
    text = log.read_text()
    assert "Traceback" not in text and "execution.flow" not in text and "rocket skates" not in text


def test_a_scrape_of_the_metrics_is_not_traced(server, collectors):
    url, _ = server
    assert requests.get(f"{url}/metrics", timeout=10).ok
    trace_id = requests.post(f"{url}/score", json={"article": ARTICLE}, timeout=60).json()["trace_id"]
    assert wait_for(lambda: "POST /score" in otlp_span_names(collectors, trace_id))
    assert "GET /metrics" not in otlp_span_names(collectors)
