"""News Reader core: schemas, prompts, LLM calls and the extraction pipeline, with no Prompt flow import."""

from news_reader.pipeline import analyze, analyze_single
from news_reader.schemas import ArticleInfo

__version__ = "0.1.0"
__all__ = ["ArticleInfo", "__version__", "analyze", "analyze_single"]
