from typing import Union

from promptflow.connections import AzureOpenAIConnection, OpenAIConnection
from promptflow.core import tool

from news_reader.steps import run_step


@tool
def extract(
    connection: Union[AzureOpenAIConnection, OpenAIConnection], model: str, step: str, prompt: str, article: str
) -> dict:
    """Send a rendered prompt; return the validated answer's fields plus this step's `usage`."""
    # Imported here, not at the top: Prompt flow 1.18 loads this file without the flow folder on sys.path
    # when a run overrides its connection (`--connections node.model=...`).
    from llm_connection import client_for

    value, usage = run_step(client_for(connection, model), step, prompt, article)
    return {**value.model_dump(), "usage": usage.model_dump(mode="json")}
