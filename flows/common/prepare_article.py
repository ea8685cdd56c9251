from promptflow.core import tool

from news_reader.article import prepare_article
from news_reader.settings import PipelineSettings


@tool
def prepare(article: str) -> str:
    """Normalise the article; refuse empty, binary-looking or over-long input with a clear message."""
    return prepare_article(article, PipelineSettings().max_article_chars)
