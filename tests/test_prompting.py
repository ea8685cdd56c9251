"""Prompt templates: a shared cacheable prefix, formats derived from the schemas, parity with Prompt flow."""

import pytest

from news_reader.extraction.prompting import (
    PROMPTS_DIR,
    output_format,
    render_source,
    template_file,
    template_source,
    variants,
)
from news_reader.extraction.schemas import QUOTE_MAX_WORDS, QUOTE_MIN_WORDS, BusinessSpecificInfo
from news_reader.extraction.steps import STEPS, prompt_inputs

ARTICLE = "Acme profits soar\n\nAcme said {{ 7 * 7 }} times that profits rose."


def all_templates():
    return [(step, variant) for step in STEPS for variant in variants(step)]


@pytest.mark.parametrize(("step", "variant"), all_templates())
def test_every_prompt_starts_with_the_same_article_block_so_servers_can_cache_it(step, variant):
    prompt = render_source(template_source(step, variant), article=ARTICLE, output_format="F", business="Acme",
                           quote_words="8 to 25")
    assert prompt.startswith(f"<article>\n{ARTICLE}\n</article>\n\n")
    assert prompt.rstrip().endswith("F")


def test_article_text_is_not_evaluated_as_a_template():
    assert "{{ 7 * 7 }}" in render_source(template_source("general_info"), article=ARTICLE, output_format="F")


def test_general_info_and_business_category_have_variants_to_compare():
    assert variants("general_info") == ["variant_0", "variant_1"]
    assert variants("business_category") == ["variant_0", "variant_1"]
    assert template_file("general_info", "variant_1") == "general_info__variant_1.jinja2"


def test_an_unknown_variant_is_a_clear_error():
    with pytest.raises(ValueError, match="no prompt variant 'variant_9' for step 'general_info'"):
        template_file("general_info", "variant_9")


def test_output_format_names_every_field_with_its_type_and_description():
    text = output_format(BusinessSpecificInfo)
    for name, field in BusinessSpecificInfo.model_fields.items():
        assert f'"{name}"' in text and field.description in text
    assert 'one of "increase", "decrease", "none"' in text


def test_nested_lists_of_objects_are_described_with_their_fields():
    assert '  - "stock_price_change"' in prompt_inputs()["single_prompt"]


@pytest.mark.parametrize(("step", "variant"), all_templates())
def test_rendering_matches_prompt_flow_prompt_nodes(step, variant):
    from promptflow.tools.template_rendering import render_template_jinja2

    variables = {"article": ARTICLE, "output_format": "F", "business": "Acme", "quote_words": "8 to 25"}
    template = (PROMPTS_DIR / template_file(step, variant)).read_text()
    rendered = render_source(template_source(step, variant), **variables)
    assert rendered == str(render_template_jinja2(template, **variables))


@pytest.mark.parametrize(("step", "variant"), all_templates())
def test_a_template_takes_the_quote_length_from_the_schema_not_a_copy_of_it(step, variant):
    text = (PROMPTS_DIR / template_file(step, variant)).read_text()
    assert str(QUOTE_MAX_WORDS) not in text
    if "quote" in STEPS[step].output_format:
        assert f"{QUOTE_MIN_WORDS} to {QUOTE_MAX_WORDS}" in STEPS[step].render(ARTICLE, variant, business="Acme")
