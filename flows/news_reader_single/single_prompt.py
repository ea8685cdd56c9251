from typing import Union

from promptflow.connections import AzureOpenAIConnection, OpenAIConnection
from promptflow.core import tool

from news_reader import steps


@tool
def single_prompt(
    connection: Union[AzureOpenAIConnection, OpenAIConnection], model: str, prompt: str, article: str
) -> dict:
    """One LLM call for the whole result, in the same shape as flows/news_reader."""
    # Imported here, not at the top: Prompt flow 1.18 loads this file without the flow folder on sys.path
    # when a run overrides its connection (`--connections node.model=...`).
    from llm_connection import client_for

    return steps.single_prompt(client_for(connection, model), prompt, article).model_dump(mode="json")
