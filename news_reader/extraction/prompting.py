"""Prompt templates (Jinja2, shared with the flows' prompt nodes) and the output format derived from the schemas."""

from __future__ import annotations

import types
import typing
from functools import cache
from pathlib import Path

from jinja2 import FileSystemLoader, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment
from pydantic import BaseModel

PROMPTS_DIR = Path(__file__).parent / "prompts"
DEFAULT_VARIANT = "variant_0"


@cache
def _environment(directory: Path) -> SandboxedEnvironment:
    # The same options as Prompt flow's prompt nodes, so both paths render the same text.
    return SandboxedEnvironment(
        loader=FileSystemLoader(directory), trim_blocks=True, keep_trailing_newline=True, undefined=StrictUndefined
    )


def template_file(step: str, variant: str = DEFAULT_VARIANT, templates: Path = PROMPTS_DIR) -> str:
    """`general_info` + `variant_1` -> `general_info__variant_1.jinja2` (variant_0 is the plain name)."""
    name = f"{step}.jinja2" if variant == DEFAULT_VARIANT else f"{step}__{variant}.jinja2"
    if not (templates / name).is_file():
        raise ValueError(f"no prompt variant {variant!r} for step {step!r} (looked for prompts/{name})")
    return name


def variants(step: str, templates: Path = PROMPTS_DIR) -> list[str]:
    """The variants a step has, variant_0 first."""
    found = sorted(p.name.removesuffix(".jinja2").split("__")[1] for p in templates.glob(f"{step}__*.jinja2"))
    return [DEFAULT_VARIANT, *found]


def template_source(step: str, variant: str = DEFAULT_VARIANT) -> str:
    """A step's template text, unrendered: for a step whose node renders its prompt several times (once per
    business), the DAG passes the template itself on."""
    return (PROMPTS_DIR / template_file(step, variant)).read_text(encoding="utf-8")


def render_source(source: str, **variables: object) -> str:
    """A template's text rendered like the template files (same options)."""
    return _environment(PROMPTS_DIR).from_string(source).render(**variables)


def render_file(template: Path, **variables: object) -> str:
    """Any template (the evaluation's judge has its own), rendered like the steps' prompts."""
    return _environment(template.parent).get_template(template.name).render(**variables)


@cache
def system_prompt() -> str:
    """Shared by every step, so the prompt prefix (system prompt + article) is the same for all of them."""
    return render_file(PROMPTS_DIR / "system.jinja2").strip()


def output_format(model: type[BaseModel]) -> str:
    """The answer format the prompt asks for, written from the pydantic model's fields and descriptions."""
    return "Answer with one JSON object with exactly these keys:\n" + "\n".join(_describe(model, indent=""))


def _describe(model: type[BaseModel], indent: str) -> list[str]:
    lines = []
    for name, field in model.model_fields.items():
        kind, nested = _kind(field.annotation)
        description = f": {field.description}" if field.description else ""
        lines.append(f'{indent}- "{name}" ({kind}){description}')
        if nested is not None:
            lines.extend(_describe(nested, indent + "  "))
    return lines


def _kind(annotation: object) -> tuple[str, type[BaseModel] | None]:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return "one of " + ", ".join(f'"{a}"' for a in args), None
    if origin is list:
        item = args[0]
        if isinstance(item, type) and issubclass(item, BaseModel):
            return "list of objects, each with these keys", item
        return f"list of {_kind(item)[0]}s", None
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_kind(a)[0] for a in args), None
    return {str: "string", bool: "true or false", int: "integer", float: "number"}[annotation], None
