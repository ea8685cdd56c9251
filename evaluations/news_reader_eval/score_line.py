"""The score_line node: one article's predictions scored against its labels."""

from promptflow.core import tool

from news_reader.evaluation.scoring import score_line


@tool
def score(
    article: str,
    title_reference: str,
    summary_reference: str,
    expected_is_about_business: bool,
    expected_companies: list,
    title: str,
    summary: str,
    is_about_business: bool,
    business_info: list,
    usage: list,
    errors: list,
) -> dict:
    """One article's scores against its labels."""
    prediction = {
        "title": title, "summary": summary, "is_about_business": is_about_business, "business_info": business_info,
        "usage": usage, "errors": errors, "trace_id": "evaluated",
    }
    expected = {
        "title_reference": title_reference, "summary_reference": summary_reference,
        "is_about_business": expected_is_about_business, "companies": expected_companies,
    }
    return score_line(prediction, expected, article).model_dump(mode="json")
