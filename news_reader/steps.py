"""The extraction steps, each defined once in STEPS. The DAG flow's nodes and the plain-Python pipeline both call
these; a step's node, function, prompt template and usage entries share its name."""

from __future__ import annotations

import contextvars
import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache, cached_property

from opentelemetry import trace
from pydantic import BaseModel, ValidationError

from news_reader.article import headline
from news_reader.errors import InvalidModelOutput, NewsReaderError
from news_reader.llm import LLMClient, about_business, parse_output
from news_reader.prompting import DEFAULT_VARIANT, output_format, render
from news_reader.prompting import variants as template_variants
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


@dataclass(frozen=True)
class Step:
    """One extraction step. Its prompt is `prompts/<name>.jinja2`, each variant of it `prompts/<name>__<variant>.jinja2`
    beside it; its answer must validate as `output` (with the article in the validation context when the answer
    quotes it) within `max_tokens`."""

    name: str
    output: type[BaseModel]
    max_tokens: int
    quotes_article: bool = False

    @property
    def variants(self) -> list[str]:
        """The step's prompt variants, variant_0 (the default) first, discovered from the template files."""
        return template_variants(self.name)

    @cached_property
    def output_format(self) -> str:
        """The answer format the prompt asks for: the template's `output_format` variable."""
        return output_format(self.output)

    def render(self, article: str, variant: str = DEFAULT_VARIANT, **variables: str) -> str:
        return render(self.name, variant, article=article, output_format=self.output_format, **variables)

    def run(self, client: LLMClient, prompt: str, article: str) -> tuple[BaseModel, StepUsage]:
        context = {"article": article} if self.quotes_article else None
        return client.extract(self.name, prompt, self.output, self.max_tokens, context)


# Completion budgets sit well above the longest answers measured on the local model (general_info 62,
# business_category 7, businesses_involved 11, business_analysis 109, single_prompt 165 tokens for one company),
# so that a runaway generation stops early and a cut-off answer is reported as such.
STEPS: dict[str, Step] = {step.name: step for step in (
    Step("general_info", GeneralInfo, max_tokens=250),
    Step("business_category", BusinessCategory, max_tokens=50),
    Step("businesses_involved", BusinessesInvolved, max_tokens=200),
    Step("business_analysis", BusinessSpecificInfo, max_tokens=300, quotes_article=True),
    Step("single_prompt", ArticleExtraction, max_tokens=1200, quotes_article=True),
)}
# `general_info=variant_1`, or Prompt flow's variant id `${general_info_prompt.variant_1}`.
_VARIANT_SPEC = re.compile(r"^(?:\$\{(?P<node>\w+?)(?:_prompt)?\.(?P<id>\w+)\}|(?P<step>\w+)=(?P<variant>\w+))$")


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
    """The answer format of every step, for the DAG's prompt nodes (do not mutate)."""
    return {name: step.output_format for name, step in STEPS.items()}


def parse_variant(spec: str) -> tuple[str, str]:
    """A step and one of its variants from `step=variant` or Prompt flow's `${step_prompt.variant}`; ValueError
    names what is wrong."""
    match = _VARIANT_SPEC.match(spec.strip())
    if not match:
        raise ValueError(f"{spec!r}: use STEP=VARIANT or '${{STEP.VARIANT}}'")
    name, variant = match["node"] or match["step"], match["id"] or match["variant"]
    if name not in STEPS:
        raise ValueError(f"no step {name!r}; steps: {', '.join(STEPS)}")
    if variant not in STEPS[name].variants:
        raise ValueError(f"{name!r} has variants {', '.join(STEPS[name].variants)}, not {variant!r}")
    return name, variant


def prompt_node(step: str) -> str:
    """The DAG node that renders a step's prompt (the step's own node sends it)."""
    return f"{step}_prompt"


def variant_id(step: str, variant: str) -> str:
    """Prompt flow's name for one variant of a step's prompt node: `${general_info_prompt.variant_1}`."""
    return f"${{{prompt_node(step)}.{variant}}}"


def configuration(variants: dict[str, str]) -> str:
    """How experiments and the server name the prompts used: `default`, or `<step>=<variant>` for each step whose
    variant is not the default, comma-separated."""
    changed = [f"{step}={variant}" for step, variant in variants.items() if variant != DEFAULT_VARIANT]
    return ",".join(changed) or "default"


def businesses_involved(client: LLMClient, prompt: str, article: str) -> BusinessesFound:
    """The businesses the article is about. A failure is recorded, not raised: the title, summary and
    classification already paid for must survive it."""
    try:
        involved, usage = STEPS["businesses_involved"].run(client, prompt, article)
    except NewsReaderError as error:
        failure = StepError(step="businesses_involved", kind=error.kind, message=str(error))
        return BusinessesFound([], getattr(error, "usage", None), failure)
    assert isinstance(involved, BusinessesInvolved)
    return BusinessesFound(involved.businesses, usage, None)


def business_analysis(
    client: LLMClient, article: str, businesses: list[str], max_businesses: int, variant: str = DEFAULT_VARIANT
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

    step = STEPS["business_analysis"]

    def analyze_one(name: str) -> tuple[BaseModel, StepUsage]:
        prompt = step.render(article, variant, business=name)
        with about_business(name):
            return step.run(client, prompt, article)

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


def single_prompt(client: LLMClient, prompt: str, article: str) -> ArticleInfo:
    """The single-prompt step. An answer whose only fault is ungrounded quotes (after the repair round) is kept,
    with those businesses moved to `errors`, so that one bad quote does not lose the article."""
    try:
        extraction, usage = STEPS["single_prompt"].run(client, prompt, article)
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
