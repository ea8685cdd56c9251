"""Typed errors: every failure a user can meet has a kind and a one-line message."""

from __future__ import annotations

from pydantic import ValidationError


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


class AnswerCutOff(InvalidModelOutput):
    """The answer reached its completion budget (finish reason `length`); `raw_output` is what came before the cut."""


def validation_message(error: ValidationError, whole: str, drop_value_error: bool = False) -> str:
    """A pydantic error as one line, `location: message; ...`, where `whole` names the validated value itself; with
    `drop_value_error`, without the "Value error, " that pydantic puts before a validator's own message."""
    problems = []
    for problem in error.errors(include_url=False):
        message = problem["msg"].removeprefix("Value error, ") if drop_value_error else problem["msg"]
        problems.append(f"{'.'.join(map(str, problem['loc'])) or whole}: {message}")
    return "; ".join(problems)
