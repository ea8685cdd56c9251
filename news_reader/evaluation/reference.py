"""The reference request: one fixed LLM call timed on an experiment's own server, so that the flow's latency is
judged against the machine it ran on rather than against an absolute number of seconds."""

from __future__ import annotations

import secrets
import statistics
import time

import openai

from news_reader.extraction.errors import NewsReaderError
from news_reader.extraction.llm import openai_client
from news_reader.settings import LLMSettings

# About 450 prompt tokens and 48 generated ones: read and written like a short extraction step. A fresh nonce in
# front keeps the prompt out of the server's prompt cache, so every measurement processes all of it.
REFERENCE_COMPLETION_TOKENS = 48
_FILLER = ("The reference request measures how fast this server reads a prompt and writes an answer, so that the "
           "time an article takes can be judged against the machine it ran on. ") * 12


class ReferenceRequestFailed(NewsReaderError):
    kind = "reference_failed"


def reference_messages(nonce: str) -> list[dict]:
    return [
        {"role": "system", "content": "You follow instructions exactly."},
        {"role": "user", "content": f"Request {nonce}.\n{_FILLER}\nCount from 1 to 500, separated by commas, "
                                    "and write nothing else."},
    ]


def measure_reference_ms(settings: LLMSettings, samples: int = 2) -> list[int]:
    """Milliseconds the server takes for the reference request, `samples` times in a row, after one untimed: a
    freshly started llama.cpp answers its first long request 25-50% slower than the next ones (a one-token request
    does not warm it up). Times on a shared VM vary by about 10% from one request to the next, hence the samples."""
    client = openai_client(settings)
    times = []
    for sample in range(samples + 1):
        started = time.perf_counter()
        try:
            response = client.chat.completions.create(
                model=settings.model, messages=reference_messages(secrets.token_hex(8)), temperature=0.0,
                max_tokens=REFERENCE_COMPLETION_TOKENS,
            )
        except openai.OpenAIError as error:
            raise ReferenceRequestFailed(f"the reference request failed: {error}") from error
        if sample:
            times.append(round((time.perf_counter() - started) * 1000))
        # A shorter answer (the model stopped early) would make a shorter reference.
        written = getattr(response.usage, "completion_tokens", None)
        if written != REFERENCE_COMPLETION_TOKENS:
            raise ReferenceRequestFailed(f"the reference answer has {written} tokens, not "
                                         f"{REFERENCE_COMPLETION_TOKENS}: its time is not comparable")
    return times


def relative_latency(metrics: dict[str, float | None], reference_ms: list[int]) -> dict[str, float | None]:
    """The reference's mean time over all its samples, and the article wall time (mean, p95) in multiples of it."""
    reference = statistics.fmean(reference_ms) if reference_ms else None

    def per_reference(key: str) -> float | None:
        value = metrics.get(key)
        return value / reference if value is not None and reference else None

    return {"reference_ms": reference, "wall_mean_per_reference": per_reference("wall_ms_mean"),
            "wall_p95_per_reference": per_reference("wall_ms_p95")}
