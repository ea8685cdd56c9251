"""Operational alerts on the online endpoint, as Azure Monitor metric alerts, and the action group they notify."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from azure.mgmt.monitor.models import (
    ActionGroupResource,
    EmailReceiver,
    MetricAlertAction,
    MetricAlertResource,
    MetricAlertSingleResourceMultipleMetricCriteria,
    MetricCriteria,
    MetricDimension,
)

ENDPOINT_TYPE = "Microsoft.MachineLearningServices/workspaces/onlineEndpoints"
# The metrics Azure Monitor keeps for an online endpoint: aggregations and dimensions ("Supported metrics for
# Microsoft.MachineLearningServices/workspaces/onlineEndpoints", Azure Monitor reference).
_LATENCY = ({"Average"}, {"deployment"})
_DATA_COLLECTION = {"Minimum", "Maximum", "Average"}
ENDPOINT_METRICS: dict[str, tuple[set[str], set[str]]] = {
    "ConnectionsActive": ({"Average"}, set()),
    "DataCollectionErrorsPerMinute": (_DATA_COLLECTION, {"deployment", "reason", "type"}),
    "DataCollectionEventsPerMinute": (_DATA_COLLECTION, {"deployment", "type"}),
    "NetworkBytes": ({"Average"}, set()),
    "NewConnectionsPerSecond": ({"Average"}, set()),
    "RequestLatency": _LATENCY,
    "RequestLatency_P50": _LATENCY,
    "RequestLatency_P90": _LATENCY,
    "RequestLatency_P95": _LATENCY,
    "RequestLatency_P99": _LATENCY,
    "RequestsPerMinute": ({"Average"}, {"deployment", "statusCode", "statusCodeClass", "modelStatusCode"}),
}
# The README's target is at most 90 s an article; a request times out at 180 s (deployment.yaml).
LATENCY_P95_MS = 90_000
# 5xx answers per minute, averaged over the window: 0.2 is three failed requests in 15 minutes.
FAILED_PER_MINUTE = 0.2
_WINDOW, _EVERY = timedelta(minutes=15), timedelta(minutes=5)


def action_group(endpoint: str, emails: Sequence[str]) -> ActionGroupResource:
    """Mails `emails` (Azure Monitor's common alert schema)."""
    receivers = [EmailReceiver(name=f"email-{number}", email_address=address, use_common_alert_schema=True)
                 for number, address in enumerate(emails, start=1)]
    return ActionGroupResource(location="Global", group_short_name=endpoint[:12], enabled=True,
                               email_receivers=receivers, tags={"app": "news-reader"})


def endpoint_alerts(endpoint_id: str, action_group_id: str) -> dict[str, MetricAlertResource]:
    """Alert rules by name: server errors and slow answers on the endpoint `endpoint_id`, any deployment."""
    endpoint = endpoint_id.rsplit("/", 1)[-1]
    failed = MetricCriteria(name="failed_requests", metric_name="RequestsPerMinute", metric_namespace=ENDPOINT_TYPE,
                            time_aggregation="Average", operator="GreaterThan", threshold=FAILED_PER_MINUTE,
                            dimensions=[MetricDimension(name="statusCodeClass", operator="Include", values=["5xx"])])
    slow = MetricCriteria(name="latency_p95", metric_name="RequestLatency_P95", metric_namespace=ENDPOINT_TYPE,
                          time_aggregation="Average", operator="GreaterThan", threshold=LATENCY_P95_MS)
    return {
        f"{endpoint}-failed-requests": _rule(endpoint_id, action_group_id, failed, severity=1,
                                             description="The endpoint answers with server errors (5xx)."),
        f"{endpoint}-latency-p95": _rule(endpoint_id, action_group_id, slow, severity=2,
                                         description=f"p95 request latency above {LATENCY_P95_MS // 1000} s."),
    }


def validate(resource: ActionGroupResource | MetricAlertResource) -> None:
    """Offline: the model's own required fields and length limits, its serialisation (types), and for an alert,
    metrics, aggregations and dimensions that exist for an online endpoint."""
    _check_fields(resource, type(resource).__name__)
    resource.serialize()
    if isinstance(resource, MetricAlertResource):
        for criterion in resource.criteria.all_of:
            _check_metric(criterion)


def _rule(endpoint_id: str, action_group_id: str, criterion: MetricCriteria, severity: int,
          description: str) -> MetricAlertResource:
    return MetricAlertResource(
        location="global", description=description, severity=severity, enabled=True, scopes=[endpoint_id],
        evaluation_frequency=_EVERY, window_size=_WINDOW, target_resource_type=ENDPOINT_TYPE, auto_mitigate=True,
        criteria=MetricAlertSingleResourceMultipleMetricCriteria(all_of=[criterion]),
        actions=[MetricAlertAction(action_group_id=action_group_id)], tags={"app": "news-reader"})


def _check_fields(model, where: str) -> None:
    for attribute, rules in model._validation.items():
        value = getattr(model, attribute, None)
        if rules.get("required") and value is None:
            raise ValueError(f"{where}.{attribute} is required")
        if "max_length" in rules and value is not None and len(value) > rules["max_length"]:
            raise ValueError(f"{where}.{attribute} {value!r} is longer than {rules['max_length']} characters")
    for attribute in model._attribute_map:
        value = getattr(model, attribute, None)
        for item in value if isinstance(value, list) else [value]:
            if hasattr(item, "_validation"):
                _check_fields(item, f"{where}.{attribute}")


def _check_metric(criterion: MetricCriteria) -> None:
    if criterion.metric_name not in ENDPOINT_METRICS:
        raise ValueError(f"{criterion.name}: {criterion.metric_name} is not a metric of an online endpoint")
    aggregations, dimensions = ENDPOINT_METRICS[criterion.metric_name]
    if criterion.time_aggregation not in aggregations:
        raise ValueError(f"{criterion.name}: {criterion.metric_name} has no {criterion.time_aggregation} aggregation")
    unknown = {dimension.name for dimension in criterion.dimensions or []} - dimensions
    if unknown:
        raise ValueError(f"{criterion.name}: {criterion.metric_name} has no dimension {', '.join(sorted(unknown))}")
    if criterion.threshold < 0:
        raise ValueError(f"{criterion.name}: threshold {criterion.threshold} is negative")
