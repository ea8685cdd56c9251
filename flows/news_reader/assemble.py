from promptflow.core import tool

from news_reader.schemas import BusinessCategory, BusinessSpecificInfo, GeneralInfo, StepError, StepUsage
from news_reader.steps import assemble


@tool
def assemble_result(
    general_info: dict, business_category: dict, businesses_involved: dict | None, business_analysis: dict | None
) -> dict:
    """Build the article's result; bypassed steps (non-business articles) arrive as None."""
    analysis = business_analysis or {"business_info": [], "usage": [], "errors": []}
    steps = [general_info, business_category, businesses_involved]
    usage = [StepUsage(**step["usage"]) for step in steps if step is not None]
    usage += [StepUsage(**u) for u in analysis["usage"]]
    info = assemble(
        GeneralInfo.model_validate({k: general_info[k] for k in GeneralInfo.model_fields}),
        BusinessCategory.model_validate({k: business_category[k] for k in BusinessCategory.model_fields}),
        [BusinessSpecificInfo.model_validate(b) for b in analysis["business_info"]],
        usage,
        [StepError(**e) for e in analysis["errors"]],
    )
    return info.model_dump(mode="json")
