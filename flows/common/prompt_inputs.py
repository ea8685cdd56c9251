"""The prompt_inputs node: what the prompt nodes fill in besides the article (answer formats, quote length)."""

from promptflow.core import tool

from news_reader.extraction.steps import prompt_inputs


@tool
def inputs() -> dict:
    """Each step's answer format, written from its pydantic schema, and the quote length the schema checks."""
    return prompt_inputs()
