"""The pydantic models are the specification: what they accept, refuse and send to the model."""

import pytest
from pydantic import ValidationError

from news_reader.extraction.schemas import (
    MAX_LISTED_BUSINESSES,
    ArticleExtraction,
    BusinessesInvolved,
    BusinessSpecificInfo,
    GeneralInfo,
)
from news_reader.extraction.steps import STEPS
from tests.conftest import ACME_QUOTE, ARTICLE

ACME = {"business": "Acme", "stock_price_change": "increase", "reason": "Profits rose.",
        "relevant_substring": ACME_QUOTE}


def test_a_quote_keeps_its_line_breaks_when_validated_again():
    quote = "on Monday.\n\nThe company said its profits rose by 40% in Europe"
    assert BusinessSpecificInfo(**{**ACME, "relevant_substring": quote}).relevant_substring == quote


def test_blank_strings_are_refused_and_spacing_is_collapsed():
    assert GeneralInfo(title="  A \n title ", summary="S.").title == "A title"
    with pytest.raises(ValidationError, match="must not be empty"):
        GeneralInfo(title=" ", summary="S.")


def test_unknown_keys_are_refused():
    with pytest.raises(ValidationError, match="Extra inputs"):
        GeneralInfo(title="T", summary="S.", sentiment="happy")


def test_stock_price_change_takes_only_the_three_directions():
    with pytest.raises(ValidationError, match="'increase', 'decrease' or 'none'"):
        BusinessSpecificInfo(**{**ACME, "stock_price_change": "up"})


def test_business_names_are_deduplicated_case_insensitively_in_order():
    names = BusinessesInvolved(businesses=["Acme", " acme ", "Globex", ""]).businesses
    assert names == ["Acme", "Globex"]


def test_the_business_list_is_bounded_in_the_schema_the_model_gets_and_when_validated():
    """A model held to the schema stops listing (the grammar allows no more items); one that is not is cut."""
    assert BusinessesInvolved.model_json_schema()["properties"]["businesses"]["maxItems"] == MAX_LISTED_BUSINESSES
    repeated = [f"Unit {n % 3}" for n in range(40)] + [f"Company {n}" for n in range(20)]
    assert BusinessesInvolved(businesses=repeated).businesses == (
        ["Unit 0", "Unit 1", "Unit 2"] + [f"Company {n}" for n in range(MAX_LISTED_BUSINESSES - 3)])


def test_a_quote_is_checked_against_the_article_in_the_validation_context():
    invented = {**ACME, "relevant_substring": "Acme plans to buy every rocket skate maker in the world"}
    with pytest.raises(ValidationError, match="not in the article"):
        BusinessSpecificInfo.model_validate(invented, context={"article": ARTICLE})


def test_a_quote_is_replaced_by_the_article_words():
    loose = {**ACME, "relevant_substring": "acme corp said on monday that its quarterly profits rose by 40%"}
    info = BusinessSpecificInfo.model_validate(loose, context={"article": ARTICLE})
    assert info.relevant_substring == ACME_QUOTE


def test_every_step_schema_suits_strict_structured_outputs():
    for model in (step.output for step in STEPS.values()):
        schema = model.model_json_schema()
        objects = [schema, *schema.get("$defs", {}).values()]
        for obj in objects:
            assert obj["additionalProperties"] is False
            assert set(obj["required"]) == set(obj["properties"])


def test_the_single_prompt_answer_lists_general_fields_first():
    assert list(ArticleExtraction.model_fields) == ["title", "summary", "is_about_business", "business_info"]
