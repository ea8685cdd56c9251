"""The output_formats node: each step's answer format, written from its pydantic schema, for the prompt nodes."""

from promptflow.core import tool

from news_reader.extraction.steps import output_formats


@tool
def formats() -> dict:
    """Each step's answer format, written from its pydantic schema, for the prompt templates."""
    return output_formats()
