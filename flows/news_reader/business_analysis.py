from typing import Union

from promptflow.connections import AzureOpenAIConnection, OpenAIConnection
from promptflow.core import tool

from news_reader import steps
from news_reader.settings import PipelineSettings


@tool
def business_analysis(
    connection: Union[AzureOpenAIConnection, OpenAIConnection], model: str, article: str, businesses: list
) -> dict:
    """Fan out over the businesses with a bounded number of concurrent LLM calls; failures are recorded."""
    # Imported here, not at the top: Prompt flow 1.18 loads this file without the flow folder on sys.path
    # when a run overrides its connection (`--connections node.model=...`).
    from llm_connection import client_for

    client = client_for(connection, model)
    result = steps.business_analysis(client, article, businesses, PipelineSettings().max_businesses)
    return {
        "business_info": [info.model_dump() for info in result.infos],
        "usage": [usage.model_dump(mode="json") for usage in result.usage],
        "errors": [error.model_dump() for error in result.errors],
    }
