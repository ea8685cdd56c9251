"""News Reader: the extraction core (`news_reader.extraction`) and the application around it (CLI, local model,
store, telemetry, evaluation), with no Prompt flow import."""

from __future__ import annotations

import importlib

__version__ = "0.1.0"
__all__ = ["ArticleInfo", "__version__", "analyze", "analyze_single"]
# Imported on first use, so that `import news_reader.cli` (and every `news-reader` command) does not pay for the
# LLM client's imports.
_LAZY = {"analyze": "news_reader.extraction.pipeline", "analyze_single": "news_reader.extraction.pipeline",
         "ArticleInfo": "news_reader.extraction.schemas"}


def __getattr__(name: str) -> object:
    if name not in _LAZY:
        raise AttributeError(f"module 'news_reader' has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name]), name)
