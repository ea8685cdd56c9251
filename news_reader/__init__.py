"""News Reader core: schemas, prompts, LLM calls and the extraction pipeline, with no Prompt flow import."""

from news_reader.pipeline import analyze, analyze_single
from news_reader.schemas import ArticleInfo

__all__ = ["ArticleInfo", "analyze", "analyze_single"]
