"""The judge_reasons node: the LLM judge's verdict on the reason of every company that matches a label."""

from promptflow.core import tool

from news_reader.evaluation.judge import judge_reasons
from news_reader.evaluation.scoring import LineScore
from news_reader.flow_nodes import Connection, client_for


@tool
def judge(connection: Connection, model: str, article: str, scores: dict) -> list:
    """The judge's verdict on the reason of every company that matches a label."""
    matches = LineScore.model_validate(scores).matches
    return [j.model_dump(mode="json") for j in judge_reasons(client_for(connection, model), article, matches)]
