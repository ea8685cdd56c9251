from promptflow.core import tool

from news_reader.schemas import ArticleExtraction, StepUsage
from news_reader.steps import assemble


@tool
def assemble_result(extraction: dict) -> dict:
    """Build the article's result, in the same shape as flows/news_reader."""
    answer = ArticleExtraction.model_validate({k: extraction[k] for k in ArticleExtraction.model_fields})
    info = assemble(answer, answer, answer.business_info, [StepUsage(**extraction["usage"])], [])
    return info.model_dump(mode="json")
