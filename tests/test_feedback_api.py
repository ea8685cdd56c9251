"""Feedback and history over HTTP, through the real server (`python -m deployment.serving`) over the fake LLM, with
its database in a temporary folder."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from news_reader.store import Store
from tests.conftest import ARTICLE, GENERAL_INFO_ANSWER, REPO, running_server
from tests.fake_llm import FakeLLM, answer, error, raw

KEY = "feedback-key-3c1d"
AUTH = {"Authorization": f"Bearer {KEY}"}
CALLS_PER_ARTICLE = 7  # general info, category, businesses, and per company (two) a salience question and an analysis


@pytest.fixture(scope="module")
def server(llm: FakeLLM, tmp_path_factory) -> Iterator[tuple[str, str]]:
    """The server's base URL and its database URL. Its writes wait half a second for another writer's lock (instead
    of 30 s), so that a locked database fails them quickly."""
    folder = tmp_path_factory.mktemp("feedback-api")
    database = f"sqlite:///{folder / 'news_reader.db'}"
    env = {"NEWS_READER_SERVING_API_KEY": KEY, "NEWS_READER_LLM_BASE_URL": llm.base_url,
           "NEWS_READER_LLM_API_KEY": "llm-key", "NEWS_READER_LLM_MODEL": "fake", "NEWS_READER_LLM_MAX_RETRIES": "0",
           "NEWS_READER_DATABASE_URL": f"{database}?timeout=0.5"}
    with running_server(env, folder / "server.log") as url:
        yield url, database


def score(url: str) -> dict:
    response = requests.post(f"{url}/score", json={"article": ARTICLE}, headers=AUTH, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


def post_feedback(url: str, body, **kwargs) -> requests.Response:
    return requests.post(f"{url}/feedback", json=body, headers={**AUTH, **kwargs.pop("headers", {})}, timeout=10,
                         **kwargs)


def newest(url: str) -> dict:
    return requests.get(f"{url}/api/analyses?limit=1", headers=AUTH, timeout=10).json()[0]


def feedback_on(url: str, trace_id: str) -> list[dict]:
    return requests.get(f"{url}/api/analyses/{trace_id}", headers=AUTH, timeout=10).json()["feedback"]


def metric(url: str, name: str, **labels: str) -> float:
    """The scraped value of one sample."""
    text = requests.get(f"{url}/metrics", headers=AUTH, timeout=10).text
    return next((s.value for family in text_string_to_metric_families(text) for s in family.samples
                 if s.name == name and s.labels == labels), 0.0)


def test_a_scored_article_is_recorded_with_its_answer_model_variant_latency_and_tokens(server):
    url, database = server
    result = score(url)
    stored = requests.get(f"{url}/api/analyses/{result['trace_id']}", headers=AUTH, timeout=10).json()
    assert (stored["article"], stored["result"], stored["status"]) == (ARTICLE, result, "ok")
    assert (stored["model"], stored["variant"], stored["error_kind"]) == ("fake", "default", None)
    assert (stored["prompt_tokens"], stored["completion_tokens"]) == (100 * CALLS_PER_ARTICLE, 20 * CALLS_PER_ARTICLE)
    assert stored["cached_tokens"] is None and stored["cost_usd"] is None
    assert stored["latency_ms"] > 0 and stored["feedback"] == []
    store = Store(database)
    assert store.analysis(result["trace_id"]).result == result, "in the database the server was given"
    store.close()


def test_a_stored_analysis_is_answered_as_the_flow_answered_with_the_stored_header(server):
    url, _ = server
    response = requests.post(f"{url}/score", json={"article": ARTICLE}, headers=AUTH, timeout=60)
    assert response.headers["X-Analysis-Stored"] == "true" and "stored" not in response.json()


def test_an_analysis_the_locked_database_cannot_store_is_answered_as_not_stored_and_counted(server):
    """Issue 14, defect 3: with the file locked past the busy timeout the answer gave a trace id that feedback was
    then refused for (404), and nothing said so."""
    url, database = server
    before = metric(url, "news_reader_analyses_not_stored_total", reason="database_unavailable")
    other_writer = sqlite3.connect(database.removeprefix("sqlite:///"), isolation_level=None)
    other_writer.execute("BEGIN IMMEDIATE")
    try:
        response = requests.post(f"{url}/score", json={"article": ARTICLE}, headers=AUTH, timeout=60)
    finally:
        other_writer.close()
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["stored"], response.headers["X-Analysis-Stored"]) == (False, "false")
    assert len(answer["business_info"]) == 2, "the analysis itself is answered"
    assert metric(url, "news_reader_analyses_not_stored_total", reason="database_unavailable") == before + 1
    assert post_feedback(url, {"trace_id": answer["trace_id"], "rating": "up"}).status_code == 404, "as it said"


def test_feedback_is_stored_with_the_analysis_variant_and_model_and_answered_with_201(server):
    url, _ = server
    trace_id = score(url)["trace_id"]
    response = post_feedback(url, {"trace_id": trace_id, "rating": "up", "comment": "Useful."})
    assert response.status_code == 201, response.text
    stored = response.json()
    assert {k: stored[k] for k in ("trace_id", "rating", "comment", "corrections", "variant", "model")} == {
        "trace_id": trace_id, "rating": "up", "comment": "Useful.", "corrections": [], "variant": "default",
        "model": "fake"}
    assert stored["created_at"].endswith("Z")
    assert newest(url)["feedback"] == [stored]


def test_corrections_are_stored_per_company(server):
    url, _ = server
    trace_id = score(url)["trace_id"]
    corrections = [{"business": "Globex", "stock_price_change": "none"}]
    response = post_feedback(url, {"trace_id": trace_id, "rating": "down", "corrections": corrections})
    assert response.status_code == 201 and response.json()["corrections"] == corrections


def test_feedback_sent_again_with_its_idempotency_key_is_stored_once_and_answered_as_the_first_time(server):
    url, _ = server
    trace_id = score(url)["trace_id"]
    body, key = {"trace_id": trace_id, "rating": "up", "comment": "Useful."}, {"Idempotency-Key": "retry-3f9a"}
    counted = metric(url, "news_reader_feedback_total", rating="up")
    first = post_feedback(url, body, headers=key)
    again = post_feedback(url, body, headers=key)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json() and feedback_on(url, trace_id) == [first.json()]
    assert ("Idempotent-Replayed" in first.headers, again.headers["Idempotent-Replayed"]) == (False, "true")
    assert metric(url, "news_reader_feedback_total", rating="up") == counted + 1, "one rating"


def test_an_idempotency_key_used_again_for_other_feedback_is_422_and_stores_nothing(server):
    url, _ = server
    trace_id = score(url)["trace_id"]
    key = {"Idempotency-Key": "reused-77c1"}
    assert post_feedback(url, {"trace_id": trace_id, "rating": "up"}, headers=key).status_code == 201
    other = post_feedback(url, {"trace_id": trace_id, "rating": "down"}, headers=key)
    assert (other.status_code, other.json()["error"]["code"]) == (422, "invalid_field")
    assert "'reused-77c1' was used for other feedback" in other.json()["error"]["message"]
    assert trace_id not in other.json()["error"]["message"]
    assert [f["rating"] for f in feedback_on(url, trace_id)] == ["up"]


def test_one_idempotency_key_on_feedback_for_two_analyses_stores_both(server):
    """A key is unique per analysis: another analysis's feedback under it is neither refused nor told that trace id."""
    url, _ = server
    first, second = score(url)["trace_id"], score(url)["trace_id"]
    key = {"Idempotency-Key": "shared-5e2b"}
    assert post_feedback(url, {"trace_id": first, "rating": "up"}, headers=key).status_code == 201
    other = post_feedback(url, {"trace_id": second, "rating": "down"}, headers=key)
    assert (other.status_code, "Idempotent-Replayed" in other.headers) == (201, False), other.text
    assert first not in other.text
    assert [[f["rating"] for f in feedback_on(url, t)] for t in (first, second)] == [["up"], ["down"]]


def test_an_idempotency_key_in_quotes_as_the_ietf_draft_writes_it_is_the_same_key(server):
    url, _ = server
    trace_id = score(url)["trace_id"]
    body = {"trace_id": trace_id, "rating": "down"}
    first = post_feedback(url, body, headers={"Idempotency-Key": '"quoted-1"'})
    again = post_feedback(url, body, headers={"Idempotency-Key": "quoted-1"})
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"


@pytest.mark.parametrize("key", ["", '""', "two words", "k" * 256], ids=["empty", "empty quotes", "space", "long"])
def test_a_malformed_idempotency_key_is_422(server, key):
    url, _ = server
    trace_id = score(url)["trace_id"]
    response = post_feedback(url, {"trace_id": trace_id, "rating": "up"}, headers={"Idempotency-Key": key})
    assert (response.status_code, response.json()["error"]["code"]) == (422, "invalid_field")
    assert "Idempotency-Key: 1 to 255 printable ASCII characters" in response.json()["error"]["message"]
    assert feedback_on(url, trace_id) == []


def test_feedback_on_an_unknown_trace_id_is_404(server):
    url, _ = server
    response = post_feedback(url, {"trace_id": "0" * 32, "rating": "up"})
    assert (response.status_code, response.json()["error"]["code"]) == (404, "not_found")
    assert "0" * 32 in response.json()["error"]["message"]


@pytest.mark.parametrize(("body", "content_type", "status", "code", "says"), [
    (b'{"trace_id": "x", ', "application/json", 400, "invalid_request", "not valid JSON"),
    (b'["up"]', "application/json", 400, "invalid_request", "JSON object"),
    (b'{"rating": "up"}', "application/json", 422, "invalid_field", "trace_id: Field required"),
    (b'{"trace_id": "x", "rating": "great"}', "application/json", 422, "invalid_field", "rating"),
    (b'{"trace_id": "x", "rating": "up", "stars": 5}', "application/json", 422, "invalid_field", "stars"),
    (b'{"trace_id": "x", "rating": "up", "comment": "' + b"x" * 2001 + b'"}', "application/json", 422,
     "invalid_field", "comment"),
    (b"rating=up", "application/x-www-form-urlencoded", 415, "unsupported_media_type", "application/json"),
], ids=["bad json", "not an object", "no trace id", "bad rating", "extra field", "long comment", "form post"])
def test_malformed_feedback_gets_a_4xx_that_says_what_is_wrong(server, body, content_type, status, code, says):
    url, _ = server
    response = requests.post(f"{url}/feedback", data=body, headers={**AUTH, "Content-Type": content_type},
                             timeout=10)
    assert (response.status_code, response.json()["error"]["code"]) == (status, code)
    assert says in response.json()["error"]["message"]


def test_a_correction_of_a_company_the_analysis_does_not_name_is_422(server):
    url, _ = server
    trace_id = score(url)["trace_id"]
    response = post_feedback(url, {"trace_id": trace_id, "rating": "down",
                                   "corrections": [{"business": "Initech", "stock_price_change": "none"}]})
    assert (response.status_code, response.json()["error"]["code"]) == (422, "invalid_field")
    assert "Initech" in response.json()["error"]["message"]


@pytest.mark.parametrize(("method", "route"), [("POST", "/feedback"), ("GET", "/api/analyses"),
                                               ("GET", "/api/analyses/abc")])
def test_feedback_and_history_need_the_api_key(server, method, route):
    url, _ = server
    response = requests.request(method, f"{url}{route}", json={"trace_id": "abc", "rating": "up"}, timeout=10)
    assert (response.status_code, response.json()["error"]["code"]) == (401, "unauthorized")


def test_a_request_refused_before_the_flow_runs_is_not_an_analysis(server):
    url, _ = server
    last = score(url)["trace_id"]
    response = requests.post(f"{url}/score", json={"article": " "}, headers=AUTH, timeout=10)
    assert response.status_code == 422
    assert newest(url)["trace_id"] == last


def test_a_failed_llm_call_is_recorded_with_the_kind_of_failure(server, llm):
    url, _ = server
    llm.script("GeneralInfo", error(429))
    try:
        response = requests.post(f"{url}/score", json={"article": ARTICLE}, headers=AUTH, timeout=60)
    finally:
        llm.script("GeneralInfo", answer(GENERAL_INFO_ANSWER))
    assert response.status_code == 429
    recorded = newest(url)
    assert (recorded["status"], recorded["error_kind"], recorded["result"]) == ("error", "llm_rate_limited", None)
    assert recorded["article"] == ARTICLE and recorded["trace_id"] == response.json()["trace_id"]


def test_a_failed_analysis_is_stored_with_what_its_llm_calls_spent(server, llm):
    url, _ = server
    llm.script("GeneralInfo", raw("not JSON at all"))  # the answer, then the repair: two calls, both unusable
    try:
        response = requests.post(f"{url}/score", json={"article": ARTICLE}, headers=AUTH, timeout=60)
    finally:
        llm.script("GeneralInfo", answer(GENERAL_INFO_ANSWER))
    assert response.json()["error"]["code"] == "invalid_model_output"
    recorded = newest(url)
    assert recorded["trace_id"] == response.json()["trace_id"]
    assert recorded["prompt_tokens"] >= 200 and recorded["completion_tokens"] >= 40


def test_a_database_that_cannot_be_used_is_a_503_with_a_readable_message(server):
    url, database = server
    with sqlite3.connect(database.removeprefix("sqlite:///")) as db:
        db.execute("ALTER TABLE analyses RENAME TO analyses_away")
    try:
        response = requests.get(f"{url}/api/analyses", headers=AUTH, timeout=10)
    finally:
        with sqlite3.connect(database.removeprefix("sqlite:///")) as db:
            db.execute("ALTER TABLE analyses_away RENAME TO analyses")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "database_unavailable" and "SQL" not in response.text


def test_the_history_is_newest_first_in_pages(server):
    url, _ = server
    traces = [score(url)["trace_id"] for _ in range(3)]
    page = requests.get(f"{url}/api/analyses?limit=2&offset=0", headers=AUTH, timeout=10).json()
    following = requests.get(f"{url}/api/analyses?limit=1&offset=2", headers=AUTH, timeout=10).json()
    assert [a["trace_id"] for a in page + following] == traces[::-1]


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=ten", "offset=-1"])
def test_a_bad_page_is_422(server, query):
    url, _ = server
    response = requests.get(f"{url}/api/analyses?{query}", headers=AUTH, timeout=10)
    assert (response.status_code, response.json()["error"]["code"]) == (422, "invalid_field")


def test_an_unknown_analysis_is_404(server):
    url, _ = server
    response = requests.get(f"{url}/api/analyses/nope", headers=AUTH, timeout=10)
    assert (response.status_code, response.json()["error"]["code"]) == (404, "not_found")


@pytest.mark.parametrize(("flow", "served"), [("news_reader", "default"), ("news_reader_single", "single_prompt")])
def test_what_is_served_is_named_as_experiments_name_it(flow, served):
    from deployment.serving.app import _served_variant
    from news_reader.flow_dag import read_dag

    assert _served_variant(read_dag(REPO / "flows" / flow), flow) == served
