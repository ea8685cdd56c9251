"""One place for configuration: settings read from the environment, with defaults that run locally."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import DirectoryPath, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

REPO_STATE_DIR = Path(__file__).resolve().parents[1] / ".state"
LOCAL_MODEL_ALIAS = "qwen2.5-coder-1.5b-instruct"
# The price table shipped with the package; NEWS_READER_PRICES_FILE points at another.
PRICES_FILE = Path(__file__).resolve().parent / "prices.yaml"
DIRECTION_CALIBRATION_FILE = Path(__file__).resolve().parent / "extraction" / "calibration.json"

StructuredOutput = Literal["json_schema", "json_object_schema", "json_object"]


class LocalModelSettings(BaseSettings):
    """The embedded default LLM: a GGUF model served by llama.cpp's `llama-server` on loopback."""

    model_config = SettingsConfigDict(env_prefix="NEWS_READER_LOCAL_", frozen=True)

    # Where the model file, the server's log and its pid file are kept.
    state_dir: Path = REPO_STATE_DIR
    # Where the server listens; `make setup` points the `news_reader_llm` connection at the port.
    host: str = "127.0.0.1"
    port: int = 8077
    # The KV cache, in tokens, shared by all slots (llama.cpp's unified KV cache): any one request may use it all.
    n_ctx: int = 16384
    # Requests the server decodes at once (continuous batching).
    n_parallel: int = 4
    # CPU threads for inference: all cores.
    n_threads: int = os.cpu_count() or 2
    # Seconds the server may take to load the model and answer its health check.
    start_timeout_s: float = 120.0

    @property
    def model_file(self) -> Path:
        return self.state_dir / "models" / "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"

    @property
    def server_binary(self) -> Path:
        """`llama-server`, built by `make setup` from the llama.cpp tree in the pinned llama-cpp-python sdist."""
        return self.state_dir / "llama.cpp" / "bin" / "llama-server"

    @property
    def server_dir(self) -> Path:
        return self.state_dir / "llm-server"

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"


class LLMSettings(BaseSettings):
    """Which LLM to call and how. Pointing at Azure OpenAI or OpenAI is a change of these values only."""

    # validate_by_name: `log_content` keeps its variable's name without the prefix but is passed by field name.
    model_config = SettingsConfigDict(env_prefix="NEWS_READER_LLM_", frozen=True, validate_by_name=True)

    # `openai` (any OpenAI-compatible API) or `azure`.
    provider: Literal["openai", "azure"] = "openai"
    # None means the embedded local server; for Azure this is the resource endpoint.
    base_url: str | None = None
    # None for the local server, or on Azure with Entra ID.
    api_key: SecretStr | None = None
    # The model name, or the deployment name on Azure OpenAI.
    model: str = LOCAL_MODEL_ALIAS
    # Azure OpenAI's API version; strict structured outputs need 2024-08-01 or later.
    api_version: str = "2024-10-21"
    # Azure only: authenticate with Microsoft Entra ID (DefaultAzureCredential) instead of a key.
    azure_ad_auth: bool = False
    # How answers are held to their JSON Schema: OpenAI's strict `json_schema`, which OpenAI, Azure OpenAI and
    # llama.cpp's server accept; `json_object_schema` (the schema inside `json_object`) for servers that reject it,
    # such as llama-cpp-python's; `json_object` for servers that take no schema at all.
    structured_output: StructuredOutput = "json_schema"
    # Sampling temperature; 0 keeps answers as repeatable as the model allows.
    temperature: float = 0.0
    # Seconds per request.
    timeout_s: float = 300.0
    # Retries of 408/409/429/5xx, timeouts and connection errors, with exponential backoff and jitter.
    max_retries: int = 3
    # The longest wait between retries; a longer Retry-After fails at once.
    max_retry_wait_s: float = 60.0
    # Concurrent LLM calls per process.
    max_concurrency: int = 4
    # Concurrent LLM calls about one article; none: 1 on the local LLM, where an article's calls then share one
    # slot's cache of the article (see resolved_calls_per_article), else max_concurrency.
    calls_per_article: int | None = None
    # Alternatives per token asked for with the business analysis, from which its direction's confidence is read;
    # 0 for a server or model that rejects `logprobs` (the confidence is then null).
    top_logprobs: int = Field(10, ge=0, le=20)
    # The direction's calibration (evaluations/fit_calibration.py), fitted for the embedded model on the dev split;
    # empty: the model's own probabilities, until one is fitted for another model.
    direction_calibration: Path | None = DIRECTION_CALIBRATION_FILE
    # Put prompts and answers into spans and log events. Off: logs carry no article text, prompt or answer.
    log_content: bool = Field(False, validation_alias="NEWS_READER_LOG_CONTENT")

    def resolved_base_url(self) -> str | None:
        if self.base_url is None and self.provider == "openai":
            return LocalModelSettings().base_url
        return self.base_url

    @field_validator("direction_calibration", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    def uses_local_server(self) -> bool:
        """The embedded llama-server: no base URL, or the one `make setup` gave the Prompt flow connection."""
        local = LocalModelSettings().base_url
        return self.provider == "openai" and (self.base_url is None or self.base_url.rstrip("/") == local)

    def resolved_calls_per_article(self) -> int:
        """llama-server keeps a prompt's cache in the slot that processed it, and a slot cannot share it with the
        others while both work: calls about one article sent at once would each process the whole article again.
        One at a time, each reuses the article its predecessor left in the slot; other articles fill the other
        slots. Hosted APIs share their prompt cache between requests: there, up to max_concurrency."""
        if self.calls_per_article is not None:
            return self.calls_per_article
        return 1 if self.uses_local_server() else self.max_concurrency


class PipelineSettings(BaseSettings):
    """Limits of the extraction itself."""

    model_config = SettingsConfigDict(env_prefix="NEWS_READER_", frozen=True)

    # Longer articles are refused.
    max_article_chars: int = 20_000
    # Businesses analysed per article; the rest are reported as errors (at most schemas.MAX_LISTED_BUSINESSES listed).
    max_businesses: int = 5
    # A listed company is analysed only if it is named in the headline or first paragraph, or at least this often
    # (0: every listed company); the rest are reported as skipped (news_reader/extraction/salience.py).
    min_mentions: int = Field(3, ge=0)
    # A company that passes is then analysed only if the model says, at least this probably, that the news is about
    # it (one short call on the article's cached prefix; 0: not asked; 0.6 chosen on the dev split). Where the
    # server returns no log-probabilities the company is analysed.
    min_about_probability: float = Field(0.6, ge=0, le=1)
    # An article is about business when the model's probability of `true` reaches this (read from the answer's
    # log-probabilities; 0.45 chosen on the dev split, where the model's own answer, 0.5, misses economy stories).
    # Where the server returns no log-probabilities, the model's answer stands.
    min_business_probability: float = Field(0.45, ge=0, le=1)


class ServingSettings(BaseSettings):
    """The HTTP endpoint: where it listens, who may call it, and how much it reads."""

    # validate_by_name: `flow_dir` keeps its variable's name without the prefix but is passed by field name.
    model_config = SettingsConfigDict(env_prefix="NEWS_READER_SERVING_", frozen=True, validate_by_name=True)

    # Where the server listens (--host, --port).
    host: str = "127.0.0.1"
    port: int = 8080
    # Waitress worker threads.
    threads: int = 4
    # When set, POST /score needs `Authorization: Bearer <key>`; health, version and the OpenAPI document stay open.
    api_key: SecretStr | None = None
    # Request bodies above this size are refused unread. 20,000 characters of JSON-escaped text fit with room.
    # Waitress enforces it too: it buffers a whole body before the app sees it, and its own default is 1 GB.
    max_request_bytes: int = 1_000_000
    # Request line and headers above this size are refused (431) before they are buffered: a request here carries
    # a key and a few standard headers. Waitress's default is 256 KiB.
    max_header_bytes: int = 16_384
    # Open connections; more wait in the listen backlog. An idle or half-sent request holds a connection (one file
    # descriptor, a few KiB) but no worker thread: waitress reads requests asynchronously and hands only complete ones
    # to the threads. Waitress's default of 100 let 100 idle sockets lock every client out until they timed out; a
    # limit far above what browsers, probes and a load balancer hold open keeps that from being cheap.
    connection_limit: int = 1000
    # Seconds a connection may stay silent, with no request running, before it is closed: how long an idle or
    # half-sent request keeps its place (a long analysis is not cut). Waitress's default is 120.
    channel_timeout_s: int = 30
    # Seconds between waitress's sweeps for silent connections, so that one is closed at most this late. Waitress's
    # default is 30.
    cleanup_interval_s: int = 5
    # Azure ML's data collector: each request's inputs, outputs and spans, which the model monitor reads. The
    # deployment turns it on; elsewhere there is no collector to send to.
    collect_data: bool = False
    # The flow to serve (--flow); None: the registered flow under AZUREML_MODEL_DIR in Azure ML, else flows/news_reader.
    flow_dir: DirectoryPath | None = Field(None, validation_alias="NEWS_READER_FLOW_DIR")


class StoreSettings(BaseSettings):
    """The database of analyses and feedback: SQLite in the repo's state folder by default, PostgreSQL by URL
    (`postgresql+psycopg://user:password@host/db`)."""

    model_config = SettingsConfigDict(env_prefix="NEWS_READER_DATABASE_", frozen=True)

    # SQLAlchemy URL of the database.
    url: str = f"sqlite:///{REPO_STATE_DIR / 'news_reader.db'}"


class TelemetrySettings(BaseSettings):
    """Traces, JSON logs and metrics. Where spans go is also set by OpenTelemetry's and Azure Monitor's own
    variables: OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT, APPLICATIONINSIGHTS_CONNECTION_STRING."""

    model_config = SettingsConfigDict(env_prefix="NEWS_READER_", frozen=True)

    # Prompt flow's local trace service and UI (`make traces`). The server sends its spans there when it answers at
    # start; empty turns the check off.
    trace_ui_url: str = "http://127.0.0.1:23333"
    # USD per million input, cached input and output tokens, per model (or Azure deployment) name.
    prices_file: Path = PRICES_FILE


class AzureMLSettings(BaseSettings):
    """`python -m deployment.azureml`: the endpoint, its blue/green rollout and its monitoring. Each has a command line
    option, which wins. An empty variable counts as unset, as CD passes a GitHub variable nobody set."""

    model_config = SettingsConfigDict(env_prefix="NEWS_READER_", frozen=True, env_ignore_empty=True)

    # The online endpoint's name, unique in the Azure region.
    endpoint: str = "news-reader"
    # Rollout: Application Insights for the deployment's traces; None: none.
    appinsights_connection_string: str | None = None
    # Rollout: instances per deployment; None: deployment.yaml's.
    instance_count: int | None = None
    # Rollout: the new slot's traffic share in percent after each step, comma-separated, rising to 100.
    traffic_steps: str = "10,50,100"
    # Rollout: seconds of real traffic before each re-check.
    step_wait_s: float = 60.0
    # Monitor: the deployment to monitor; None: the live one.
    deployment: str | None = None
    # Monitor: the Azure OpenAI deployment that judges quality; None: AZURE_OPENAI_DEPLOYMENT.
    judge_deployment: str | None = None
    # Monitor: who gets the alerts, separated by spaces.
    alert_emails: Annotated[tuple[str, ...], NoDecode] = ()
    # Monitor: an existing action group for the metric alerts, instead of one mailing alert_emails.
    action_group_id: str | None = None

    @field_validator("alert_emails", mode="before")
    @classmethod
    def _split_on_spaces(cls, value: object) -> object:
        """The variable is addresses separated by spaces, not the JSON list pydantic-settings expects (NoDecode)."""
        return value.split() if isinstance(value, str) else value


def env_name(settings: type[BaseSettings], field: str) -> str:
    """The environment variable that sets `field` of `settings`: its alias, else the class's prefix and its name."""
    alias = settings.model_fields[field].validation_alias
    if isinstance(alias, str):
        return alias
    return f"{settings.model_config.get('env_prefix', '')}{field}".upper()


def setting_problems(settings: type[BaseSettings], error: ValidationError) -> str:
    """`error` from reading `settings` as one line, `VARIABLE: message; ...`."""
    problems = []
    for problem in error.errors(include_url=False):
        key = str(problem["loc"][0])
        # A field set through its alias is located at the alias, which is the variable's name already.
        problems.append(f"{env_name(settings, key) if key in settings.model_fields else key}: {problem['msg']}")
    return "; ".join(problems)
