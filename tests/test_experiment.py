"""The experiment command through Prompt flow: flow run, evaluation run and record, against the fake LLM."""

from __future__ import annotations

import json
import sys
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from evaluations.run_experiment import EVAL_FLOW, STEP_FLOW, configurations, main, workspace_client
from news_reader.evaluation.judge import JUDGE_PROMPT
from news_reader.evaluation.records import ExperimentRecord, sha256_file
from news_reader.extraction.prompting import PROMPTS_DIR
from tests.conftest import ACME_ANSWER, ARTICLE, SPORT_ARTICLE
from tests.fake_llm import FakeLLM, answer, error, reference_answer

LABELS = [
    {"id": "t/1", "article": ARTICLE, "title_reference": "Acme profits soar as Globex deal collapses",
     "summary_reference": "Acme's profits rose while Globex lost a takeover.", "is_about_business": True,
     "companies": [{"name": "Acme", "aliases": ["Acme Corp"], "stock_price_change": "increase"},
                   {"name": "Globex", "aliases": [], "stock_price_change": "none"}]},
    {"id": "t/2", "article": SPORT_ARTICLE, "title_reference": "Claxton hunting first major medal",
     "summary_reference": "British hurdler Sarah Claxton is confident.", "is_about_business": False, "companies": []},
    {"id": "t/3", "article": "   ", "title_reference": "Empty", "summary_reference": "Nothing.",
     "is_about_business": False, "companies": []},
]


@pytest.fixture
def dataset(tmp_path):
    path = tmp_path / "labelled.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in LABELS))
    return path


@pytest.fixture
def pf_connection(fake_llm: FakeLLM):
    from promptflow.client import PFClient
    from promptflow.entities import OpenAIConnection

    PFClient().connections.create_or_update(
        OpenAIConnection(name="news_reader_llm", api_key="test", base_url=fake_llm.base_url)
    )


def judge_answers(fake_llm: FakeLLM) -> None:
    fake_llm.script("ReasonVerdict", answer({"supported": True, "implied_direction": "increase"}),
                    answer({"supported": True, "implied_direction": "none"}))


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_all_configurations_are_the_default_each_variant_and_the_baseline():
    assert configurations("all") == [
        "default", "general_info=variant_1", "business_category=variant_1", "businesses_involved=variant_1",
        "business_analysis=variant_1", "business_analysis=variant_2", "single_prompt",
    ]


def test_an_experiment_records_runs_hashes_and_metrics(pf_connection, business_script, dataset, tmp_path):
    judge_answers(business_script)
    result = run("--data", str(dataset), "--config", "default", "--model", "other-model",
                 "--out", str(tmp_path / "records"))
    assert result.exit_code == 0, result.output
    [path] = (tmp_path / "records").glob("*.json")
    record = ExperimentRecord.load(path)
    assert record.config == "default" and record.variant is None
    assert record.dataset.lines == 3 and len(record.dataset.sha256) == 64
    assert set(record.prompt_sha256) == {"system.jinja2", "general_info.jinja2", "business_category.jinja2",
                                         "businesses_involved.jinja2", "business_salience.jinja2",
                                         "business_analysis.jinja2", "judge_reason.jinja2"}
    assert record.endpoint == business_script.base_url
    assert record.model == record.judge_model == "other-model"
    assert {s.body["model"] for s in business_script.seen} == {"other-model"}  # flow and judge nodes
    m = record.metrics
    assert m["lines_failed"] == 1  # the empty article
    assert m["lines_evaluated"] == 2
    assert m["schema_valid_rate"] == pytest.approx(2 / 3)
    assert m["company_precision"] == 1.0 and m["company_recall"] == 1.0
    assert m["direction_accuracy"] == 0.5  # Globex predicted decrease, labelled none
    assert m["judge_pass_rate"] == 0.5 and m["judge_agreement"] == 1.0
    # 100 prompt tokens a call. The fake calls the sport article business news too and lists Acme and Globex, which
    # it does not name: both are left out as passing mentions (3 calls; 7 for the business article, whose two
    # companies are each asked about, then analysed).
    assert m["prompt_tokens_per_article"] == (7 + 3) * 100 / 2
    # Quality counts every dataset line (the failed one as an empty answer); tokens count the lines that ran.
    assert m["step_errors_per_article"] == 0 and m["passing_mentions_per_article"] == 2 / 3
    assert m["grounding_rate"] == 1.0
    # The fake calls the sport article business (wrong); the failed empty article, labelled not business, is right.
    assert m["business_accuracy"] == 2 / 3
    assert [(line.line, line.scored) for line in record.lines] == [(0, True), (1, True), (2, False)]
    assert record.lines[0].companies_tp == 2 and record.lines[0].directions_correct == 1


def test_the_flow_run_is_timed_against_reference_requests_before_and_after_it(pf_connection, business_script,
                                                                           dataset, tmp_path):
    business_script.script("text", reference_answer())
    assert run("--data", str(dataset), "--no-judge", "--out", str(tmp_path)).exit_code == 0
    record = ExperimentRecord.load(next(tmp_path.glob("*.json")))
    keys = business_script.keys_seen()
    # An untimed and two timed requests before the first step, the same after the last.
    assert keys[:3] == keys[-3:] == ["text"] * 3 and keys.count("text") == 6
    assert len(record.reference_ms) == 4 and all(ms >= 0 for ms in record.reference_ms)
    m = record.metrics
    reference = sum(record.reference_ms) / 4
    assert m["reference_ms"] == reference
    if reference:  # the fake answers at once: a reference of 0 ms gives no ratio
        assert m["wall_p95_per_reference"] == pytest.approx(m["wall_ms_p95"] / reference)
    assert m["wall_ms_p95"] is not None


def test_without_a_reference_time_the_record_says_so_and_has_no_relative_latency(pf_connection, business_script,
                                                                                dataset, tmp_path):
    business_script.script("text", error(500))
    result = run("--data", str(dataset), "--no-judge", "--out", str(tmp_path))
    assert result.exit_code == 0
    assert "warning: no reference time, so no relative latency: the reference request failed" in result.stderr
    record = ExperimentRecord.load(next(tmp_path.glob("*.json")))
    assert record.reference_ms == [] and record.metrics["wall_p95_per_reference"] is None
    assert record.metrics["wall_ms_p95"] is not None


def test_an_existing_evaluation_run_is_recorded_without_running_anything(pf_connection, business_script, dataset,
                                                                         tmp_path):
    judge_answers(business_script)
    business_script.script("text", reference_answer())
    assert run("--data", str(dataset), "--out", str(tmp_path / "first")).exit_code == 0
    first = ExperimentRecord.load(next((tmp_path / "first").glob("*.json")))
    assert len(first.reference_ms) == 4
    calls = len(business_script.seen)
    result = run("--data", str(dataset), "--flow-run", first.flow_run, "--eval-run", first.eval_run,
                 "--out", str(tmp_path / "again"))
    assert result.exit_code == 0, result.output
    again = ExperimentRecord.load(next((tmp_path / "again").glob("*.json")))
    assert len(business_script.seen) == calls  # not even a reference request: the flow ran at another time
    assert again.reference_ms == []
    assert (again.flow_run, again.eval_run) == (first.flow_run, first.eval_run)
    timed_now = {"reference_ms", "wall_mean_per_reference", "wall_p95_per_reference"}
    assert {k: v for k, v in again.metrics.items() if k not in timed_now} == {
        k: v for k, v in first.metrics.items() if k not in timed_now}
    assert again.lines == first.lines
    assert all(again.metrics[k] is None for k in timed_now)


def test_a_run_whose_every_line_fails_is_recorded_and_fails_the_command(pf_connection, business_script, tmp_path):
    data = tmp_path / "empty.jsonl"
    data.write_text("".join(json.dumps({**LABELS[2], "id": f"t/{n}"}) + "\n" for n in range(2)))
    result = CliRunner().invoke(main, ["--data", str(data), "--out", str(tmp_path / "records")])
    assert result.exit_code == 1 and "every line failed for: default" in result.output
    record = ExperimentRecord.load(next((tmp_path / "records").glob("*.json")))
    assert record.eval_run == "" and record.metrics["lines_failed"] == 2
    assert record.metrics["schema_valid_rate"] == 0.0 and record.metrics["prompt_tokens_per_article"] is None


def test_existing_runs_are_refused_under_a_description_they_do_not_match(pf_connection, business_script, dataset,
                                                                         tmp_path):
    judge_answers(business_script)
    assert run("--data", str(dataset), "--no-judge", "--out", str(tmp_path / "first")).exit_code == 0
    first = ExperimentRecord.load(next((tmp_path / "first").glob("*.json")))
    other_data = tmp_path / "other.jsonl"
    other_data.write_text(dataset.read_text() + dataset.read_text())
    result = CliRunner().invoke(main, [
        "--data", str(other_data), "--config", "general_info=variant_1", "--judge",
        "--flow-run", first.flow_run, "--eval-run", first.eval_run, "--out", str(tmp_path / "again")])
    assert result.exit_code == 2
    for problem in ("ran variant default, not ${general_info_prompt.variant_1}", "whose content is not",
                    "ran with judge=False"):
        assert problem in result.output
    assert not (tmp_path / "again").exists()


def test_only_one_configuration_can_reuse_a_flow_run(dataset):
    result = CliRunner().invoke(main, ["--data", str(dataset), "--config", "all", "--flow-run", "some_run"])
    assert result.exit_code == 2 and "one configuration" in result.output


def test_an_unknown_configuration_lists_the_known_ones(dataset):
    result = CliRunner().invoke(main, ["--data", str(dataset), "--config", "general_info=variant_7"])
    assert result.exit_code == 2 and "business_category=variant_1" in result.output


# Azure ML: the same command against a workspace. Nothing here reaches Azure: promptflow.azure's client is replaced
# by a fake shaped like it, so these tests pin what the command asks of the workspace, not what the workspace does.
AZURE_OPENAI = "https://news-reader.openai.azure.com/"
WORKSPACE = {"AZURE_SUBSCRIPTION_ID": "0000-sub", "AZURE_RESOURCE_GROUP": "rg-news", "AZUREML_WORKSPACE": "mlw-news"}


def scores(line: int, prediction: dict) -> dict:
    from news_reader.evaluation.scoring import score_line

    label = LABELS[line]
    return score_line({"usage": [], "errors": [], "trace_id": "t", **prediction}, label, label["article"]).model_dump(
        mode="json")


class FakeWorkspace:
    """promptflow.azure.PFClient as far as the experiment uses it. Runs are complete once submitted: the empty
    article (line 2) fails in the flow, and the evaluation's details are indexed by line number, as pfazure's are."""

    def __init__(self):
        self.ml_client = SimpleNamespace(connections=SimpleNamespace(
            get=lambda name: SimpleNamespace(name=name, api_base=AZURE_OPENAI)))
        self.runs = SimpleNamespace(stream=lambda name, timeout: self.streamed.append((name, timeout)))
        self.submitted: list[dict] = []
        self.streamed: list[tuple[str, int]] = []

    def run(self, **run):
        self.submitted.append(run)
        return SimpleNamespace(name=run["name"])

    def get_details(self, run: str, all_results: bool):
        import pandas as pd

        if not run.endswith("_eval"):
            return pd.DataFrame({"outputs.title": ["Acme profits soar", "Claxton hunting first major medal", None]})
        acme = scores(0, {"title": LABELS[0]["title_reference"], "summary": LABELS[0]["summary_reference"],
                          "is_about_business": True, "business_info": [ACME_ANSWER]})
        sport = scores(1, {"title": LABELS[1]["title_reference"], "summary": LABELS[1]["summary_reference"],
                           "is_about_business": False, "business_info": []})
        return pd.DataFrame({"outputs.scores": [acme, sport], "outputs.judged": [[], []]}, index=[0, 1])


@pytest.fixture
def workspace(monkeypatch) -> FakeWorkspace:
    fake = FakeWorkspace()
    for name, value in WORKSPACE.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr("evaluations.run_experiment.workspace_client", lambda: fake)
    return fake


@pytest.fixture
def azure_record(workspace, dataset, tmp_path) -> ExperimentRecord:
    result = run("--azure", "--data", str(dataset), "--model", "gpt-4o-mini", "--out", str(tmp_path / "records"))
    assert result.exit_code == 0, result.output
    return ExperimentRecord.load(next((tmp_path / "records").glob("*.json")))


def test_azure_runs_the_flow_then_its_evaluation_in_the_workspace_on_the_deployment(workspace, azure_record):
    flow_run, eval_run = workspace.submitted
    assert flow_run["flow"] == STEP_FLOW and eval_run["flow"] == EVAL_FLOW
    assert flow_run["connections"] == {node: {"connection": "news_reader_llm", "model": "gpt-4o-mini"}
                                       for node in ("general_info", "business_category", "businesses_involved",
                                                    "business_analysis")}
    assert eval_run["run"] == flow_run["name"] == azure_record.flow_run
    assert eval_run["connections"] == {"judge": {"connection": "news_reader_llm", "model": "gpt-4o-mini"}}
    assert eval_run["column_mapping"]["judge"] is True


def test_azure_waits_for_each_run_longer_than_pfazure_default_stream_timeout(workspace, azure_record):
    assert workspace.streamed == [(azure_record.flow_run, 3600), (azure_record.eval_run, 3600)]


def test_an_azure_record_names_the_connection_endpoint_and_the_uploaded_prompts(azure_record):
    assert azure_record.endpoint == AZURE_OPENAI
    assert azure_record.model == azure_record.judge_model == "gpt-4o-mini"
    steps = {name: sha256_file(PROMPTS_DIR / name) for name in azure_record.prompt_sha256 if name != JUDGE_PROMPT.name}
    assert azure_record.prompt_sha256 == {**steps, JUDGE_PROMPT.name: sha256_file(JUDGE_PROMPT)}


def test_azure_scores_lines_by_the_line_numbers_the_workspace_reports(azure_record):
    assert [(line.line, line.scored) for line in azure_record.lines] == [(0, True), (1, True), (2, False)]
    assert azure_record.metrics["lines_failed"] == 1
    assert azure_record.metrics["company_recall"] == 0.5  # Acme found, Globex missed


def test_azure_signs_in_to_the_workspace_named_in_the_environment(monkeypatch):
    created = {}

    class WorkspacePFClient:
        def __init__(self, **kwargs):
            created.update(kwargs)

    monkeypatch.setitem(sys.modules, "promptflow.azure", SimpleNamespace(PFClient=WorkspacePFClient))
    monkeypatch.setattr("azure.identity.DefaultAzureCredential", lambda: "default credential")
    for name, value in WORKSPACE.items():
        monkeypatch.setenv(name, value)
    assert isinstance(workspace_client(), WorkspacePFClient)
    assert created == {"credential": "default credential", "subscription_id": "0000-sub",
                       "resource_group_name": "rg-news", "workspace_name": "mlw-news"}


def test_azure_names_the_workspace_variables_that_are_missing(monkeypatch, dataset):
    monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", "0000-sub")
    monkeypatch.delenv("AZURE_RESOURCE_GROUP", raising=False)
    monkeypatch.delenv("AZUREML_WORKSPACE", raising=False)
    result = CliRunner().invoke(main, ["--azure", "--data", str(dataset), "--model", "gpt-4o-mini"])
    assert result.exit_code == 2 and "--azure needs AZURE_RESOURCE_GROUP, AZUREML_WORKSPACE" in result.output


def test_azure_needs_the_deployment_as_model(workspace, dataset):
    result = CliRunner().invoke(main, ["--azure", "--data", str(dataset)])
    assert result.exit_code == 2 and "--azure needs --model" in result.output
    assert workspace.submitted == []


def test_azure_does_not_record_existing_runs(workspace, dataset):
    result = CliRunner().invoke(main, ["--azure", "--data", str(dataset), "--model", "gpt-4o-mini",
                                       "--flow-run", "some_run"])
    assert result.exit_code == 2 and "records local runs only" in result.output


def test_prompt_flow_for_azure_imports_with_the_installed_azure_ai_ml():
    # promptflow-azure 1.18.5 imports azure.ai.ml._restclient.v2022_10_01, which azure-ai-ml 1.33 removed
    # (microsoft/promptflow#4176): without it, `--azure` and so the CD evaluation cannot start.
    from promptflow.azure import PFClient as WorkspacePFClient

    assert callable(WorkspacePFClient)
