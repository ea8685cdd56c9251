"""Monitoring: the model monitor and the endpoint's metric alerts build and validate offline; a wrong threshold or
metric fails; `apply` creates them; the CLI's dry run prints them."""

from __future__ import annotations

import copy
from datetime import timedelta

import pytest
import yaml
from azure.ai.ml.entities import GenerationSafetyQualitySignal, GenerationTokenStatisticsSignal, MonitorSchedule
from azure.ai.ml.entities._load_functions import load_schedule
from azure.ai.ml.exceptions import MlException
from azure.core.exceptions import SerializationError
from click.testing import CliRunner
from marshmallow import ValidationError

from deployment.azureml import __main__ as cli
from deployment.azureml import alerts, monitoring
from deployment.azureml.monitoring import MONITOR_YAML, monitor_schedule, monitoring_setup
from deployment.azureml.objects import Workspace

WORKSPACE = Workspace("00000000-0000-0000-0000-000000000000", "rg-news-reader", "mlw-news-reader")
ENDPOINT_ID = WORKSPACE.endpoint_id("news-reader-dev")
GROUP_ID = (f"/subscriptions/{WORKSPACE.subscription_id}/resourceGroups/rg-ops/providers/microsoft.insights"
            "/actionGroups/oncall")


def schedule(**overrides) -> MonitorSchedule:
    arguments = {"workspace": WORKSPACE, "endpoint": "news-reader-dev", "deployment": "green",
                 "connection": "aoai-judge", "judge_deployment": "gpt-4o", **overrides}
    return monitor_schedule(**arguments)


def test_monitor_yaml_loads_as_a_monitor_schedule():
    assert isinstance(load_schedule(MONITOR_YAML), MonitorSchedule)


def test_the_monitor_watches_the_deployment_through_its_collected_traces():
    built = schedule()
    monitor = built.create_monitor
    assert built.name == "news-reader-dev-quality"
    assert monitor.monitoring_target.endpoint_deployment_id == "azureml:news-reader-dev:green"
    quality = monitor.monitoring_signals[monitoring.QUALITY_SIGNAL]
    tokens = monitor.monitoring_signals["token_statistics"]
    assert isinstance(quality, GenerationSafetyQualitySignal) and isinstance(tokens, GenerationTokenStatisticsSignal)
    for data in [*quality.production_data, tokens.production_data]:
        assert data.input_data.path == "news-reader-dev-green-app_traces:1"  # the data asset, version 1
    assert quality.connection_id == f"{WORKSPACE.id}/connections/aoai-judge"
    assert quality.properties["aoai_deployment_name"] == "gpt-4o"
    assert quality.production_data[0].data_column_names == {
        "prompt_column": "article", "completion_column": "summary", "context_column": "article"}


def test_the_quality_signal_judges_four_metrics_against_thresholds():
    body = schedule()._to_rest_object().serialize()["properties"]["action"]["monitorDefinition"]
    quality = body["signals"][monitoring.QUALITY_SIGNAL]
    assert quality["signalType"] == "GenerationSafetyQuality" and quality["mode"] == "Enabled"
    thresholds = {item["metric"]: item["threshold"]["value"] for item in quality["metricThresholds"]}
    assert thresholds["AggregatedGroundednessPassRate"] == 0.8 and thresholds["AcceptableFluencyScorePerInstance"] == 3
    assert {metric.removeprefix("Aggregated").removesuffix("PassRate") for metric in thresholds
            if metric.startswith("Aggregated")} == {"Groundedness", "Relevance", "Coherence", "Fluency"}
    assert 0 < quality["samplingRate"] <= 1
    assert body["signals"]["token_statistics"]["signalType"] == "GenerationTokenStatistics"
    assert body["computeConfiguration"]["computeType"] == "ServerlessSpark"


def test_alert_emails_go_to_the_monitor():
    built = schedule(alert_emails=["ops@example.com"])
    assert built.create_monitor.alert_notification.emails == ["ops@example.com"]
    assert schedule().create_monitor.alert_notification is None


def _with_monitor(tmp_path, monkeypatch, mutate) -> None:
    data = yaml.safe_load(MONITOR_YAML.read_text(encoding="utf-8"))
    mutate(data["create_monitor"])
    (tmp_path / "monitor.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    monkeypatch.setattr(monitoring, "MONITOR_YAML", tmp_path / "monitor.yaml")


def _quality_thresholds(monitor: dict) -> dict:
    return monitor["monitoring_signals"][monitoring.QUALITY_SIGNAL]["metric_thresholds"]


@pytest.mark.parametrize(("mutate", "error", "message"), [
    (lambda m: _quality_thresholds(m)["groundedness"].update(aggregated_groundedness_pass_rate=1.5), ValueError,
     r"aggregated_groundedness_pass_rate 1.5 is not in \[0, 1\]"),
    (lambda m: _quality_thresholds(m)["fluency"].update(acceptable_fluency_score_per_instance=7), ValueError,
     r"acceptable_fluency_score_per_instance 7\S* is not in \[1, 5\]"),
    (lambda m: _quality_thresholds(m)["coherence"].update(aggregated_coherence_pass_rate="high"), ValidationError,
     "generation_quality"),
    (lambda m: _quality_thresholds(m).update(toxicity={"aggregated_toxicity_pass_rate": 0.9}), ValidationError,
     "generation_quality"),
    (lambda m: _quality_thresholds(m)["relevance"].update(aggregated_relevant_pass_rate=0.7), ValidationError,
     "generation_quality"),
    (lambda m: m["monitoring_signals"]["token_statistics"].update(sampling_rate=0), ValueError, "sampling_rate 0"),
    (lambda m: m["monitoring_target"].update(ml_task="summarization"), ValidationError, "ml_task"),
    (lambda m: m["compute"].update(runtime_version="3.3"), MlException, "runtime version"),
])
def test_a_wrong_threshold_metric_or_setting_fails(tmp_path, monkeypatch, mutate, error, message):
    _with_monitor(tmp_path, monkeypatch, mutate)
    with pytest.raises(error, match=message):
        schedule()


def test_the_endpoint_alerts_watch_server_errors_and_p95_latency_of_the_endpoint():
    rules = alerts.endpoint_alerts(ENDPOINT_ID, GROUP_ID)
    assert set(rules) == {"news-reader-dev-failed-requests", "news-reader-dev-latency-p95"}
    for rule in rules.values():
        alerts.validate(rule)
        assert rule.scopes == [ENDPOINT_ID] and rule.actions[0].action_group_id == GROUP_ID
        assert rule.target_resource_type == "Microsoft.MachineLearningServices/workspaces/onlineEndpoints"
        assert rule.window_size >= rule.evaluation_frequency
    failed = rules["news-reader-dev-failed-requests"].criteria.all_of[0]
    assert failed.metric_name == "RequestsPerMinute"
    assert [(d.name, d.operator, d.values) for d in failed.dimensions] == [("statusCodeClass", "Include", ["5xx"])]
    slow = rules["news-reader-dev-latency-p95"].criteria.all_of[0]
    assert (slow.metric_name, slow.operator, slow.threshold) == ("RequestLatency_P95", "GreaterThan", 90_000)


def test_alert_rules_serialise_to_the_azure_monitor_request_body():
    body = alerts.endpoint_alerts(ENDPOINT_ID, GROUP_ID)["news-reader-dev-failed-requests"].serialize()
    assert body["location"] == "global"
    assert body["properties"]["windowSize"] == "PT15M" and body["properties"]["evaluationFrequency"] == "PT5M"
    criteria = body["properties"]["criteria"]
    assert criteria["odata.type"] == "Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria"


def _broken_rule(change):
    rule = copy.deepcopy(alerts.endpoint_alerts(ENDPOINT_ID, GROUP_ID)["news-reader-dev-failed-requests"])
    change(rule, rule.criteria.all_of[0])
    return rule


@pytest.mark.parametrize(("change", "error", "message"), [
    (lambda rule, c: setattr(c, "metric_name", "Requests"), ValueError, "not a metric of an online endpoint"),
    (lambda rule, c: setattr(c, "metric_name", "RequestLatency_P95"), ValueError, "no dimension statusCodeClass"),
    (lambda rule, c: setattr(c, "time_aggregation", "Total"), ValueError, "no Total aggregation"),
    (lambda rule, c: setattr(c, "threshold", -1), ValueError, "negative"),
    (lambda rule, c: setattr(c, "threshold", "many"), SerializationError, "MetricCriteria"),
    (lambda rule, c: setattr(rule, "window_size", None), ValueError, "window_size is required"),
    (lambda rule, c: setattr(rule, "evaluation_frequency", "often"), SerializationError, "often"),
])
def test_a_wrong_metric_threshold_or_field_fails_alert_validation(change, error, message):
    with pytest.raises(error, match=message):
        alerts.validate(_broken_rule(change))


def test_the_action_group_mails_the_alert_emails_and_fits_azure_limits():
    group = alerts.action_group("news-reader-production", ["ops@example.com", "ml@example.com"])
    alerts.validate(group)
    assert [receiver.email_address for receiver in group.email_receivers] == ["ops@example.com", "ml@example.com"]
    assert len(group.group_short_name) <= 12
    group.group_short_name = "news-reader-production"
    with pytest.raises(ValueError, match="longer than 12"):
        alerts.validate(group)


def test_setup_with_emails_creates_an_action_group_the_alerts_notify():
    setup = monitoring_setup(WORKSPACE, "news-reader-dev", "blue", "aoai-judge", "gpt-4o", ["ops@example.com"])
    assert setup.action_group_name == "news-reader-dev-alerts" and setup.action_group is not None
    expected = f"/subscriptions/{WORKSPACE.subscription_id}/resourceGroups/rg-news-reader/providers/" \
               "microsoft.insights/actionGroups/news-reader-dev-alerts"
    assert {rule.actions[0].action_group_id for rule in setup.alerts.values()} == {expected}


def test_setup_with_an_existing_action_group_creates_none():
    setup = monitoring_setup(WORKSPACE, "news-reader-dev", "blue", "aoai-judge", "gpt-4o", action_group_id=GROUP_ID)
    assert setup.action_group is None and setup.action_group_name == "oncall"
    assert {rule.actions[0].action_group_id for rule in setup.alerts.values()} == {GROUP_ID}


def test_setup_without_anyone_to_alert_is_refused():
    with pytest.raises(ValueError, match="alert emails or an action group id"):
        monitoring_setup(WORKSPACE, "news-reader-dev", "blue", "aoai-judge", "gpt-4o")


class _Recorder:
    def __init__(self):
        self.calls = []
        self.action_groups, self.metric_alerts = self, self

    def begin_create_or_update(self, schedule):
        self.calls.append(("monitor", schedule.name))
        return self

    def result(self):
        return None

    def create_or_update(self, resource_group, name, resource):
        self.calls.append((type(resource).__name__, resource_group, name))


def test_apply_creates_the_monitor_the_action_group_and_the_alert_rules():
    setup = monitoring_setup(WORKSPACE, "news-reader-dev", "blue", "aoai-judge", "gpt-4o", ["ops@example.com"])
    schedules, monitor_client = _Recorder(), _Recorder()
    monitoring.apply(setup, schedules, monitor_client, "rg-news-reader")
    assert schedules.calls == [("monitor", "news-reader-dev-quality")]
    assert monitor_client.calls == [("ActionGroupResource", "rg-news-reader", "news-reader-dev-alerts"),
                                    ("MetricAlertResource", "rg-news-reader", "news-reader-dev-failed-requests"),
                                    ("MetricAlertResource", "rg-news-reader", "news-reader-dev-latency-p95")]


AZURE = ["--subscription-id", WORKSPACE.subscription_id, "--resource-group", "rg-news-reader",
         "--workspace", "mlw-news-reader", "--endpoint", "news-reader-dev"]


def test_monitor_dry_run_prints_everything_it_would_create_without_reaching_azure(monkeypatch):
    monkeypatch.setattr(cli, "ml_client", lambda workspace: pytest.fail("a dry run must not reach Azure"))
    result = CliRunner().invoke(cli.main, ["monitor", "--dry-run", *AZURE, "--openai-connection", "aoai-judge",
                                           "--judge-deployment", "gpt-4o", "--alert-email", "ops@example.com"])
    assert result.exit_code == 0, result.output
    for line in ("model monitor news-reader-dev-quality on news-reader-dev:blue", "action group news-reader-dev-alerts",
                 "metric alert news-reader-dev-failed-requests", "metric alert news-reader-dev-latency-p95",
                 "metricName: RequestLatency_P95", "aggregated_groundedness_pass_rate: 0.8"):
        assert line in result.output


def test_monitor_needs_someone_to_alert():
    result = CliRunner().invoke(cli.main, ["monitor", "--dry-run", *AZURE, "--openai-connection", "aoai-judge",
                                           "--judge-deployment", "gpt-4o"])
    assert result.exit_code == 2 and "--alert-email or --action-group-id" in result.output


def test_endpoint_dry_run_prints_the_endpoint():
    result = CliRunner().invoke(cli.main, ["endpoint", "--dry-run", *AZURE])
    assert result.exit_code == 0 and "auth_mode: key" in result.output and "type: system_assigned" in result.output


def test_alert_windows_are_ones_azure_monitor_accepts():
    rule = alerts.endpoint_alerts(ENDPOINT_ID, GROUP_ID)["news-reader-dev-latency-p95"]
    assert rule.evaluation_frequency in {timedelta(minutes=m) for m in (1, 5, 15, 30, 60)}
    assert timedelta(minutes=1) <= rule.window_size <= timedelta(days=1)
