"""What the DAG flows' python nodes share: the project's settings and a Prompt flow connection become the core's
LLM client. The only module of the package that imports Prompt flow; the flows import it like any other module."""

from __future__ import annotations

from typing import Union

from promptflow.connections import AzureOpenAIConnection, OpenAIConnection

from news_reader.extraction.llm import LLMClient, get_client
from news_reader.settings import LLMSettings

# Prompt flow 1.18 recognises a connection input only when it is annotated with typing.Union, not with `X | Y`.
Connection = Union[AzureOpenAIConnection, OpenAIConnection]  # noqa: UP007


def client_for(connection: Connection, model: str) -> LLMClient:
    """The connection says where and with which key; the node says which model (or Azure deployment). Everything
    else (timeouts, retries, concurrency) comes from the environment, read per call: a node is an entry point, and
    Prompt flow sets a run's environment variables before it calls the node."""
    if isinstance(connection, AzureOpenAIConnection):
        settings = LLMSettings(
            provider="azure",
            base_url=connection.api_base,
            api_key=connection.api_key or None,
            api_version=connection.api_version,
            azure_ad_auth=getattr(connection, "auth_mode", "key") == "meid_token",
            model=model,
        )
    else:
        settings = LLMSettings(
            provider="openai",
            base_url=connection.base_url or "https://api.openai.com/v1",
            api_key=connection.api_key,
            model=model,
        )
    return get_client(settings)
