from typing import Union

from promptflow.connections import AzureOpenAIConnection, OpenAIConnection
from promptflow.core import tool

from news_reader import steps


@tool
def businesses_involved(
    connection: Union[AzureOpenAIConnection, OpenAIConnection], model: str, prompt: str, article: str
) -> dict:
    """The businesses the article is about; a failure comes back as `error` so the rest of the result survives."""
    # Imported here, not at the top: Prompt flow 1.18 loads this file without the flow folder on sys.path
    # when a run overrides its connection (`--connections node.model=...`).
    from llm_connection import client_for

    found = steps.businesses_involved(client_for(connection, model), prompt, article)
    return {
        "businesses": found.businesses,
        "usage": found.usage.model_dump(mode="json") if found.usage else None,
        "error": found.error.model_dump() if found.error else None,
    }
