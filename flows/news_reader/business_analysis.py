"""The business_analysis node: one LLM call per business, fanned out inside the node."""

from promptflow.core import tool

from news_reader.extraction import nodes
from news_reader.flow_nodes import Connection, client_for
from news_reader.settings import PipelineSettings


@tool
def business_analysis(connection: Connection, model: str, template: str, article: str, businesses: list) -> dict:
    """Fan out over the businesses with a bounded number of concurrent LLM calls, each prompt rendered from
    `template` (business_analysis_prompt's output); failures are recorded."""
    limits = PipelineSettings()  # a node is an entry point: settings are read per call
    return nodes.business_analysis(client_for(connection, model), template, article, businesses,
                                   limits.max_businesses, min_mentions=limits.min_mentions,
                                   min_about=limits.min_about_probability)
