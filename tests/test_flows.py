"""The DAG flows run through Prompt flow itself, against the fake LLM server."""

from __future__ import annotations

import difflib
import json
import shutil
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from news_reader.cli import main
from news_reader.evaluation.scoring import article_wall_ms
from news_reader.extraction.pipeline import analyze
from tests.conftest import ACME_ANSWER, ARTICLE, GENERAL_INFO_ANSWER, GLOBEX_ANSWER, REPO, SPORT_ARTICLE
from tests.fake_llm import FakeLLM, Reply, answer, category_tokens, error, slow

FLOW = REPO / "flows" / "news_reader"
SINGLE_FLOW = REPO / "flows" / "news_reader_single"
RESULT_KEYS = {"title", "summary", "is_about_business", "business_info", "trace_id", "usage", "errors"}


@pytest.fixture
def pf(fake_llm: FakeLLM):
    """A Prompt flow client whose `news_reader_llm` connection points at the fake server."""
    from promptflow.client import PFClient
    from promptflow.entities import OpenAIConnection

    client = PFClient()
    client.connections.create_or_update(
        OpenAIConnection(name="news_reader_llm", api_key="test", base_url=fake_llm.base_url)
    )
    return client


def run_flow(pf, flow: Path = FLOW, article: str = ARTICLE, env: dict | None = None, **kwargs) -> dict:
    env = {"NEWS_READER_LLM_MAX_RETRY_WAIT_S": "5", **(env or {})}
    return pf.test(flow=flow, inputs={"article": article}, environment_variables=env, **kwargs)


def without_volatile(result: dict) -> dict:
    """Drop what differs between two runs of the same answers: ids and timings."""
    stable = {k: v for k, v in result.items() if k != "trace_id"}
    stable["usage"] = [{k: v for k, v in u.items() if k not in ("latency_ms", "started_at")} for u in result["usage"]]
    return stable


def test_the_flow_gives_the_same_result_as_the_plain_python_pipeline(pf, business_script, fake_settings):
    result = run_flow(pf)
    assert set(result) == RESULT_KEYS
    expected = analyze(ARTICLE, fake_settings).model_dump(mode="json")
    assert without_volatile(result) == without_volatile(expected)


def test_every_step_of_the_flow_says_when_it_started_so_the_article_has_a_wall_time(pf, business_script):
    # General info runs beside the business steps, and the two businesses are analysed at once: 0.3 s each.
    business_script.script("GeneralInfo", slow(answer(GENERAL_INFO_ANSWER), 0.3))
    business_script.script("BusinessSpecificInfo:Acme Corp", slow(answer(ACME_ANSWER), 0.3))
    business_script.script("BusinessSpecificInfo:Globex", slow(answer(GLOBEX_ANSWER), 0.3))
    usage = run_flow(pf)["usage"]
    assert len(usage) == 7 and all(datetime.fromisoformat(u["started_at"]).tzinfo is not None for u in usage)
    wall = article_wall_ms(usage)
    assert 300 <= wall <= sum(u["latency_ms"] for u in usage) - 300  # the slow calls overlap: the sum counts each


def test_a_non_business_article_bypasses_the_business_nodes(pf, fake_llm):
    fake_llm.script("GeneralInfo", answer({"title": "Claxton hunting first major medal", "summary": "S."}))
    fake_llm.script("BusinessCategory", answer({"is_about_business": False}))
    result = run_flow(pf, article=SPORT_ARTICLE)
    assert result["is_about_business"] is False and result["business_info"] == []
    assert sorted(fake_llm.keys_seen()) == ["BusinessCategory", "GeneralInfo"]


def test_the_flow_decides_is_about_business_from_the_probability_and_its_setting(pf, business_script):
    business_script.script("BusinessCategory", Reply(content='{"is_about_business": false}',
                                                     logprobs=category_tokens(0.47)))
    assert run_flow(pf)["is_about_business"] is True
    assert run_flow(pf, env={"NEWS_READER_MIN_BUSINESS_PROBABILITY": "0.5"})["is_about_business"] is False


def test_rate_limits_are_retried_inside_the_flow(pf, business_script):
    business_script.script("BusinessCategory", error(429, retry_after=1), answer({"is_about_business": True}))
    result = run_flow(pf)
    [category] = [u for u in result["usage"] if u["step"] == "business_category"]
    assert category["retries"] == 1
    attempts = [s.at for s in business_script.seen if s.key == "BusinessCategory"]
    assert attempts[1] - attempts[0] >= 1.0


def test_independent_nodes_run_concurrently_in_the_flow(pf, business_script):
    business_script.script("GeneralInfo", slow(answer({"title": "T", "summary": "S."}), 0.5))
    business_script.script("BusinessCategory", slow(answer({"is_about_business": False}), 0.5))
    run_flow(pf)
    assert business_script.max_in_flight == 2


def test_a_new_variant_is_one_template_file_and_news_reader_flows_sync(pf, business_script, tmp_path):
    for folder in ("news_reader", "flows"):
        shutil.copytree(REPO / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__", ".promptflow"))
    templates = tmp_path / "news_reader" / "extraction" / "prompts"
    variant_1 = (templates / "general_info__variant_1.jinja2").read_text()
    (templates / "general_info__variant_2.jinja2").write_text(variant_1.replace("10 words", "7 words"))
    flow, dag_before = tmp_path / "flows" / "news_reader", (FLOW / "flow.dag.yaml").read_text()

    assert CliRunner().invoke(main, ["flows", "sync", str(flow)]).exit_code == 0

    added = [line for line in difflib.ndiff(dag_before.splitlines(), (flow / "flow.dag.yaml").read_text().splitlines())
             if line.startswith(("+", "-"))]
    assert all(line.startswith("+") for line in added) and "general_info__variant_2.jinja2" in "".join(added)
    run_flow(pf, flow=flow, variant="${general_info_prompt.variant_2}")
    [general] = [s for s in business_script.seen if s.key == "GeneralInfo"]
    assert "at most 7 words" in general.body["messages"][1]["content"]


def test_a_variant_is_selected_with_the_node_variant_syntax(pf, business_script):
    run_flow(pf, variant="${general_info_prompt.variant_1}")
    [general] = [s for s in business_script.seen if s.key == "GeneralInfo"]
    assert "at most 10 words" in general.body["messages"][1]["content"]


def test_the_business_analysis_prompt_has_variants_in_the_flow_as_in_the_pipeline(pf, business_script, fake_settings):
    # Its prompt is rendered once per business inside the node, so its variants pass the template's text on.
    def business_prompts() -> list[str]:
        return sorted(s.body["messages"][1]["content"] for s in business_script.seen
                      if s.key.startswith("BusinessSpecificInfo"))

    result = run_flow(pf, variant="${business_analysis_prompt.variant_1}")
    sent = business_prompts()
    assert len(sent) == 2 and all("Most news does not move a company's share price" in prompt for prompt in sent)
    assert '"Acme Corp"' in sent[0] and '"Globex"' in sent[1]
    business_script.seen.clear()
    expected = analyze(ARTICLE, fake_settings, variants={"business_analysis": "variant_1"})
    assert business_prompts() == sent
    assert without_volatile(result) == without_volatile(expected.model_dump(mode="json"))


def test_an_empty_article_fails_the_flow_with_a_clear_message(pf, fake_llm):
    with pytest.raises(Exception, match="article is empty"):
        run_flow(pf, article="  \n ")
    assert fake_llm.seen == []


def test_the_single_prompt_flow_has_the_same_output_schema(pf, fake_llm):
    fake_llm.script("ArticleExtraction", answer({
        "title": "T", "summary": "S.", "is_about_business": True, "business_info": [GLOBEX_ANSWER]}))
    result = run_flow(pf, flow=SINGLE_FLOW)
    assert set(result) == RESULT_KEYS
    assert [b["business"] for b in result["business_info"]] == ["Globex"]
    assert len(fake_llm.seen) == 1


@pytest.mark.parametrize("flow", [FLOW, SINGLE_FLOW, REPO / "evaluations" / "news_reader_eval"],
                         ids=["news_reader", "news_reader_single", "news_reader_eval"])
def test_the_flows_pass_prompt_flow_validation(pf, flow):
    result = pf.flows.validate(flow=flow)
    assert result.passed, result


def test_a_batch_run_completes_and_counts_a_failed_line(pf, business_script, tmp_path):
    data = tmp_path / "data.jsonl"
    data.write_text("\n".join(json.dumps({"article": a}) for a in [ARTICLE, "   "]) + "\n")
    run = pf.run(flow=FLOW, data=data, column_mapping={"article": "${data.article}"},
                 variant="${business_category_prompt.variant_1}")
    assert pf.runs.get(run.name).status == "Completed"
    details = pf.get_details(run)
    assert list(details["outputs.title"]) == ["Acme profits soar as Globex deal collapses", "(Failed)"]


def test_with_tracing_on_the_trace_id_is_the_flow_runs_opentelemetry_trace(pf, business_script):
    env = {"PF_DISABLE_TRACING": "false", "NEWS_READER_LLM_MAX_RETRY_WAIT_S": "5"}
    result = pf.flows.test(flow=FLOW, inputs={"article": ARTICLE}, environment_variables=env, dump_test_result=True)
    detail = json.loads((FLOW / ".promptflow" / "flow.detail.json").read_text())
    assert detail["flow_runs"][0]["otel_trace_id"] == "0x" + result["trace_id"]
