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
    return get_client(settings_for(connection, model))


def settings_for(connection: Connection, model: str) -> LLMSettings:
    """The core's LLM settings for a connection and a model name."""
    if isinstance(connection, AzureOpenAIConnection):
        return LLMSettings(
            provider="azure",
            base_url=connection.api_base,
            api_key=connection.api_key or None,
            api_version=connection.api_version,
            azure_ad_auth=getattr(connection, "auth_mode", "key") == "meid_token",
            model=model,
        )
    return LLMSettings(
        provider="openai",
        base_url=connection.base_url or "https://api.openai.com/v1",
        api_key=connection.api_key or None,
        model=model,
    )


def connection_for(name: str, llm: LLMSettings) -> Connection:
    """The other way: a connection named `name` from the core's settings, for a server that has no connection
    store (settings_for(connection_for(name, llm), llm.model) gives back where, which key and which model)."""
    key = llm.api_key.get_secret_value() if llm.api_key else None
    if llm.provider == "azure":
        connection = AzureOpenAIConnection(name=name, api_base=llm.base_url, api_key=key,
                                           api_version=llm.api_version,
                                           auth_mode="meid_token" if llm.azure_ad_auth else "key")
    else:
        connection = OpenAIConnection(name=name, api_key=key or "none", base_url=llm.resolved_base_url())
    # Prompt flow 1.18.5's invoker calls `to_execution_connection_dict` on what a connection provider returns, but
    # the connection classes name that method with a leading underscore.
    connection.to_execution_connection_dict = connection._to_execution_connection_dict
    return connection
