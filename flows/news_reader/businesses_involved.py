"""The businesses_involved node."""

from promptflow.core import tool

from news_reader.extraction import nodes
from news_reader.flow_nodes import Connection, client_for


@tool
def businesses_involved(connection: Connection, model: str, prompt: str, article: str) -> dict:
    """The businesses the article is about; a failure comes back as `error` so the rest of the result survives."""
    return nodes.businesses_involved(client_for(connection, model), prompt, article)
