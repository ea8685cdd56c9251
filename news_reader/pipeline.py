"""Plain-Python entry points: the same graph as the DAG flows, without Prompt flow."""

from __future__ import annotations

import contextvars
from concurrent.futures import ThreadPoolExecutor

from opentelemetry import trace

from news_reader.article import prepare_article
from news_reader.llm import get_client
from news_reader.prompting import DEFAULT_VARIANT
from news_reader.schemas import ArticleInfo, BusinessesInvolved, StepUsage
from news_reader.settings import LLMSettings, PipelineSettings
from news_reader.steps import analyze_businesses, assemble, extract_all, render_step, run_step

_tracer = trace.get_tracer("news_reader")


def analyze(
    article: str | bytes,
    llm: LLMSettings | None = None,
    pipeline: PipelineSettings | None = None,
    variants: dict[str, str] | None = None,
) -> ArticleInfo:
    """Analyse one article step by step, like `flows/news_reader`; `variants` maps a step to a prompt variant."""
    client, limits, variants = get_client(llm or LLMSettings()), pipeline or PipelineSettings(), variants or {}
    with _tracer.start_as_current_span("news_reader.analyze"):
        text = prepare_article(article, limits.max_article_chars)

        def step(name: str):
            return run_step(client, name, render_step(name, text, variants.get(name, DEFAULT_VARIANT)), text)

        with ThreadPoolExecutor(max_workers=1) as pool:
            general_future = pool.submit(contextvars.copy_context().run, step, "general_info")
            category, category_usage = step("business_category")
            usage: list[StepUsage] = [category_usage]
            infos, errors = [], []
            if category.is_about_business:
                involved, involved_usage = step("businesses_involved")
                assert isinstance(involved, BusinessesInvolved)
                analyses = analyze_businesses(client, text, involved.businesses, limits.max_businesses)
                usage += [involved_usage, *analyses.usage]
                infos, errors = analyses.infos, analyses.errors
            general, general_usage = general_future.result()
        return assemble(general, category, infos, [general_usage, *usage], errors)


def analyze_single(
    article: str | bytes, llm: LLMSettings | None = None, pipeline: PipelineSettings | None = None
) -> ArticleInfo:
    """The "one prompt to rule them all" baseline, like `flows/news_reader_single`."""
    client, limits = get_client(llm or LLMSettings()), pipeline or PipelineSettings()
    with _tracer.start_as_current_span("news_reader.analyze_single"):
        text = prepare_article(article, limits.max_article_chars)
        return extract_all(client, render_step("single_prompt", text), text)
