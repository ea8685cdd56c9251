"""Plain-Python entry points: the same graph as the DAG flows, without Prompt flow."""

from __future__ import annotations

import contextvars
from concurrent.futures import ThreadPoolExecutor

from opentelemetry import trace

from news_reader.article import prepare_article
from news_reader.llm import get_client
from news_reader.prompting import DEFAULT_VARIANT
from news_reader.schemas import ArticleInfo, StepUsage
from news_reader.settings import LLMSettings, PipelineSettings
from news_reader.steps import STEPS, assemble, business_analysis, businesses_involved, single_prompt

_tracer = trace.get_tracer("news_reader")


def analyze(
    article: str | bytes,
    llm: LLMSettings | None = None,
    pipeline: PipelineSettings | None = None,
    variants: dict[str, str] | None = None,
) -> ArticleInfo:
    """Analyse one article step by step, like `flows/news_reader`; `variants` maps a step to a prompt variant."""
    client, limits, variants = get_client(llm or LLMSettings()), pipeline or PipelineSettings(), variants or {}
    if unknown := set(variants) - set(STEPS):
        raise ValueError(f"no such step: {', '.join(sorted(unknown))} (steps: {', '.join(STEPS)})")
    with _tracer.start_as_current_span("news_reader.analyze"):
        text = prepare_article(article, limits.max_article_chars)

        def prompt(name: str) -> str:
            return STEPS[name].render(text, variants.get(name, DEFAULT_VARIANT))

        def run(name: str):
            return STEPS[name].run(client, prompt(name), text)

        with ThreadPoolExecutor(max_workers=1) as pool:
            general_future = pool.submit(contextvars.copy_context().run, run, "general_info")
            category, category_usage = run("business_category")
            usage: list[StepUsage] = [category_usage]
            infos, errors = [], []
            if category.is_about_business:
                found = businesses_involved(client, prompt("businesses_involved"), text)
                usage += [found.usage] if found.usage else []
                errors += [found.error] if found.error else []
                if general_future.done():
                    general_future.result()  # raises now if general info failed: do not pay for the fan-out
                analyses = business_analysis(client, text, found.businesses, limits.max_businesses,
                                             variants.get("business_analysis", DEFAULT_VARIANT))
                usage += analyses.usage
                infos = analyses.infos
                errors += analyses.errors
            general, general_usage = general_future.result()
        return assemble(text, general, category, infos, [general_usage, *usage], errors)


def analyze_single(
    article: str | bytes, llm: LLMSettings | None = None, pipeline: PipelineSettings | None = None
) -> ArticleInfo:
    """The "one prompt to rule them all" baseline, like `flows/news_reader_single`."""
    client, limits = get_client(llm or LLMSettings()), pipeline or PipelineSettings()
    with _tracer.start_as_current_span("news_reader.analyze_single"):
        text = prepare_article(article, limits.max_article_chars)
        return single_prompt(client, STEPS["single_prompt"].render(text), text)
