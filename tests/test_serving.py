"""The local endpoint (`python -m deployment.serving`), run as a real HTTP server over the fake LLM."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from openapi_spec_validator import validate
from promptflow._core._errors import ToolExecutionError
from promptflow._utils.exception_utils import ExceptionPresenter
from pytest_httpserver import HTTPServer

from deployment.serving.app import _failure
from deployment.serving.score_request import STATUS_OF_KIND
from news_reader.extraction import errors
from news_reader.extraction.schemas import ArticleInfo
from tests.conftest import ARTICLE, GENERAL_INFO_ANSWER, GLOBEX_ANSWER, REPO, free_port, running_server
from tests.fake_llm import FakeLLM, Reply, answer, error, not_a_completion

SERVING_KEY = "serving-key-7f3a9c"
LLM_KEY = "llm-key-52e8d1"
AUTH = {"Authorization": f"Bearer {SERVING_KEY}"}


@pytest.fixture(scope="module")
def collector() -> Iterator[HTTPServer]:
    """Stands in for Azure ML's data collector sidecar, which receives what the container collects."""
    server = HTTPServer(host="127.0.0.1", threaded=True)
    server.expect_request("/modeldata/log", method="POST").respond_with_data("")
    server.start()
    yield server
    server.clear()
    server.stop()


@pytest.fixture(scope="module")
def endpoint(llm: FakeLLM, collector: HTTPServer, tmp_path_factory) -> Iterator[tuple[str, Path]]:
    """The endpoint's base URL and its log file. An API key is configured, the LLM calls model `fake`, and data
    collection for Azure ML's model monitor is on, as in the deployment."""
    log = tmp_path_factory.mktemp("serving") / "server.log"
    env = {"NEWS_READER_SERVING_API_KEY": SERVING_KEY, "NEWS_READER_LLM_BASE_URL": llm.base_url,
           "NEWS_READER_LLM_API_KEY": LLM_KEY, "NEWS_READER_LLM_MODEL": "fake", "NEWS_READER_LLM_MAX_RETRIES": "0",
           "NEWS_READER_SERVING_MAX_REQUEST_BYTES": "200000", "NEWS_READER_SERVING_COLLECT_DATA": "true",
           "PF_DISABLE_TRACING": "false", "AZUREML_MDC_ENABLED": "true", "AZUREML_MDC_PORT": str(collector.port)}
    with running_server(env, log) as url:
        yield url, log


def score(endpoint, body, headers=AUTH, **kwargs) -> requests.Response:
    url, _ = endpoint
    return requests.post(f"{url}/score", json=body, headers=headers, timeout=60, **kwargs)


def test_an_article_is_analysed_with_the_flows_outputs_and_a_trace_id(endpoint):
    response = score(endpoint, {"article": ARTICLE})
    assert response.status_code == 200, response.text
    info = ArticleInfo.model_validate(response.json())
    assert [b.business for b in info.business_info] == ["Acme Corp", "Globex"]
    assert len(info.trace_id) == 32 and int(info.trace_id, 16)
    assert score(endpoint, {"article": ARTICLE}).json()["trace_id"] != info.trace_id


def test_concurrent_requests_each_get_their_own_result(endpoint):
    with ThreadPoolExecutor(max_workers=4) as pool:
        responses = list(pool.map(lambda _: score(endpoint, {"article": ARTICLE}), range(4)))
    assert [r.status_code for r in responses] == [200] * 4
    assert len({r.json()["trace_id"] for r in responses}) == 4
    assert all(len(r.json()["business_info"]) == 2 for r in responses)


def test_a_callers_trace_context_does_not_make_two_requests_share_a_trace_id(endpoint):
    caller = {**AUTH, "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
    first, second = (score(endpoint, {"article": ARTICLE}, headers=caller).json()["trace_id"] for _ in range(2))
    assert first != second and "0af7651916cd43dd8448eb211c80319c" not in (first, second)


def test_only_scoring_may_be_called_from_other_web_origins(endpoint):
    url, _ = endpoint
    origin = {"Origin": "https://elsewhere.example"}
    assert score(endpoint, {"article": ARTICLE}, headers={**AUTH, **origin}).headers[
        "Access-Control-Allow-Origin"] in ("*", origin["Origin"])
    history = requests.get(f"{url}/api/analyses", headers={**AUTH, **origin}, timeout=10)
    assert history.ok and "Access-Control-Allow-Origin" not in history.headers


def test_every_llm_call_uses_the_configured_model_and_key(endpoint, llm):
    score(endpoint, {"article": ARTICLE})
    assert llm.seen and {s.body["model"] for s in llm.seen} == {"fake"}
    assert {r.headers["Authorization"] for r, _ in llm.server.log} == {f"Bearer {LLM_KEY}"}


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": SERVING_KEY}],
                         ids=["no key", "wrong key", "no scheme"])
def test_a_request_without_the_right_api_key_is_refused(endpoint, headers):
    response = score(endpoint, {"article": ARTICLE}, headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.json()["error"]["code"] == "unauthorized"


@pytest.mark.parametrize(("body", "content_type", "status", "code", "says"), [
    (b'{"article": "x"', "application/json", 400, "invalid_request", "not valid JSON"),
    (b'["an article"]', "application/json", 400, "invalid_request", "JSON object"),
    (b"{}", "application/json", 422, "invalid_field", "article: Field required"),
    (b'{"article": 42}', "application/json", 422, "invalid_field", "article: Input should be a valid string"),
    (b'{"article": "x", "lang": "en"}', "application/json", 422, "invalid_field", "lang: Extra inputs"),
    (b'{"article": " \\n "}', "application/json", 422, "invalid_article", "article is empty"),
    (json.dumps({"article": "\x01\x02\x03" * 50}).encode(), "application/json", 422, "invalid_article", "binary"),
    (json.dumps({"article": "word " * 5000}).encode(), "application/json", 413, "article_too_long", "limit is 20,000"),
    (b"article=hello", "application/x-www-form-urlencoded", 415, "unsupported_media_type", "application/json"),
    (b'{"article": ' + b"[" * 90_000 + b"]" * 90_000 + b"}", "application/json", 400, "invalid_request",
     "not valid JSON"),
    (b'{"article": ' + b"7" * 5000 + b"}", "application/json", 400, "invalid_request", "not valid JSON"),
], ids=["bad json", "not an object", "missing field", "wrong type", "extra field", "empty", "binary", "too long",
        "form post", "deep nesting", "huge number"])
def test_a_bad_request_gets_a_4xx_that_says_what_is_wrong(endpoint, llm, body, content_type, status, code, says):
    url, _ = endpoint
    calls = len(llm.seen)
    response = requests.post(f"{url}/score", data=body, headers={**AUTH, "Content-Type": content_type}, timeout=30)
    assert (response.status_code, response.json()["error"]["code"]) == (status, code)
    assert says in response.json()["error"]["message"]
    assert len(llm.seen) == calls


def test_an_answer_the_client_cannot_accept_is_refused_before_the_flow_runs(endpoint, llm):
    calls = len(llm.seen)
    response = score(endpoint, {"article": ARTICLE}, headers={**AUTH, "Accept": "text/plain"})
    assert (response.status_code, response.json()["error"]["code"]) == (406, "not_acceptable")
    assert len(llm.seen) == calls


@pytest.mark.parametrize(("method", "route", "allowed"), [
    ("GET", "/score", "POST"), ("GET", "/feedback", "POST"), ("POST", "/api/analyses", "GET")])
def test_a_method_the_route_does_not_take_is_a_json_405_that_names_the_allowed_ones(endpoint, method, route, allowed):
    url, _ = endpoint
    response = requests.request(method, f"{url}{route}", headers=AUTH, timeout=10)
    assert (response.status_code, response.json()["error"]["code"]) == (405, "method_not_allowed")
    assert allowed in response.headers["Allow"].split(", ")


@pytest.mark.parametrize("route", ["/feedback", "/nowhere"])
def test_routes_other_than_probes_documents_and_pages_need_the_key(endpoint, route):
    url, _ = endpoint
    assert requests.post(f"{url}{route}", json={"x": 1}, timeout=10).status_code == 401


def test_an_unknown_route_is_a_json_404(endpoint):
    url, _ = endpoint
    response = requests.get(f"{url}/nowhere", headers=AUTH, timeout=10)
    assert (response.status_code, response.json()["error"]["code"]) == (404, "not_found")


@pytest.mark.parametrize(("page", "content_type"), [
    ("/", "text/html"), ("/analyze", "text/html"), ("/history", "text/html"), ("/dashboard", "text/html"),
    ("/web/static/app.js", "javascript")])
def test_the_web_pages_load_without_the_key(endpoint, page, content_type):
    """The pages hold no data: their scripts fetch it from the API with the user's key."""
    url, _ = endpoint
    response = requests.get(f"{url}{page}", timeout=10)
    assert response.status_code == 200 and content_type in response.headers["Content-Type"]


@pytest.mark.parametrize(("method", "route"), [
    ("GET", "/"), ("GET", "/web/static/app.js"), ("GET", "/health"), ("POST", "/score"), ("GET", "/nowhere")])
def test_pages_and_api_answers_carry_the_security_headers(endpoint, method, route):
    url, _ = endpoint
    headers = requests.request(method, f"{url}{route}", json={"article": ARTICLE}, headers=AUTH, timeout=60).headers
    policy = headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy and "unsafe-inline" not in policy
    assert (headers["X-Content-Type-Options"], headers["X-Frame-Options"]) == ("nosniff", "DENY")
    assert headers["Referrer-Policy"] == "no-referrer"


def test_an_article_with_a_lone_surrogate_is_refused_before_any_llm_call_and_logged_once(endpoint, llm):
    url, log = endpoint
    calls, logged = len(llm.seen), _request_events(log)
    body = b'{"article": "' + ARTICLE.replace("\n", "\\n").encode().replace(b"rocket", b"\\ud800 rocket") + b'"}'
    response = requests.post(f"{url}/score", data=body, headers={**AUTH, "Content-Type": "application/json"},
                             timeout=30)
    assert (response.status_code, response.json()["error"]["code"]) == (422, "invalid_article")
    assert "lone surrogate (U+D800)" in response.json()["error"]["message"]
    assert len(llm.seen) == calls
    # The event is logged (synchronously) before the answer is sent.
    assert [(e["outcome"], e["http_status"], e["error"]) for e in _request_events(log)[len(logged):]] == [
        ("rejected", 422, "invalid_article")]


def _request_events(log: Path) -> list[dict]:
    lines = (json.loads(line) for line in log.read_text().splitlines() if line.startswith("{"))
    return [event for event in lines if event.get("event") == "request"]


def test_a_body_over_the_size_limit_is_refused_with_413(endpoint):
    response = score(endpoint, {"article": "word " * 50_000})
    assert response.status_code == 413
    assert "limit is 200,000" in response.json()["error"]["message"]


def test_a_rate_limited_llm_gives_429_with_the_reason(endpoint, llm):
    llm.script("GeneralInfo", error(429))
    try:
        response = score(endpoint, {"article": ARTICLE})
    finally:
        llm.script("GeneralInfo", answer(GENERAL_INFO_ANSWER))
    assert response.status_code == 429
    assert response.json()["error"] == {"code": "llm_rate_limited",
                                        "message": "the LLM is rate limited: scripted HTTP 429"}
    assert re.fullmatch(r"[0-9a-f]{32}", response.json()["trace_id"]), "a request that reached the flow has a trace"


@pytest.mark.parametrize("reply", [not_a_completion({"error": {"message": "upstream overloaded"}}),
                                   not_a_completion({"choices": []}), Reply(content=None)],
                         ids=["error object", "no choices", "no content"])
def test_an_llm_answer_that_is_not_a_chat_completion_gives_502_with_a_trace_id(endpoint, llm, reply):
    llm.script("GeneralInfo", reply)
    try:
        response = score(endpoint, {"article": ARTICLE})
    finally:
        llm.script("GeneralInfo", answer(GENERAL_INFO_ANSWER))
    assert (response.status_code, response.json()["error"]["code"]) == (502, "llm_request_failed")
    assert response.json()["error"]["message"].startswith("the LLM's answer is not a chat completion: ")
    assert re.fullmatch(r"[0-9a-f]{32}", response.json()["trace_id"])


def test_a_business_whose_llm_answer_is_not_a_chat_completion_is_reported_and_the_others_kept(endpoint, llm):
    llm.script("BusinessSpecificInfo:Globex", not_a_completion({"choices": []}))
    try:
        response = score(endpoint, {"article": ARTICLE})
    finally:
        llm.script("BusinessSpecificInfo:Globex", answer(GLOBEX_ANSWER))
    assert response.status_code == 200, response.text
    info = ArticleInfo.model_validate(response.json())
    assert [b.business for b in info.business_info] == ["Acme Corp"]
    assert [(e.business, e.kind) for e in info.errors] == [("Globex", "llm_request_failed")]


def test_health_version_and_the_openapi_document_need_no_key(endpoint):
    url, _ = endpoint
    assert requests.get(f"{url}/health", timeout=5).json()["status"] == "Healthy"
    about = requests.get(f"{url}/version", timeout=5).json()
    assert about["model"] == "fake" and about["flow"] == "news_reader" and about["news_reader"]
    document = requests.get(f"{url}/openapi.json", timeout=5).json()
    validate(document)
    assert document["paths"]["/score"]["post"]["security"] == [{"apiKey": []}]


def test_inputs_outputs_and_spans_go_to_azure_mls_data_collector(endpoint, collector):
    trace_id = score(endpoint, {"article": ARTICLE}).json()["trace_id"]

    def collected(collection: str, text: str) -> bool:
        return any(r.headers["ce-type"] == f"azureml.inference.{collection}" and text in r.get_data(as_text=True)
                   for r, _ in list(collector.log))

    expected = [("model_inputs", "rocket skates"), ("model_outputs", trace_id), ("app_traces", trace_id)]
    deadline = time.monotonic() + 30  # spans are sent in batches, every 5 s
    while not all(collected(*e) for e in expected) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert [e for e in expected if not collected(*e)] == []


def test_no_key_or_article_text_reaches_the_server_log(endpoint):
    score(endpoint, {"article": ARTICLE})
    score(endpoint, {"article": ARTICLE}, headers={"Authorization": "Bearer wrong"})
    _, log = endpoint
    text = log.read_text()
    assert "News Reader on http://" in text
    for secret in (SERVING_KEY, LLM_KEY, "rocket skates"):
        assert secret not in text


def _reported(exception: Exception) -> dict:
    """A node's failure as Prompt flow reports it in the flow run's error: serialized, the exception itself gone."""
    try:
        raise ToolExecutionError(node_name="general_info") from exception  # how Prompt flow wraps a node's exception
    except ToolExecutionError as failure:
        return ExceptionPresenter.create(failure).to_dict()


@pytest.mark.parametrize("error", [errors.InvalidArticle("it failed"), errors.ArticleTooLong("it failed"),
                                   errors.LLMUnavailable("it failed"), errors.LLMTimeout("it failed"),
                                   errors.LLMRateLimited("it failed"), errors.LLMRequestFailed("it failed"),
                                   errors.InvalidModelOutput("it failed", raw_output="{")],
                         ids=lambda error: type(error).__name__)
def test_a_failed_node_is_answered_with_its_errors_kind_and_status(error):
    assert _failure(_reported(error)) == (error.kind, "it failed")
    assert error.kind in STATUS_OF_KIND


def test_a_node_failure_of_another_kind_is_a_flow_failure():
    kind, message = _failure(_reported(ValueError("unexpected")))
    assert kind == "flow_failed" and "(ValueError) unexpected" in message


def _start(env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess:
    """`python -m deployment.serving` run to its end, with `env` on top of this process's and its temporary files
    in `tmp_path`/tmp."""
    (tmp_path / "tmp").mkdir(exist_ok=True)
    return subprocess.run([sys.executable, "-m", "deployment.serving"], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "TMPDIR": str(tmp_path / "tmp"), **env}, timeout=120)


@pytest.mark.parametrize(("problem", "says"), [
    ("port in use", "Error: cannot listen on 127.0.0.1:"),
    ("unknown database", "Error: database (NEWS_READER_DATABASE_URL): Can't load plugin"),
    ("database folder cannot be made", "Error: database (NEWS_READER_DATABASE_URL): "),
])
def test_a_server_that_cannot_start_says_why_in_one_line(tmp_path, problem, says):
    (tmp_path / "a-file").write_text("")
    databases = {"unknown database": "nonsense://",
                 "database folder cannot be made": f"sqlite:///{tmp_path / 'a-file' / 'folder' / 'db.sqlite'}"}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1] if problem == "port in use" else free_port()
        env = {"NEWS_READER_SERVING_PORT": str(port), "NEWS_READER_LLM_BASE_URL": "http://127.0.0.1:9/v1"}
        if problem in databases:
            env["NEWS_READER_DATABASE_URL"] = databases[problem]
        result = _start(env, tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith(says) and result.stderr.count("\n") == 1, result.stderr
    assert not list((tmp_path / "tmp").glob("news-reader-flow-*")), "staged flow left behind"


def test_a_killed_servers_staged_copy_is_removed_at_the_next_start_and_a_running_ones_is_kept(llm, tmp_path):
    env = {"NEWS_READER_LLM_BASE_URL": llm.base_url, "NEWS_READER_LLM_MODEL": "fake", "TMPDIR": str(tmp_path)}
    killed = subprocess.Popen([sys.executable, "-m", "deployment.serving"], cwd=REPO, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL,
                              env={**os.environ, **env, "NEWS_READER_SERVING_PORT": str(free_port())})
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob("news-reader-flow-*/*/flow.dag.yaml")) and time.monotonic() < deadline:
        time.sleep(0.2)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    (orphan,) = tmp_path.glob("news-reader-flow-*")
    in_use = tmp_path / f"news-reader-flow-{os.getpid()}-running"  # named as a running server's copy: this process's
    in_use.mkdir()
    with running_server(env, tmp_path / "server.log"):
        assert not orphan.exists() and in_use.exists()


def test_a_server_started_directly_writes_nothing_into_the_home_folder(llm, tmp_path):
    """Not through make, whose environment points the libraries' caches into the repo's state folder."""
    home = tmp_path / "home"
    home.mkdir()
    env = {"HOME": str(home), "MPLCONFIGDIR": None, "XDG_CONFIG_HOME": None, "XDG_CACHE_HOME": None,
           "PF_HOME_DIRECTORY": None, "NEWS_READER_LLM_BASE_URL": llm.base_url, "NEWS_READER_LLM_MODEL": "fake"}
    with running_server(env, tmp_path / "server.log") as url:
        assert requests.get(f"{url}/api/dashboard.png", timeout=60).status_code == 200
    assert list(home.rglob("*")) == []
