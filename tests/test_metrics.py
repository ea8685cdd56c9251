"""Metrics for scraping: cost estimates from the price table, feedback counts and the approval ratio."""

from __future__ import annotations

import math

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError

from news_reader.settings import LOCAL_MODEL_ALIAS, PRICES_FILE
from news_reader.telemetry.metrics import (
    estimate_cost,
    exposition,
    price_table,
    record_feedback,
    use_price_table,
)


@pytest.fixture
def prices(tmp_path):
    table = tmp_path / "prices.yaml"
    table.write_text("fake: {input: 2.0, cached_input: 0.5, output: 8.0}\nno-cache-price: {input: 1.0, output: 1.0}\n")
    use_price_table(table)
    yield table
    use_price_table(PRICES_FILE)


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_the_cost_is_the_tokens_at_the_tables_rates_per_million(prices):
    assert estimate_cost("fake", 1_000_000, 500_000) == pytest.approx(2.0 + 4.0)


def test_cached_prompt_tokens_cost_the_cached_rate(prices):
    assert estimate_cost("fake", 1_000_000, 0, cached_tokens=600_000) == pytest.approx(0.4 * 2.0 + 0.6 * 0.5)


def test_cached_tokens_cost_the_input_rate_when_the_table_has_no_cached_price(prices):
    assert estimate_cost("no-cache-price", 1_000_000, 0, cached_tokens=600_000) == pytest.approx(1.0)


def test_a_model_missing_from_the_table_has_no_estimate(prices):
    assert estimate_cost("gpt-unknown", 1000, 1000) is None


def test_the_shipped_table_prices_the_local_model_at_zero():
    assert estimate_cost(LOCAL_MODEL_ALIAS, 5000, 500, None) == 0.0
    assert estimate_cost("gpt-4o-mini", 1_000_000, 1_000_000) == pytest.approx(0.15 + 0.60)


def test_a_price_table_with_a_negative_or_unknown_price_is_refused(tmp_path):
    for text in ("m: {input: -1, output: 1}\n", "m: {input: 1, output: 1, cheap: 0}\n"):
        table = tmp_path / f"{len(text)}.yaml"
        table.write_text(text)
        with pytest.raises(ValidationError):
            price_table(table)


def test_feedback_is_counted_by_rating_and_the_approval_ratio_follows():
    up, down = sample("news_reader_feedback_total", rating="up"), sample("news_reader_feedback_total", rating="down")
    record_feedback("up")
    record_feedback("up")
    record_feedback("down")
    assert sample("news_reader_feedback_total", rating="up") == up + 2
    assert sample("news_reader_feedback_total", rating="down") == down + 1
    assert sample("news_reader_feedback_approval_ratio") == pytest.approx((up + 2) / (up + down + 3))


def test_a_rating_other_than_up_or_down_is_refused():
    with pytest.raises(ValueError, match="up, down"):
        record_feedback("meh")


def test_the_exposition_is_prometheus_text_with_every_metric():
    body, content_type = exposition("text/plain;version=0.0.4;q=0.3,*/*;q=0.2")
    assert content_type.startswith("text/plain; version=0.0.4")
    families = {family.name: family for family in text_string_to_metric_families(body.decode())}
    assert {"news_reader_requests", "news_reader_request_failures", "news_reader_request_duration_seconds",
            "news_reader_llm_tokens", "news_reader_llm_cost_usd", "news_reader_feedback",
            "news_reader_feedback_approval_ratio"} <= set(families)
    ratio = families["news_reader_feedback_approval_ratio"].samples[0].value
    assert math.isnan(ratio) or 0 <= ratio <= 1


def test_a_scraper_asking_for_openmetrics_gets_openmetrics():
    body, content_type = exposition("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5")
    assert content_type.startswith("application/openmetrics-text; version=1.0.0")
    assert body.endswith(b"# EOF\n")
