"""The aggregate node: the run's metrics over every scored line, logged for `pf run show-metrics`."""

from promptflow.core import log_metric, tool

from news_reader.evaluation.scoring import JudgedReason, LineScore, aggregate


@tool
def aggregate_scores(scores: list, judged: list) -> dict:
    """Log the run's metrics; metrics with nothing to measure (None) are returned but not logged."""
    lines = [LineScore.model_validate(s) for s in scores]
    verdicts = [JudgedReason.model_validate(j) for line in judged if line for j in line]
    metrics = aggregate(lines, verdicts)
    for name, value in metrics.items():
        if value is not None:
            log_metric(name, value)
    return metrics
