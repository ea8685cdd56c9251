from promptflow.core import tool

from news_reader.schemas import BusinessCategory, BusinessSpecificInfo, GeneralInfo, StepError, StepUsage
from news_reader.steps import assemble


@tool
def assemble_result(
    article: str,
    general_info: dict,
    business_category: dict,
    businesses_involved: dict | None = None,
    business_analysis: dict | None = None,
) -> dict:
    """Build the article's result; bypassed steps (non-business articles) arrive as None."""
    found = businesses_involved or {"usage": None, "error": None}
    analysis = business_analysis or {"business_info": [], "usage": [], "errors": []}
    usage = [StepUsage(**u) for u in (general_info["usage"], business_category["usage"], found["usage"]) if u]
    usage += [StepUsage(**u) for u in analysis["usage"]]
    errors = [StepError(**e) for e in ([found["error"]] if found["error"] else []) + analysis["errors"]]
    info = assemble(
        article,
        GeneralInfo.model_validate({k: general_info[k] for k in GeneralInfo.model_fields}),
        BusinessCategory.model_validate({k: business_category[k] for k in BusinessCategory.model_fields}),
        [BusinessSpecificInfo.model_validate(b) for b in analysis["business_info"]],
        usage,
        errors,
    )
    return info.model_dump(mode="json")
