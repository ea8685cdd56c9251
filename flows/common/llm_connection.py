"""Adapter: a Prompt flow connection plus a model name become the core's LLM client."""

from promptflow.connections import AzureOpenAIConnection, OpenAIConnection

from news_reader.llm import LLMClient, get_client
from news_reader.settings import LLMSettings


def client_for(connection: AzureOpenAIConnection | OpenAIConnection, model: str) -> LLMClient:
    """The connection says where and with which key; the node says which model (or Azure deployment)."""
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
