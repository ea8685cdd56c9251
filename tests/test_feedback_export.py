"""`news-reader feedback export`: feedback becomes a labelled dataset the evaluation reads."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from data import build_dataset
from news_reader.cli import main
from news_reader.evaluation.records import read_jsonl
from news_reader.store import FeedbackRequest, Store
from tests.conftest import ACME_ANSWER, ARTICLE, GLOBEX_ANSWER, REPO

TITLE, SUMMARY = "Acme profits soar as Globex deal collapses", "Acme's profits rose while Globex lost a takeover."


@pytest.fixture
def database(tmp_path, monkeypatch) -> str:
    url = f"sqlite:///{tmp_path / 'news_reader.db'}"
    monkeypatch.setenv("NEWS_READER_DATABASE_URL", url)
    return url


@pytest.fixture
def store(database):
    store = Store(database)
    store.migrate()
    yield store
    store.close()


def analysed(store: Store, trace_id: str, *feedback: dict) -> None:
    """An analysis of ARTICLE (Acme Corp up, Globex down) with `feedback`, oldest first."""
    result = {"title": TITLE, "summary": SUMMARY, "is_about_business": True,
              "business_info": [{**ACME_ANSWER, "confidence": 0.62}, GLOBEX_ANSWER], "trace_id": trace_id,
              "usage": [], "errors": []}
    store.record_analysis(trace_id=trace_id, article=ARTICLE, result=result, model="fake", latency_ms=1)
    for given in feedback:
        store.record_feedback(trace_id, FeedbackRequest.model_validate(given))


def export(tmp_path, *args: str):
    out = tmp_path / "exported" / "feedback.jsonl"
    return out, CliRunner().invoke(main, ["feedback", "export", "--out", str(out), *args])


def companies(line: dict) -> dict[str, str]:
    return {c["name"]: c["stock_price_change"] for c in line["companies"]}


def test_thumbs_up_makes_the_models_answer_the_label(store, tmp_path):
    analysed(store, "up", {"rating": "up"})
    out, result = export(tmp_path)
    assert result.exit_code == 0, result.output
    [line] = read_jsonl(out)
    assert line["id"] == "feedback/up" and line["article"] == ARTICLE.strip()
    assert (line["title_reference"], line["summary_reference"], line["is_about_business"]) == (TITLE, SUMMARY, True)
    assert companies(line) == {"Acme Corp": "increase", "Globex": "decrease"}
    assert [c["model_confidence"] for c in line["companies"]] == [0.62, None]  # Globex's answer predates confidence


def test_corrections_override_the_direction_of_the_companies_they_name(store, tmp_path):
    analysed(store, "corrected", {"rating": "down", "corrections": [{"business": "Globex",
                                                                     "stock_price_change": "none"}]})
    out, _ = export(tmp_path)
    assert companies(read_jsonl(out)[0]) == {"Acme Corp": "increase", "Globex": "none"}


def test_thumbs_down_without_corrections_and_failures_are_left_out_and_counted(store, tmp_path):
    analysed(store, "down", {"rating": "down", "comment": "wrong"})
    analysed(store, "unrated")
    store.record_analysis(trace_id="failed", article=ARTICLE, result=None, error_kind="llm_timeout", model="fake",
                          latency_ms=1)
    store.record_feedback("failed", FeedbackRequest(rating="down"))
    out, result = export(tmp_path)
    assert read_jsonl(out) == []
    assert "wrote 0 labelled examples" in result.output
    assert "left out 1 thumbs down without corrections and 1 failed analyses" in result.output


def test_the_latest_feedback_decides(store, tmp_path):
    analysed(store, "changed mind", {"rating": "down"}, {"rating": "up"})
    analysed(store, "changed back", {"rating": "up"}, {"rating": "down"})
    out, _ = export(tmp_path)
    assert [line["id"] for line in read_jsonl(out)] == ["feedback/changed mind"]


def test_an_exported_file_passes_the_evaluation_sets_own_checks(store, tmp_path):
    analysed(store, "up", {"rating": "up"})
    analysed(store, "corrected", {"rating": "down", "corrections": [{"business": "Acme Corp",
                                                                     "stock_price_change": "none"}]})
    out, _ = export(tmp_path)
    smoke_keys = list(json.loads((REPO / "data" / "eval" / "smoke.jsonl").read_text().splitlines()[0]))
    for line in read_jsonl(out):
        assert list(line) == smoke_keys
        example = build_dataset.Example.model_validate(line)
        label = build_dataset.Label(is_about_business=example.is_about_business, companies=example.companies)
        build_dataset.example(example.id, example.article, label)  # raises on a company not in the article


def test_the_output_must_be_a_jsonl_file(store, tmp_path):
    result = CliRunner().invoke(main, ["feedback", "export", "--out", str(tmp_path / "feedback.csv")])
    assert result.exit_code == 2 and ".jsonl" in result.output
