"""The general_info node."""

from promptflow.core import tool

from news_reader.extraction import nodes
from news_reader.flow_nodes import Connection, client_for


@tool
def general_info(connection: Connection, model: str, prompt: str, article: str) -> dict:
    """The title and summary, their `usage`, and `error` when a summary cut off was kept in part."""
    return nodes.general_info(client_for(connection, model), prompt, article)
