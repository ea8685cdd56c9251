"""Typed errors: every failure a user can meet has a kind and a one-line message."""


class NewsReaderError(Exception):
    """Base class; `kind` is a stable, machine-readable name for the failure."""

    kind = "error"


class InvalidArticle(NewsReaderError):
    kind = "invalid_article"


class ArticleTooLong(InvalidArticle):
    kind = "article_too_long"


class LLMUnavailable(NewsReaderError):
    kind = "llm_unavailable"


class LLMTimeout(NewsReaderError):
    kind = "llm_timeout"


class LLMRateLimited(NewsReaderError):
    kind = "llm_rate_limited"


class LLMRequestFailed(NewsReaderError):
    kind = "llm_request_failed"


class InvalidModelOutput(NewsReaderError):
    kind = "invalid_model_output"

    def __init__(self, message: str, raw_output: str):
        super().__init__(message)
        self.raw_output = raw_output
