"""The assemble node: the article's result from the other nodes' answers."""

from promptflow.core import tool

from news_reader.extraction import nodes


@tool
def assemble(
    article: str,
    general_info: dict,
    business_category: dict,
    businesses_involved: dict | None = None,
    business_analysis: dict | None = None,
) -> dict:
    """Build the article's result; bypassed steps (non-business articles) arrive as None."""
    result = nodes.assemble(article, general_info, business_category, businesses_involved, business_analysis)
    return result.model_dump(mode="json")
