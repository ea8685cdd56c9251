"""The business_category node."""

from promptflow.core import tool

from news_reader.extraction import nodes
from news_reader.flow_nodes import Connection, client_for
from news_reader.settings import PipelineSettings


@tool
def business_category(connection: Connection, model: str, prompt: str, article: str) -> dict:
    """Whether the article is about business, decided from the answer's probability where the server gives one."""
    limits = PipelineSettings()  # a node is an entry point: settings are read per call
    return nodes.business_category(client_for(connection, model), prompt, article, limits.min_business_probability)
