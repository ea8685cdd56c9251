"""The prepare_article node: normalise the article; refuse empty, binary-looking or over-long input clearly."""

from promptflow.core import tool

from news_reader.extraction.article import prepare_article
from news_reader.settings import PipelineSettings


@tool
def prepare(article: str) -> str:
    """Normalise the article; refuse empty, binary-looking or over-long input with a clear message."""
    return prepare_article(article, PipelineSettings().max_article_chars)
