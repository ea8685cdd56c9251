"""The extraction steps. The DAG flow's nodes and the plain-Python pipeline both call these."""

from __future__ import annotations

import contextvars
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache

from opentelemetry import trace
from pydantic import BaseModel, ValidationError

from news_reader.article import headline
from news_reader.errors import InvalidModelOutput, NewsReaderError
from news_reader.llm import LLMClient, about_business, parse_output
from news_reader.prompting import DEFAULT_VARIANT, output_format, render
from news_reader.schemas import (
    ArticleExtraction,
    ArticleInfo,
    BusinessCategory,
    BusinessesInvolved,
    BusinessSpecificInfo,
    GeneralInfo,
    StepError,
    StepUsage,
)

STEP_OUTPUTS: dict[str, type[BaseModel]] = {
    "general_info": GeneralInfo,
    "business_category": BusinessCategory,
    "businesses_involved": BusinessesInvolved,
    "business_analysis": BusinessSpecificInfo,
    "single_prompt": ArticleExtraction,
}
# Completion budget per step, well above the longest answers measured on the local model (general_info 62,
# business_category 7, businesses_involved 11, business_analysis 109, single_prompt 165 tokens for one company),
# so that a runaway generation stops early and a cut-off answer is reported as such.
STEP_MAX_TOKENS = {
    "general_info": 250,
    "business_category": 50,
    "businesses_involved": 200,
    "business_analysis": 300,
    "single_prompt": 1200,
}
# Steps whose answer quotes the article: the article goes into validation so quotes are checked.
_QUOTING_STEPS = {"business_analysis", "single_prompt"}


@dataclass
class BusinessesFound:
    businesses: list[str]
    usage: StepUsage | None
    error: StepError | None


@dataclass
class BusinessAnalyses:
    infos: list[BusinessSpecificInfo]
    usage: list[StepUsage]
    errors: list[StepError]


@cache
def output_formats() -> dict[str, str]:
    """The answer format of every step, as the prompt templates' `output_format` variable (do not mutate)."""
    return {step: output_format(model) for step, model in STEP_OUTPUTS.items()}


def run_step(client: LLMClient, step: str, prompt: str, article: str) -> tuple[BaseModel, StepUsage]:
    context = {"article": article} if step in _QUOTING_STEPS else None
    return client.extract(step, prompt, STEP_OUTPUTS[step], STEP_MAX_TOKENS[step], context)


def render_step(step: str, article: str, variant: str = DEFAULT_VARIANT, **variables: str) -> str:
    return render(step, variant, article=article, output_format=output_formats()[step], **variables)


def find_businesses(client: LLMClient, prompt: str, article: str) -> BusinessesFound:
    """The businesses the article is about. A failure is recorded, not raised: the title, summary and
    classification already paid for must survive it."""
    try:
        involved, usage = run_step(client, "businesses_involved", prompt, article)
    except NewsReaderError as error:
        failure = StepError(step="businesses_involved", kind=error.kind, message=str(error))
        return BusinessesFound([], getattr(error, "usage", None), failure)
    assert isinstance(involved, BusinessesInvolved)
    return BusinessesFound(involved.businesses, usage, None)


def analyze_businesses(
    client: LLMClient, article: str, businesses: list[str], max_businesses: int
) -> BusinessAnalyses:
    """One LLM call per business, at most `max_concurrency` at a time; a failure is recorded, not raised."""
    result = BusinessAnalyses(infos=[], usage=[], errors=[])
    for name in businesses[max_businesses:]:
        result.errors.append(StepError(
            step="business_analysis", business=name, kind="skipped",
            message=f"more than {max_businesses} businesses (NEWS_READER_MAX_BUSINESSES)",
        ))
    chosen = businesses[:max_businesses]
    if not chosen:
        return result

    def analyze_one(name: str) -> tuple[BaseModel, StepUsage]:
        prompt = render_step("business_analysis", article, business=name)
        with about_business(name):
            return run_step(client, "business_analysis", prompt, article)

    with ThreadPoolExecutor(max_workers=client.settings.max_concurrency) as pool:
        futures = [pool.submit(contextvars.copy_context().run, analyze_one, name) for name in chosen]
        for name, future in zip(chosen, futures, strict=True):
            try:
                info, usage = future.result()
            except Exception as error:  # whatever fails, one business must not lose the others
                kind = error.kind if isinstance(error, NewsReaderError) else "unexpected_error"
                message = str(error) if isinstance(error, NewsReaderError) else f"{type(error).__name__}: {error}"
                result.errors.append(StepError(step="business_analysis", business=name, kind=kind, message=message))
                usage = getattr(error, "usage", None)
            else:
                result.infos.append(info.model_copy(update={"business": name}))
            if usage is not None:
                result.usage.append(usage.model_copy(update={"business": name}))
    return result


def assemble(
    article: str,
    general: GeneralInfo,
    category: BusinessCategory,
    business_info: list[BusinessSpecificInfo],
    usage: list[StepUsage],
    errors: list[StepError],
) -> ArticleInfo:
    """The result. A headline in the text is the title, verbatim; a non-business article has no business entries."""
    return ArticleInfo(
        title=headline(article) or general.title,
        summary=general.summary,
        is_about_business=category.is_about_business,
        business_info=business_info if category.is_about_business else [],
        trace_id=current_trace_id(),
        usage=usage,
        errors=errors,
    )


def extract_all(client: LLMClient, prompt: str, article: str) -> ArticleInfo:
    """The single-prompt step. An answer whose only fault is ungrounded quotes (after the repair round) is kept,
    with those businesses moved to `errors`, so that one bad quote does not lose the article."""
    try:
        extraction, usage = run_step(client, "single_prompt", prompt, article)
    except InvalidModelOutput as error:
        try:
            extraction = parse_output(error.raw_output, ArticleExtraction)
        except ValueError:
            raise error from None
        infos, errors = [], []
        for entry in extraction.business_info:
            try:
                infos.append(BusinessSpecificInfo.model_validate(entry.model_dump(), context={"article": article}))
            except ValidationError as invalid:
                message = "; ".join(e["msg"] for e in invalid.errors(include_url=False))
                errors.append(
                    StepError(step="single_prompt", business=entry.business, kind=error.kind, message=message)
                )
        return assemble(article, extraction, extraction, infos, [error.usage], errors)
    assert isinstance(extraction, ArticleExtraction)
    return assemble(article, extraction, extraction, extraction.business_info, [usage], [])


def current_trace_id() -> str:
    """The OpenTelemetry trace id of the current span, or a fresh id of the same form when nothing traces."""
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else uuid.uuid4().hex
