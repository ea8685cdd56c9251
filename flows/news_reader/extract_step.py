from typing import Union

from llm_connection import client_for
from promptflow.connections import AzureOpenAIConnection, OpenAIConnection
from promptflow.core import tool

from news_reader.steps import run_step


@tool
def extract(
    connection: Union[AzureOpenAIConnection, OpenAIConnection], model: str, step: str, prompt: str, article: str
) -> dict:
    """Send a rendered prompt; return the validated answer's fields plus this step's `usage`."""
    value, usage = run_step(client_for(connection, model), step, prompt, article)
    return {**value.model_dump(), "usage": usage.model_dump()}
