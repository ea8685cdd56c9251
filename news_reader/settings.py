"""One place for configuration: settings read from the environment, with defaults that run locally."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_STATE_DIR = Path(__file__).resolve().parents[1] / ".state"
LOCAL_MODEL_ALIAS = "qwen2.5-coder-1.5b-instruct"

StructuredOutput = Literal["auto", "json_schema", "json_object_schema", "json_object"]


class LocalModelSettings(BaseSettings):
    """The embedded default LLM: a GGUF model served by llama-cpp-python on loopback."""

    model_config = SettingsConfigDict(env_prefix="NEWS_READER_LOCAL_", frozen=True)

    state_dir: Path = REPO_STATE_DIR
    host: str = "127.0.0.1"
    port: int = 8077
    n_ctx: int = 8192
    n_threads: int = os.cpu_count() or 2
    start_timeout_s: float = 120.0

    @property
    def model_file(self) -> Path:
        return self.state_dir / "models" / "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"

    @property
    def server_dir(self) -> Path:
        return self.state_dir / "llm-server"

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"


class LLMSettings(BaseSettings):
    """Which LLM to call and how. Pointing at Azure OpenAI or OpenAI is a change of these values only."""

    model_config = SettingsConfigDict(env_prefix="NEWS_READER_LLM_", frozen=True)

    provider: Literal["openai", "azure"] = "openai"
    # None means the embedded local server; for Azure this is the resource endpoint.
    base_url: str | None = None
    api_key: SecretStr | None = None
    # The model name, or the deployment name on Azure OpenAI.
    model: str = LOCAL_MODEL_ALIAS
    api_version: str = "2024-10-21"
    # Azure only: authenticate with Microsoft Entra ID (DefaultAzureCredential) instead of a key.
    azure_ad_auth: bool = False
    structured_output: StructuredOutput = "auto"
    temperature: float = 0.0
    timeout_s: float = 300.0
    max_retries: int = 3
    max_retry_wait_s: float = 60.0
    max_concurrency: int = 4

    def resolved_base_url(self) -> str | None:
        if self.base_url is None and self.provider == "openai":
            return LocalModelSettings().base_url
        return self.base_url

    def uses_local_server(self) -> bool:
        return self.provider == "openai" and self.base_url is None

    def resolved_structured_output(self) -> StructuredOutput:
        """`auto`: strict JSON Schema for OpenAI and Azure OpenAI, llama.cpp's schema-in-json_object elsewhere."""
        if self.structured_output != "auto":
            return self.structured_output
        official = self.provider == "azure" or "api.openai.com" in (self.base_url or "")
        return "json_schema" if official else "json_object_schema"


class PipelineSettings(BaseSettings):
    """Limits of the extraction itself."""

    model_config = SettingsConfigDict(env_prefix="NEWS_READER_", frozen=True)

    max_article_chars: int = 20_000
    max_businesses: int = 5


class ServingSettings(BaseSettings):
    """The HTTP endpoint: where it listens, who may call it, and how much it reads."""

    model_config = SettingsConfigDict(env_prefix="NEWS_READER_SERVING_", frozen=True)

    host: str = "127.0.0.1"
    port: int = 8080
    threads: int = 4
    # When set, POST /score needs `Authorization: Bearer <key>`; health, version and the OpenAPI document stay open.
    api_key: SecretStr | None = None
    # Request bodies above this size are refused unread. 20,000 characters of JSON-escaped text fit with room.
    max_request_bytes: int = 1_000_000
    # Azure ML's data collector: each request's inputs, outputs and spans, which the model monitor reads. The
    # deployment turns it on; elsewhere there is no collector to send to.
    collect_data: bool = False


class StoreSettings(BaseSettings):
    """The database of analyses and feedback: SQLite in the repo's state folder by default, PostgreSQL by URL
    (`postgresql+psycopg://user:password@host/db`)."""

    model_config = SettingsConfigDict(env_prefix="NEWS_READER_DATABASE_", frozen=True)

    url: str = f"sqlite:///{REPO_STATE_DIR / 'news_reader.db'}"


class TelemetrySettings(BaseSettings):
    """Traces, JSON logs and metrics. Where spans go is also set by OpenTelemetry's and Azure Monitor's own
    variables: OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT, APPLICATIONINSIGHTS_CONNECTION_STRING."""

    model_config = SettingsConfigDict(env_prefix="NEWS_READER_", frozen=True)

    # Prompt flow's local trace service and UI (`make traces`). The server sends its spans there when it answers at
    # start; empty turns the check off.
    trace_ui_url: str = "http://127.0.0.1:23333"
    # Put prompts and answers into spans and log events. Off: logs carry no article text, prompt or answer.
    log_content: bool = False
    # USD per million input, cached input and output tokens, per model (or Azure deployment) name.
    prices_file: Path = Path(__file__).resolve().parent / "prices.yaml"
