from typing import Union

from promptflow.connections import AzureOpenAIConnection, OpenAIConnection
from promptflow.core import tool

from news_reader.steps import STEPS


@tool
def extract(
    connection: Union[AzureOpenAIConnection, OpenAIConnection], model: str, step: str, prompt: str, article: str
) -> dict:
    """Send a rendered prompt of the step named `step`; return the validated answer's fields plus its `usage`. The
    nodes of the steps that need nothing else (general_info, business_category) share this file."""
    # Imported here, not at the top: Prompt flow 1.18 loads this file without the flow folder on sys.path
    # when a run overrides its connection (`--connections node.model=...`).
    from llm_connection import client_for

    value, usage = STEPS[step].run(client_for(connection, model), prompt, article)
    return {**value.model_dump(), "usage": usage.model_dump(mode="json")}
