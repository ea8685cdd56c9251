"""The business_analysis_prompt node: the text of the business-analysis template its variant names, which the
business_analysis node renders once per business (a prompt node renders once, before the businesses are known)."""

from pathlib import Path

from promptflow.core import tool


@tool
def business_analysis_prompt(template: str) -> str:
    """`template` is a path relative to the flow folder, like a prompt node's source."""
    return (Path(__file__).parent / template).read_text(encoding="utf-8")
