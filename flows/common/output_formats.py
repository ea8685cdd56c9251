from promptflow.core import tool

from news_reader.steps import output_formats


@tool
def formats() -> dict:
    """Each step's answer format, written from its pydantic schema, for the prompt templates."""
    return output_formats()
