"""A fake OpenAI-compatible chat server for tests: scripted answers and faults, served on loopback."""

from __future__ import annotations

import json
import math
import os
import re
import socket
import struct
import threading
import time
from dataclasses import dataclass, field

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

_BUSINESS = re.compile(r'Consider the company "(?P<name>[^"]+)"|Is "(?P<asked>[^"]+)" a company that this news is')
_PER_BUSINESS = {"BusinessSpecificInfo", "BusinessSalience"}


@dataclass
class Reply:
    status: int = 200
    content: str | None = None
    body: str | None = None  # sent as is instead of a chat completion
    content_type: str = "text/html"  # the body's
    reset: bool = False  # abort the connection instead of answering
    finish_reason: str = "stop"
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    logprobs: list[dict] | None = None  # the choice's `logprobs.content`
    usage: dict = field(default_factory=lambda: {"prompt_tokens": 100, "completion_tokens": 20})


def answer(obj: dict, **usage: int) -> Reply:
    return Reply(content=json.dumps(obj), usage={"prompt_tokens": 100, "completion_tokens": 20, **usage})


def raw(text: str) -> Reply:
    return Reply(content=text)


def reference_answer(tokens: int = 48) -> Reply:
    """An answer to the reference request (news_reader.evaluation.reference), cut off at its length."""
    return Reply(content="1, 2, 3", finish_reason="length", usage={"prompt_tokens": 450, "completion_tokens": tokens})


def html_page(text: str = "<html><body>Gateway says hello</body></html>") -> Reply:
    """What a misconfigured proxy answers: HTTP 200, not JSON."""
    return Reply(body=text)


def not_a_completion(payload: object) -> Reply:
    """HTTP 200 with JSON that is not a chat completion, e.g. a gateway's `{"error": ...}` or `choices: []`."""
    return Reply(body=json.dumps(payload), content_type="application/json")


def truncated() -> Reply:
    """HTTP 200 with a chat completion cut off mid-body, as a dropped proxy connection leaves it."""
    return Reply(body='{"id": "chatcmpl-fake", "object": "chat.completion", "choices": [{"mess',
                 content_type="application/json")


def connection_reset() -> Reply:
    """The connection aborted (TCP reset) before any answer, as a crashed server or proxy does."""
    return Reply(reset=True)


def error(status: int, retry_after: float | None = None) -> Reply:
    headers = {"retry-after": f"{retry_after:g}"} if retry_after is not None else {}
    return Reply(status=status, headers=headers)


def slow(reply: Reply, seconds: float) -> Reply:
    reply.delay_s = seconds
    return reply


@dataclass
class Seen:
    key: str
    body: dict
    at: float


class FakeLLM:
    """Answers by the kind of request: the schema's title, plus the business for per-business analysis.

    `script(key, r1, r2, ...)` queues replies; the last one repeats. Every request is recorded in `seen`.
    """

    def __init__(self, server: HTTPServer):
        self.server = server
        self.seen: list[Seen] = []
        self.max_in_flight = 0
        self._scripts: dict[str, list[Reply]] = {}
        self._lock = threading.Lock()
        self._in_flight = 0
        server.expect_request("/v1/chat/completions", method="POST").respond_with_handler(self._handle)

    @property
    def base_url(self) -> str:
        return self.server.url_for("/v1")

    def script(self, key: str, *replies: Reply) -> None:
        self._scripts[key] = list(replies)

    def keys_seen(self) -> list[str]:
        return [s.key for s in self.seen]

    def _handle(self, request: Request) -> Response:
        body = json.loads(request.get_data())
        key = request_key(body)
        with self._lock:
            self.seen.append(Seen(key, body, time.monotonic()))
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
            queue = self._scripts.get(key)
            reply = (queue.pop(0) if len(queue) > 1 else queue[0]) if queue else error(404)
        try:
            time.sleep(reply.delay_s)
            if reply.reset:
                _reset(request)
            return _response(reply, body)
        finally:
            with self._lock:
                self._in_flight -= 1


def request_key(body: dict) -> str:
    """The schema's title (with the business for a per-business analysis or salience question); `text` for a
    request without a schema."""
    response_format = body.get("response_format") or {}
    if not response_format:
        return "text"
    title = (response_format.get("schema") or {}).get("title") or response_format.get("json_schema", {}).get("name")
    match = _BUSINESS.search(body["messages"][1]["content"])
    return f"{title}:{match['name'] or match['asked']}" if match and title in _PER_BUSINESS else str(title)


def _reset(request: Request) -> None:
    """Close the request's connection with a TCP reset. Its file descriptor then holds one end of a closed socket
    pair, so that werkzeug, answering into it, sees a dropped client and says nothing."""
    connection = request.environ["werkzeug.socket"]
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    spare, peer = socket.socketpair()
    with spare, peer:
        os.dup2(spare.fileno(), connection.fileno())  # the connection's last reference: closed, and reset


def _response(reply: Reply, body: dict) -> Response:
    if reply.body is not None:
        return Response(reply.body, status=reply.status, mimetype=reply.content_type)
    if reply.status != 200:
        payload = {"error": {"message": f"scripted HTTP {reply.status}", "type": "fake"}}
        return Response(json.dumps(payload), status=reply.status, headers=reply.headers, mimetype="application/json")
    usage = {**reply.usage, "total_tokens": reply.usage["prompt_tokens"] + reply.usage["completion_tokens"]}
    if "cached_tokens" in usage:
        usage["prompt_tokens_details"] = {"cached_tokens": usage.pop("cached_tokens")}
    completion = {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "fake"),
        "choices": [{"index": 0, "finish_reason": reply.finish_reason,
                     "message": {"role": "assistant", "content": reply.content},
                     "logprobs": None if reply.logprobs is None else {"content": reply.logprobs}}],
        "usage": usage,
    }
    return Response(json.dumps(completion), status=200, mimetype="application/json")


def category_tokens(p_true: float) -> list[dict]:
    """`{"is_about_business": false}` as a server returns its tokens, `true` at `p_true` among the alternatives."""
    def token(text: str, top: dict[str, float] | None = None) -> dict:
        ranked = [{"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in (top or {}).items()]
        logprob = top[text] if top else -0.01
        return {"token": text, "logprob": logprob, "bytes": list(text.encode()), "top_logprobs": ranked}

    alternatives = {" false": math.log(1 - p_true), " true": math.log(p_true)}
    return [token('{"is'), token("_about"), token("_business"), token('":'), token(" false", alternatives), token("}")]
