"""The single_prompt node: the whole result from one LLM call, in the same shape as flows/news_reader."""

from promptflow.core import tool

from news_reader.extraction import nodes
from news_reader.flow_nodes import Connection, client_for


@tool
def single_prompt(connection: Connection, model: str, prompt: str, article: str) -> dict:
    """One LLM call for the whole result, in the same shape as flows/news_reader."""
    return nodes.single_prompt(client_for(connection, model), prompt, article).model_dump(mode="json")
