"""Recording analyses, on a bare Flask app whose `/score` stands in for the flow's."""

from __future__ import annotations

import logging

import pytest
from flask import Flask, g, jsonify

from deployment.serving.feedback_routes import install_feedback
from news_reader.store import Store

ANSWER = {"trace_id": "t1", "title": "t", "usage": [
    {"step": "general_info", "prompt_tokens": 300, "completion_tokens": 50, "cached_tokens": 200},
    {"step": "business_category", "prompt_tokens": 100, "completion_tokens": 10, "cached_tokens": None}]}


def app_over(store: Store, **options) -> Flask:
    app = Flask(__name__)

    @app.post("/score")
    def score():
        g.flow_result = "the flow ran"
        return ANSWER

    install_feedback(app, store, model="gpt-4o-mini", **options)
    return app


@pytest.fixture
def store(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    store.migrate()
    yield store
    store.close()


def test_tokens_are_summed_over_the_steps_and_the_cost_is_estimated_from_them(store):
    prices = []

    def estimate(model: str, prompt: int, completion: int, cached: int | None) -> float:
        prices.append((model, prompt, completion, cached))
        return 0.25

    response = app_over(store, estimate_cost=estimate).test_client().post("/score", json={"article": "text"})
    assert response.status_code == 200
    stored = store.analysis("t1")
    assert (stored.prompt_tokens, stored.completion_tokens, stored.cached_tokens) == (400, 60, 200)
    assert stored.cost_usd == 0.25 and prices == [("gpt-4o-mini", 400, 60, 200)]


def test_a_stored_analysis_is_answered_as_the_flow_answered_with_the_stored_header(store):
    response = app_over(store).test_client().post("/score", json={"article": "text"})
    assert (response.status_code, response.json) == (200, ANSWER)
    assert response.headers["X-Analysis-Stored"] == "true"


def test_an_analysis_that_cannot_be_stored_is_logged_and_answered_as_not_stored(tmp_path, caplog):
    unmigrated = Store(f"sqlite:///{tmp_path / 'empty.db'}")
    with caplog.at_level(logging.ERROR):
        response = app_over(unmigrated).test_client().post("/score", json={"article": "rocket skates"})
    unmigrated.close()
    assert response.status_code == 200 and response.json == {**ANSWER, "stored": False}
    assert response.headers["X-Analysis-Stored"] == "false"
    assert "analysis t1 was not recorded" in caplog.text
    assert "rocket skates" not in caplog.text, "no article text in logs"


def test_text_the_database_cannot_store_is_answered_as_not_stored_not_as_a_500(store):
    """Defence in depth: intake refuses lone surrogates; were one to pass, the store refuses it as UnstorableData."""
    response = app_over(store).test_client().post("/score", data='{"article": "rocket \\ud800 skates"}',
                                                  content_type="application/json")
    assert response.status_code == 200 and response.json["stored"] is False
    assert store.analyses() == []


def test_a_failed_flow_is_stored_with_the_error_kind_a_hook_registered_after_it_gave(tmp_path):
    """As app.py's explain_flow_failure, registered after install_feedback, gives a failed flow its own kind: Flask
    runs after_request hooks last registered first, so the storing hook sees the answer as that hook left it."""
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    store.migrate()
    app = Flask(__name__)

    @app.post("/score")
    def score():
        g.flow_result = "the flow failed"
        return {"error": {"code": "flow_failed", "message": "failed"}}, 500

    install_feedback(app, store, model="gpt-4o-mini")

    @app.after_request
    def explain_flow_failure(response):
        response = jsonify({"error": {"code": "llm_rate_limited", "message": "429"}, "trace_id": "t1"})
        response.status_code = 429
        return response

    response = app.test_client().post("/score", json={"article": "text"})
    assert (response.status_code, response.headers["X-Analysis-Stored"]) == (429, "true")
    assert store.analysis("t1").error_kind == "llm_rate_limited"
    store.close()


def test_the_storing_hook_is_a_plain_after_request_hook_in_flasks_order(store):
    """Not moved to the end of Flask's internal list of hooks: one registered before it runs after it, as for any
    other hook, and sees whether the analysis was stored."""
    app = Flask(__name__)
    seen = []

    @app.after_request
    def registered_before(response):
        seen.append(response.headers.get("X-Analysis-Stored"))
        return response

    @app.post("/score")
    def score():
        g.flow_result = "the flow ran"
        return ANSWER

    install_feedback(app, store, model="gpt-4o-mini")
    app.test_client().post("/score", json={"article": "text"})
    assert seen == ["true"]
