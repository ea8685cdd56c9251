"""Monitoring of the live deployment: the model monitor (monitor.yaml completed for a workspace, endpoint and
deployment, loaded and validated by azure-ai-ml) and the endpoint's metric alerts (alerts.py), built offline, then
created or updated in Azure."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import yaml
from azure.ai.ml.entities import GenerationSafetyQualitySignal, MonitorSchedule
from azure.mgmt.monitor.models import ActionGroupResource, MetricAlertResource

from deployment.azureml import DEFINITIONS, alerts
from deployment.azureml.objects import Workspace

MONITOR_YAML = DEFINITIONS / "monitor.yaml"
QUALITY_SIGNAL = "generation_quality"
# The collection the signals read (deployment.yaml collects it); azure-ai-ml registers each collection as the data
# asset <endpoint>-<deployment>-<collection>, version 1, when it creates the deployment.
TRACES = "app_traces"
_QUALITY_METRICS = ("groundedness", "relevance", "coherence", "fluency", "similarity")
_JUDGE_SCORES = (1, 5)


@dataclass(frozen=True)
class MonitoringSetup:
    schedule: MonitorSchedule
    alerts: dict[str, MetricAlertResource]
    action_group_name: str
    action_group: ActionGroupResource | None  # None: the alerts notify an existing action group


def monitoring_setup(workspace: Workspace, endpoint: str, deployment: str, connection: str, judge_deployment: str,
                     alert_emails: Sequence[str] = (), action_group_id: str | None = None) -> MonitoringSetup:
    """Everything `apply` creates, validated. The alerts notify `action_group_id`, or else a new action group
    mailing `alert_emails`; the model monitor mails `alert_emails` too."""
    if not (alert_emails or action_group_id):
        raise ValueError("alerts need somebody to tell: give alert emails or an action group id")
    group_name = action_group_id.rsplit("/", 1)[-1] if action_group_id else f"{endpoint}-alerts"
    group = None if action_group_id else alerts.action_group(endpoint, alert_emails)
    group_id = action_group_id or (f"/subscriptions/{workspace.subscription_id}/resourceGroups/"
                                   f"{workspace.resource_group}/providers/microsoft.insights/actionGroups/{group_name}")
    rules = alerts.endpoint_alerts(workspace.endpoint_id(endpoint), group_id)
    for resource in [*rules.values(), *([group] if group else [])]:
        alerts.validate(resource)
    schedule = monitor_schedule(workspace, endpoint, deployment, connection, judge_deployment, alert_emails)
    return MonitoringSetup(schedule=schedule, alerts=rules, action_group_name=group_name, action_group=group)


def apply(setup: MonitoringSetup, schedules, monitor_client, resource_group: str) -> None:
    """Create or update the monitor (`schedules`: MLClient.schedules), the action group and the alert rules
    (`monitor_client`: azure-mgmt-monitor's MonitorManagementClient)."""
    schedules.begin_create_or_update(setup.schedule).result()
    if setup.action_group is not None:
        monitor_client.action_groups.create_or_update(resource_group, setup.action_group_name, setup.action_group)
    for name, rule in setup.alerts.items():
        monitor_client.metric_alerts.create_or_update(resource_group, name, rule)


def monitor_schedule(workspace: Workspace, endpoint: str, deployment: str, connection: str, judge_deployment: str,
                     alert_emails: Sequence[str] = ()) -> MonitorSchedule:
    """The monitor of `deployment`; the quality judge is `judge_deployment` behind the workspace's Azure OpenAI
    connection `connection`. With `alert_emails`, the monitor mails them when a signal crosses its threshold."""
    data = yaml.safe_load(MONITOR_YAML.read_text(encoding="utf-8"))
    data["name"] = f"{endpoint}-quality"
    monitor = data["create_monitor"]
    monitor["monitoring_target"]["endpoint_deployment_id"] = f"azureml:{endpoint}:{deployment}"
    for signal in monitor["monitoring_signals"].values():
        production = signal["production_data"]
        for source in production if isinstance(production, list) else [production]:
            source["input_data"]["path"] = f"azureml:{endpoint}-{deployment}-{TRACES}:1"
    quality = monitor["monitoring_signals"][QUALITY_SIGNAL]
    quality["connection_id"] = f"{workspace.id}/connections/{connection}"
    quality["properties"]["aoai_deployment_name"] = judge_deployment
    if alert_emails:
        monitor["alert_notification"] = {"emails": list(alert_emails)}
    # load_schedule's error path hides the validation message (azure-ai-ml 1.32-1.35); this is the loader it calls.
    schedule = MonitorSchedule._load(data=data, yaml_path=MONITOR_YAML)
    check_thresholds(schedule)
    copy.deepcopy(schedule)._to_rest_object()  # azure-ai-ml's checks of compute and signals, on a copy (see objects)
    return schedule


def check_thresholds(schedule: MonitorSchedule) -> None:
    """Thresholds within their scales (the loader checks names and types only): judge scores 1-5, pass rates and
    sampling rates 0-1."""
    for name, signal in schedule.create_monitor.monitoring_signals.items():
        if signal.sampling_rate is not None and not 0 < signal.sampling_rate <= 1:
            raise ValueError(f"{name}: sampling_rate {signal.sampling_rate} is not in (0, 1]")
        if not isinstance(signal, GenerationSafetyQualitySignal):
            continue
        for metric in _QUALITY_METRICS:
            for key, value in (getattr(signal.metric_thresholds, metric) or {}).items():
                low, high = (0, 1) if key.startswith("aggregated_") else _JUDGE_SCORES
                if not low <= value <= high:
                    raise ValueError(f"{name}: {metric} {key} {value} is not in [{low}, {high}]")
