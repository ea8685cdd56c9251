"""The extraction steps, each defined once in STEPS: output model, completion budget, prompt and its variants. A
step's node, function, prompt template and usage entries share its name."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache, cached_property

from openai.types.chat import ChatCompletionTokenLogprob
from pydantic import BaseModel

from news_reader.extraction.llm import LLMClient
from news_reader.extraction.prompting import DEFAULT_VARIANT, output_format, render_source, template_source
from news_reader.extraction.prompting import variants as template_variants
from news_reader.extraction.schemas import (
    QUOTE_MAX_WORDS,
    QUOTE_MIN_WORDS,
    ArticleExtraction,
    BusinessCategory,
    BusinessesInvolved,
    BusinessSalience,
    BusinessSpecificInfo,
    GeneralInfo,
    StepUsage,
)


@dataclass(frozen=True)
class Step:
    """One extraction step. Its prompt is `prompts/<name>.jinja2`, each variant of it `prompts/<name>__<variant>.jinja2`
    beside it; its answer must validate as `output` (with the article in the validation context when the answer
    quotes it) within `max_tokens`."""

    name: str
    output: type[BaseModel]
    max_tokens: int
    quotes_article: bool = False

    @property
    def variants(self) -> list[str]:
        """The step's prompt variants, variant_0 (the default) first, discovered from the template files."""
        return template_variants(self.name)

    @cached_property
    def output_format(self) -> str:
        """The answer format the prompt asks for: the template's `output_format` variable."""
        return output_format(self.output)

    def render(self, article: str, variant: str = DEFAULT_VARIANT, **variables: str) -> str:
        return self.render_source(template_source(self.name, variant), article, **variables)

    def render_source(self, source: str, article: str, **variables: str) -> str:
        """The prompt from one of the step's templates, given as its text (see `template_source`)."""
        return render_source(source, article=article, output_format=self.output_format, quote_words=QUOTE_WORDS,
                             **variables)

    def run(self, client: LLMClient, prompt: str, article: str) -> tuple[BaseModel, StepUsage]:
        answer, usage, _ = self.run_with_logprobs(client, prompt, article, top_logprobs=None)
        return answer, usage

    def run_with_logprobs(
        self, client: LLMClient, prompt: str, article: str, top_logprobs: int | None
    ) -> tuple[BaseModel, StepUsage, list[ChatCompletionTokenLogprob]]:
        """`run`, and the answer's token log-probabilities with `top_logprobs` alternatives each (None: not asked)."""
        context = {"article": article} if self.quotes_article else None
        return client.extract_with_logprobs(self.name, prompt, self.output, self.max_tokens, context,
                                            article=article, top_logprobs=top_logprobs)


# Completion budgets sit well above the longest answers measured on the local model (general_info 62,
# business_category 7, businesses_involved 11, business_analysis 109, single_prompt 165 tokens for one company),
# so that a runaway generation stops early and a cut-off answer is reported as such.
STEPS: dict[str, Step] = {step.name: step for step in (
    Step("general_info", GeneralInfo, max_tokens=250),
    Step("business_category", BusinessCategory, max_tokens=50),
    Step("businesses_involved", BusinessesInvolved, max_tokens=200),
    Step("business_salience", BusinessSalience, max_tokens=20),
    Step("business_analysis", BusinessSpecificInfo, max_tokens=300, quotes_article=True),
    Step("single_prompt", ArticleExtraction, max_tokens=1200, quotes_article=True),
)}
QUOTE_WORDS = f"{QUOTE_MIN_WORDS} to {QUOTE_MAX_WORDS}"
# `general_info=variant_1`, or Prompt flow's variant id `${general_info_prompt.variant_1}`.
_VARIANT_SPEC = re.compile(r"^(?:\$\{(?P<node>\w+?)(?:_prompt)?\.(?P<id>\w+)\}|(?P<step>\w+)=(?P<variant>\w+))$")


@cache
def prompt_inputs() -> dict[str, str]:
    """What the DAG's prompt nodes fill in besides the article: each step's answer format under the step's name, and
    `quote_words`, the length a quote must have (do not mutate)."""
    return {**{name: step.output_format for name, step in STEPS.items()}, "quote_words": QUOTE_WORDS}


def parse_variant(spec: str) -> tuple[str, str]:
    """A step and one of its variants from `step=variant` or Prompt flow's `${step_prompt.variant}`; ValueError
    names what is wrong."""
    match = _VARIANT_SPEC.match(spec.strip())
    if not match:
        raise ValueError(f"{spec!r}: use STEP=VARIANT or '${{STEP.VARIANT}}'")
    name, variant = match["node"] or match["step"], match["id"] or match["variant"]
    if name not in STEPS:
        raise ValueError(f"no step {name!r}; steps: {', '.join(STEPS)}")
    if variant not in STEPS[name].variants:
        raise ValueError(f"{name!r} has variants {', '.join(STEPS[name].variants)}, not {variant!r}")
    return name, variant


def prompt_node(step: str) -> str:
    """The DAG node that renders a step's prompt (the step's own node sends it)."""
    return f"{step}_prompt"


def variant_id(step: str, variant: str) -> str:
    """Prompt flow's name for one variant of a step's prompt node: `${general_info_prompt.variant_1}`."""
    return f"${{{prompt_node(step)}.{variant}}}"


def configuration(variants: dict[str, str]) -> str:
    """How experiments and the server name the prompts used: `default`, or `<step>=<variant>` for each step whose
    variant is not the default, comma-separated."""
    changed = [f"{step}={variant}" for step, variant in variants.items() if variant != DEFAULT_VARIANT]
    return ",".join(changed) or "default"
