"""Recording analyses, on a bare Flask app whose `/score` stands in for the flow's."""

from __future__ import annotations

import logging

import pytest
from flask import Flask, g

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


def test_an_analysis_that_cannot_be_stored_is_logged_and_the_answer_still_goes_out(tmp_path, caplog):
    unmigrated = Store(f"sqlite:///{tmp_path / 'empty.db'}")
    with caplog.at_level(logging.ERROR):
        response = app_over(unmigrated).test_client().post("/score", json={"article": "rocket skates"})
    unmigrated.close()
    assert response.status_code == 200 and response.json == ANSWER
    assert "analysis t1 was not recorded" in caplog.text
    assert "rocket skates" not in caplog.text, "no article text in logs"
