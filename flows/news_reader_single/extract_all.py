
from typing import Union

from promptflow.connections import AzureOpenAIConnection, OpenAIConnection
from promptflow.core import tool

from news_reader.steps import extract_all


@tool
def extract(connection: Union[AzureOpenAIConnection, OpenAIConnection], model: str, prompt: str, article: str) -> dict:
    """One LLM call for the whole result, in the same shape as flows/news_reader."""
    # Imported here, not at the top: Prompt flow 1.18 loads this file without the flow folder on sys.path
    # when a run overrides its connection (`--connections node.model=...`).
    from llm_connection import client_for

    return extract_all(client_for(connection, model), prompt, article).model_dump(mode="json")
