"""Plain-Python entry points: the declared graph run without Prompt flow, on the same node functions as the DAG."""

from __future__ import annotations

from opentelemetry import trace

from news_reader.extraction import nodes
from news_reader.extraction.article import prepare_article
from news_reader.extraction.graph import GRAPH, SINGLE_GRAPH, run_graph
from news_reader.extraction.llm import get_client
from news_reader.extraction.prompting import DEFAULT_VARIANT, template_source
from news_reader.extraction.schemas import ArticleInfo
from news_reader.extraction.steps import STEPS
from news_reader.settings import LLMSettings, PipelineSettings

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

    def prompt(step: str, text: str) -> str:
        return STEPS[step].render(text, variants.get(step, DEFAULT_VARIANT))

    # One function per node of GRAPH, called with the arguments the node reads.
    functions = {
        "prepare_article": lambda article: prepare_article(article, limits.max_article_chars),
        "general_info": lambda article: nodes.general_info(client, prompt("general_info", article), article),
        "business_category": lambda article: nodes.business_category(
            client, prompt("business_category", article), article, limits.min_business_probability),
        "businesses_involved": lambda article: nodes.businesses_involved(
            client, prompt("businesses_involved", article), article),
        "business_analysis": lambda article, businesses: nodes.business_analysis(
            client, template_source("business_analysis", variants.get("business_analysis", DEFAULT_VARIANT)),
            article, businesses["businesses"], limits.max_businesses, min_mentions=limits.min_mentions,
            min_about=limits.min_about_probability),
        "assemble": nodes.assemble,
    }
    with _tracer.start_as_current_span("news_reader.analyze"):
        return run_graph(GRAPH, functions, article)["assemble"]


def analyze_single(
    article: str | bytes, llm: LLMSettings | None = None, pipeline: PipelineSettings | None = None
) -> ArticleInfo:
    """The "one prompt to rule them all" baseline, like `flows/news_reader_single`."""
    client, limits = get_client(llm or LLMSettings()), pipeline or PipelineSettings()
    functions = {
        "prepare_article": lambda article: prepare_article(article, limits.max_article_chars),
        "single_prompt": lambda article: nodes.single_prompt(client, STEPS["single_prompt"].render(article), article),
    }
    with _tracer.start_as_current_span("news_reader.analyze_single"):
        return run_graph(SINGLE_GRAPH, functions, article)["single_prompt"]
