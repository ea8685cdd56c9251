"""The HTTP layer of `python -m deployment.serving` under clients that misbehave: idle and half-sent connections,
and requests waitress cannot parse. Raw sockets, so that nothing between the test and the server tidies them up."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import ExitStack

import pytest
import requests

from tests.conftest import connect_raw, exchange_raw, running_server
from tests.fake_llm import FakeLLM

CHANNEL_TIMEOUT_S = 3


@pytest.fixture(scope="module")
def url(llm: FakeLLM, tmp_path_factory) -> Iterator[str]:
    """The server with its default limits, but silent connections closed after a few seconds."""
    log = tmp_path_factory.mktemp("limits") / "server.log"
    with running_server({"NEWS_READER_LLM_BASE_URL": llm.base_url, "NEWS_READER_LLM_MODEL": "fake",
                         "NEWS_READER_SERVING_CHANNEL_TIMEOUT_S": str(CHANNEL_TIMEOUT_S),
                         "NEWS_READER_SERVING_CLEANUP_INTERVAL_S": "1"}, log) as base:
        yield base


def test_health_answers_within_a_second_while_150_idle_or_half_sent_connections_are_open(url):
    half_sent = (b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
                 b'{"article": "')
    with ExitStack() as held:
        for n in range(150):
            sock = held.enter_context(connect_raw(url))
            if n % 2:
                sock.sendall(half_sent)
        started = time.monotonic()
        response = requests.get(f"{url}/health", timeout=5)
        assert response.status_code == 200 and time.monotonic() - started < 1


def test_a_silent_connection_is_closed_after_the_channel_timeout(url):
    with connect_raw(url) as sock:
        sock.settimeout(CHANNEL_TIMEOUT_S + 5)
        started = time.monotonic()
        assert sock.recv(1) == b""  # closed by the server
        assert time.monotonic() - started < CHANNEL_TIMEOUT_S + 3


def test_at_the_connection_limit_the_server_answers_again_once_silent_connections_time_out(llm, tmp_path):
    """What the limit costs when silent clients reach it: new connections wait in the backlog, not forever."""
    limit = 20
    env = {"NEWS_READER_LLM_BASE_URL": llm.base_url, "NEWS_READER_LLM_MODEL": "fake",
           "NEWS_READER_SERVING_CONNECTION_LIMIT": str(limit), "NEWS_READER_SERVING_CLEANUP_INTERVAL_S": "1",
           "NEWS_READER_SERVING_CHANNEL_TIMEOUT_S": str(CHANNEL_TIMEOUT_S)}
    with running_server(env, tmp_path / "server.log") as base, ExitStack() as held:
        for _ in range(limit + 5):
            held.enter_context(connect_raw(base))
        started = time.monotonic()
        response = requests.get(f"{base}/health", timeout=CHANNEL_TIMEOUT_S + 10)
        assert response.status_code == 200 and time.monotonic() - started < CHANNEL_TIMEOUT_S + 5


def _post(headers: str, body: bytes = b"") -> bytes:
    return f"POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{headers}\r\n".encode() + body


@pytest.mark.parametrize(("raw", "status", "code"), [
    (_post("Content-Length: 12abc\r\n", b'{"article":1}'), 400, "invalid_request"),
    (_post("Content-Length: 5\r\nContent-Length: 13\r\n", b'{"article":1}'), 400, "invalid_request"),
    (_post("Transfer-Encoding: chunked\r\n", b"zz\r\n{}\r\n0\r\n\r\n"), 400, "invalid_request"),
    (_post("Transfer-Encoding: gzip\r\n"), 501, "invalid_request"),
    (_post(f"X-Filler: {'a' * 20_000}\r\n"), 431, "request_too_large"),
    (_post("Content-Length: 2000000\r\n"), 413, "request_too_large"),
], ids=["bad content-length", "duplicated content-length", "malformed chunks", "unknown transfer-encoding",
        "oversized headers", "body over the limit"])
def test_a_request_waitress_cannot_parse_gets_the_json_error_body(url, raw, status, code):
    answer_status, headers, body = exchange_raw(url, raw)
    assert (answer_status, headers["content-type"]) == (status, "application/json")
    assert json.loads(body)["error"]["code"] == code
    assert headers["x-content-type-options"] == "nosniff"


def test_a_body_over_the_limit_is_refused_naming_the_setting(url):
    _, _, body = exchange_raw(url, _post("Content-Length: 2000000\r\n"))
    assert json.loads(body)["error"]["message"] == ("request body over the size limit; the limit is 1,000,000 bytes "
                                                     "(NEWS_READER_SERVING_MAX_REQUEST_BYTES)")
