"""The general_info and business_category nodes: a step that needs nothing but its rendered prompt."""

from promptflow.core import tool

from news_reader.extraction import nodes
from news_reader.flow_nodes import Connection, client_for


@tool
def extract(connection: Connection, model: str, step: str, prompt: str, article: str) -> dict:
    """Send the step's rendered prompt; return the validated answer's fields plus its `usage`."""
    return nodes.extract(client_for(connection, model), step, prompt, article)
