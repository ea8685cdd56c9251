from typing import Union

from promptflow.connections import AzureOpenAIConnection, OpenAIConnection
from promptflow.core import tool

from news_reader.evaluation.judge import judge_reasons
from news_reader.evaluation.scoring import LineScore


@tool
def judge(connection: Union[AzureOpenAIConnection, OpenAIConnection], model: str, article: str, scores: dict) -> list:
    """The judge's verdict on the reason of every company that matches a label."""
    # Imported here, not at the top: Prompt flow 1.18 loads this file without the flow folder on sys.path
    # when a run overrides its connection (`--connections node.model=...`).
    from llm_connection import client_for

    matches = LineScore.model_validate(scores).matches
    return [j.model_dump(mode="json") for j in judge_reasons(client_for(connection, model), article, matches)]
