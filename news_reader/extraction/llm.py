"""Structured chat completions against any OpenAI-compatible endpoint or Azure OpenAI.

Retries (exponential backoff with jitter, honouring Retry-After) of transient failures, among them an HTTP 200 that
is not a chat completion, a cap on concurrent calls, one repair round for invalid output, and token accounting per
step.
"""

from __future__ import annotations

import email.utils
import hashlib
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, TypeVar

import openai
import pydantic_core
from openai.types.chat import ChatCompletion, ChatCompletionTokenLogprob
from opentelemetry import context as otel_context
from opentelemetry import trace
from pydantic import BaseModel, Field, ValidationError, model_validator
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from news_reader.extraction.errors import (
    AnswerCutOff,
    InvalidModelOutput,
    LLMRateLimited,
    LLMRequestFailed,
    LLMTimeout,
    LLMUnavailable,
    NewsReaderError,
    validation_message,
)
from news_reader.extraction.prompting import system_prompt
from news_reader.extraction.schemas import StepUsage
from news_reader.settings import LLMSettings

if TYPE_CHECKING:
    import httpx2

T = TypeVar("T", bound=BaseModel)
_tracer = trace.get_tracer("news_reader")
_RETRYABLE_STATUS = {408, 409, 429}
_BUSINESS = otel_context.create_key("news_reader.business")


@contextmanager
def about_business(name: str) -> Iterator[None]:
    """Mark the LLM calls made inside as being about one business: their spans carry its name."""
    token = otel_context.attach(otel_context.set_value(_BUSINESS, name))
    try:
        yield
    finally:
        otel_context.detach(token)


# Stricter than the SDK's own model of a completion, which it builds from any JSON unchecked.
class _Message(BaseModel):
    content: str | None


class _Logprobs(BaseModel):
    content: list[ChatCompletionTokenLogprob] | None = None


class _PromptTokensDetails(BaseModel):
    cached_tokens: int | None = None


class _Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    prompt_tokens_details: _PromptTokensDetails | None = None


class _Choice(BaseModel):
    message: _Message
    finish_reason: str | None = None
    logprobs: _Logprobs | None = None

    @model_validator(mode="after")
    def _has_content(self) -> _Choice:
        # No content is an answer only when the token limit cut it off before any (then it is not retried).
        if self.message.content is None and self.finish_reason != "length":
            raise ValueError("message.content is null")
        return self


class _Completion(BaseModel):
    """The part of a chat completion this client reads, checked on the HTTP answer (see `_check_completion`)."""

    choices: list[_Choice] = Field(min_length=1)
    usage: _Usage | None = None


class _NotACompletion(Exception):
    """An HTTP 200 answer that is not a chat completion: the server's failure, retried like a 5xx."""


@dataclass(frozen=True)
class _Request:
    """What one structured call asks for besides its messages."""

    output_type: type[BaseModel]
    max_tokens: int
    top_logprobs: int | None = None


class LLMClient:
    """One client per configuration; its semaphore caps concurrent calls across all steps in the process."""

    def __init__(self, settings: LLMSettings):
        self.settings = settings
        self._openai = openai_client(settings)
        self._slots = threading.BoundedSemaphore(settings.max_concurrency)
        self._per_article = settings.resolved_calls_per_article()
        self._articles: dict[str, list] = {}  # article digest -> [its semaphore, calls holding or waiting for it]
        self._articles_lock = threading.Lock()
        self._backoff = wait_random_exponential(multiplier=0.5, max=settings.max_retry_wait_s)
        self._record_content = settings.log_content

    def extract(
        self, step: str, prompt: str, output_type: type[T], max_tokens: int, context: dict | None = None,
        article: str | None = None,
    ) -> tuple[T, StepUsage]:
        """The validated answer and what it cost. Errors carry the cost too, as `error.usage`. With `article`, the
        prompt's article, at most `calls_per_article` calls about it run at once."""
        answer, usage, _ = self.extract_with_logprobs(step, prompt, output_type, max_tokens, context, article)
        return answer, usage

    def extract_with_logprobs(
        self, step: str, prompt: str, output_type: type[T], max_tokens: int, context: dict | None = None,
        article: str | None = None, top_logprobs: int | None = None,
    ) -> tuple[T, StepUsage, list[ChatCompletionTokenLogprob]]:
        """`extract`, and with `top_logprobs` (0-20) the log-probability of each token of the accepted answer with
        that many alternatives; an empty list where the server returns none."""
        usage = StepUsage(step=step, started_at=datetime.now(UTC))
        started = time.perf_counter()
        attributes = {"news_reader.step": step, "gen_ai.request.model": self.settings.model}
        if business := otel_context.get_value(_BUSINESS):
            attributes["news_reader.business"] = business
        if self._record_content:
            attributes["news_reader.prompt"] = prompt
        with _tracer.start_as_current_span(f"news_reader.{step}", attributes=attributes) as span, \
                self._article_turn(article):
            try:
                request = _Request(output_type, max_tokens, top_logprobs)
                answer, tokens = self._valid_answer(step, prompt, request, context, usage)
                if self._record_content:
                    span.set_attribute("news_reader.answer", answer.model_dump_json())
                return answer, usage, tokens
            except NewsReaderError as error:
                error.usage = usage
                span.set_attribute("error.type", error.kind)
                raise
            finally:
                usage.latency_ms = round((time.perf_counter() - started) * 1000)
                span.set_attributes(_span_usage(usage))

    def _valid_answer(
        self, step: str, prompt: str, request: _Request, context: dict | None, usage: StepUsage
    ) -> tuple[BaseModel, list[ChatCompletionTokenLogprob]]:
        """Ask; on invalid output, show the model its error once; then give up with InvalidModelOutput."""
        messages = [{"role": "system", "content": system_prompt()}, {"role": "user", "content": prompt}]
        text, tokens = self._complete(messages, request, usage)
        try:
            return parse_output(text, request.output_type, context), tokens
        except ValueError as error:
            repair = f"Your answer was not valid: {error}. Answer again with corrected JSON only."
            messages += [{"role": "assistant", "content": text}, {"role": "user", "content": repair}]
        text, tokens = self._complete(messages, request, usage)
        try:
            return parse_output(text, request.output_type, context), tokens
        except ValueError as error:
            raise InvalidModelOutput(f"{step}: model output is invalid: {error}", text) from None

    def _complete(
        self, messages: list[dict], request: _Request, usage: StepUsage
    ) -> tuple[str, list[ChatCompletionTokenLogprob]]:
        """One chat completion, retries included, in a span of its own (GenAI semantic conventions)."""
        before = usage.model_copy()
        started = time.perf_counter()
        with _tracer.start_as_current_span(f"chat {self.settings.model}", kind=trace.SpanKind.CLIENT,
                                           attributes=self._call_attributes(request.max_tokens)) as span:
            try:
                return self._chat(messages, request, usage)
            except NewsReaderError as error:
                span.set_attribute("error.type", error.kind)
                raise
            finally:
                span.set_attributes(_span_usage(_spent_since(before, usage, started)))

    def _chat(
        self, messages: list[dict], request: _Request, usage: StepUsage
    ) -> tuple[str, list[ChatCompletionTokenLogprob]]:
        retrying = Retrying(
            retry=retry_if_exception(_is_retryable),
            wait=self._wait,
            stop=stop_after_attempt(self.settings.max_retries + 1) | self._retry_after_too_long,
            before_sleep=lambda _: setattr(usage, "retries", usage.retries + 1),
            reraise=True,
        )
        try:
            response = retrying(self._call, messages, request)
        except openai.APITimeoutError as err:
            raise LLMTimeout(f"the LLM did not answer within {self.settings.timeout_s:g} s") from err
        except openai.APIConnectionError as err:
            raise LLMUnavailable(f"cannot reach the LLM at {self._openai.base_url}: {err.__cause__ or err}") from err
        except openai.RateLimitError as err:
            raise LLMRateLimited(f"the LLM is rate limited: {_error_message(err)}") from err
        except openai.APIStatusError as err:
            raise LLMRequestFailed(f"the LLM answered HTTP {err.status_code}: {_error_message(err)}") from err
        except _NotACompletion as err:
            raise LLMRequestFailed(f"the LLM's answer is not a chat completion: {err}") from err
        usage.calls += 1
        trace.get_current_span().set_attributes(_response_attributes(response))
        if response.usage is not None:
            usage.prompt_tokens += response.usage.prompt_tokens
            usage.completion_tokens += response.usage.completion_tokens
            details = response.usage.prompt_tokens_details
            if details is not None and details.cached_tokens is not None:
                usage.cached_tokens = (usage.cached_tokens or 0) + details.cached_tokens
        choice = response.choices[0]
        if choice.finish_reason == "length":  # a repair round would be cut off too
            message = f"{usage.step}: the answer was cut off at {request.max_tokens} tokens"
            raise AnswerCutOff(message, choice.message.content or "")
        tokens = (choice.logprobs.content or []) if choice.logprobs is not None else []
        return choice.message.content, tokens

    def _call(self, messages: list[dict], request: _Request) -> ChatCompletion:
        extra = {} if request.top_logprobs is None else {"logprobs": True, "top_logprobs": request.top_logprobs}
        with self._slots:
            return self._openai.chat.completions.create(
                model=self.settings.model,
                messages=messages,
                response_format=response_format(request.output_type, self.settings.structured_output),
                temperature=self.settings.temperature,
                max_tokens=request.max_tokens,
                **extra,
            )

    @contextmanager
    def _article_turn(self, article: str | None) -> Iterator[None]:
        """Wait until fewer than `calls_per_article` calls about this article run; the wait counts as latency."""
        if article is None:
            yield
            return
        key = hashlib.sha256(article.encode("utf-8", "surrogatepass")).hexdigest()
        with self._articles_lock:
            entry = self._articles.setdefault(key, [threading.Semaphore(self._per_article), 0])
            entry[1] += 1
        try:
            with entry[0]:
                yield
        finally:
            with self._articles_lock:
                entry[1] -= 1
                if entry[1] == 0:
                    del self._articles[key]

    def _call_attributes(self, max_tokens: int) -> dict:
        return {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "azure.ai.openai" if self.settings.provider == "azure" else "openai",
            "gen_ai.request.model": self.settings.model,
            "gen_ai.request.max_tokens": max_tokens,
            "gen_ai.request.temperature": self.settings.temperature,
            "server.address": self._openai.base_url.host,
        }

    def _wait(self, state: RetryCallState) -> float:
        delay = retry_after_seconds(state.outcome.exception()) if state.outcome else None
        return delay if delay is not None else self._backoff(state)

    def _retry_after_too_long(self, state: RetryCallState) -> bool:
        """Give up at once when the server asks us to wait longer than we are willing to."""
        delay = retry_after_seconds(state.outcome.exception()) if state.outcome else None
        return delay is not None and delay > self.settings.max_retry_wait_s


@lru_cache(maxsize=16)
def get_client(settings: LLMSettings) -> LLMClient:
    """Share one client (and its concurrency cap) between all steps that use the same settings."""
    return LLMClient(settings)


def response_format(output_type: type[BaseModel], mode: str) -> dict:
    """The `response_format` a server understands, with the JSON Schema derived from the pydantic model."""
    schema = output_type.model_json_schema()
    if mode == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": output_type.__name__, "schema": schema, "strict": True}}
    if mode == "json_object_schema":  # llama-cpp-python's server: grammar-constrained to the schema
        return {"type": "json_object", "schema": schema}
    return {"type": "json_object"}


def retry_after_seconds(error: BaseException | None) -> float | None:
    """Seconds the server asked us to wait (`retry-after-ms`, `retry-after` as seconds or HTTP date), if any."""
    headers = getattr(getattr(error, "response", None), "headers", None)
    if headers is None:
        return None
    try:
        if "retry-after-ms" in headers:
            return max(0.0, float(headers["retry-after-ms"]) / 1000)
        if "retry-after" in headers:
            value = headers["retry-after"]
            try:
                return max(0.0, float(value))
            except ValueError:
                return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None
    return None


def _check_completion(response: httpx2.Response) -> None:
    """Refuse an HTTP 200 chat answer that is not a chat completion before anything reads it: the SDK builds its
    model of the answer unchecked, and Prompt flow's tracing of the call reads that model before we do."""
    if response.status_code != 200 or not response.request.url.path.endswith("/chat/completions"):
        return
    response.read()
    try:
        _Completion.model_validate_json(response.content)
    except ValidationError as err:
        raise _NotACompletion(f"{validation_message(err, 'answer')}; it starts {response.text[:120]!r}") from None


def _is_retryable(error: BaseException) -> bool:
    if isinstance(error, openai.APIConnectionError | _NotACompletion):  # connection errors include timeouts
        return True
    if isinstance(error, openai.APIStatusError):
        return error.status_code in _RETRYABLE_STATUS or error.status_code >= 500
    return False


def parse_output(text: str, output_type: type[T], context: dict | None = None) -> T:
    """Validate JSON text (tolerating a Markdown fence around it) against the model."""
    body = text.strip()
    if body.startswith("```"):
        body = body.split("\n", 1)[-1].rsplit("```", 1)[0]
    try:
        return output_type.model_validate_json(body, context=context)
    except ValidationError as err:
        raise ValueError(validation_message(err, "answer")) from err


def parse_cut_off(text: str, output_type: type[T], *, unfinished_strings: bool = False) -> T:
    """The part of an answer that was cut off that it finished (with `unfinished_strings`, also its last string as
    far as it goes), validated against the model; ValueError when that part is not a valid answer."""
    try:
        value = pydantic_core.from_json(text.strip(), allow_partial="trailing-strings" if unfinished_strings else True)
    except ValueError as err:
        raise ValueError(f"answer: {err}") from err
    try:
        return output_type.model_validate(value)
    except ValidationError as err:
        raise ValueError(validation_message(err, "answer")) from err


def _error_message(error: openai.APIStatusError) -> str:
    body = error.body
    if isinstance(body, dict):
        detail = body.get("error", body)
        if isinstance(detail, dict) and detail.get("message"):
            return str(detail["message"])
        return str(detail)
    return error.message


def _span_usage(usage: StepUsage) -> dict:
    attributes = {
        "gen_ai.usage.input_tokens": usage.prompt_tokens,
        "gen_ai.usage.output_tokens": usage.completion_tokens,
        "news_reader.llm_calls": usage.calls,
        "news_reader.retries": usage.retries,
        "news_reader.latency_ms": usage.latency_ms,
    }
    if usage.cached_tokens is not None:  # part of the input tokens
        attributes["gen_ai.usage.cache_read.input_tokens"] = usage.cached_tokens
    return attributes


def _spent_since(before: StepUsage, after: StepUsage, started: float) -> StepUsage:
    """What one call (with its retries) added to its step's usage."""
    cached = None if after.cached_tokens is None else after.cached_tokens - (before.cached_tokens or 0)
    return StepUsage(step=after.step, calls=after.calls - before.calls, retries=after.retries - before.retries,
                     prompt_tokens=after.prompt_tokens - before.prompt_tokens,
                     completion_tokens=after.completion_tokens - before.completion_tokens, cached_tokens=cached,
                     latency_ms=round((time.perf_counter() - started) * 1000))


def _response_attributes(response: ChatCompletion) -> dict:
    attributes = {
        "gen_ai.response.id": response.id,
        "gen_ai.response.model": response.model,
        "gen_ai.response.finish_reasons": [choice.finish_reason or "" for choice in response.choices],
    }
    return {name: value for name, value in attributes.items() if value is not None}  # some servers leave ids out


def openai_client(settings: LLMSettings) -> openai.OpenAI:
    """The SDK's client for these settings: no SDK retries (ours are in LLMClient), the configured timeout, and
    only chat completions taken as HTTP 200 answers."""
    common = {"timeout": openai.Timeout(settings.timeout_s, connect=10.0), "max_retries": 0,
              "http_client": openai.DefaultHttpxClient(event_hooks={"response": [_check_completion]})}
    key = settings.api_key.get_secret_value() if settings.api_key else None
    if settings.provider == "azure":
        if not settings.base_url:
            raise NewsReaderError("NEWS_READER_LLM_BASE_URL must be the Azure OpenAI endpoint")
        token_provider = None
        if settings.azure_ad_auth:
            from azure.identity import DefaultAzureCredential, get_bearer_token_provider

            token_provider = get_bearer_token_provider(
                DefaultAzureCredential(), "https://cognitiveservices.azure.com/.default"
            )
        return openai.AzureOpenAI(
            azure_endpoint=settings.base_url,
            api_version=settings.api_version,
            api_key=None if token_provider else key,
            azure_ad_token_provider=token_provider,
            **common,
        )
    # Local servers take any key; the SDK insists on one.
    return openai.OpenAI(base_url=settings.resolved_base_url(), api_key=key or "not-needed", **common)
