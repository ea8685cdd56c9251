"""The graph's node functions, shared by the DAG flow's python nodes and the plain-Python pipeline: a node's answer
is the JSON-ready dict the flow passes on. A failure that must not lose the rest of the article is recorded in the
answer, not raised."""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from pydantic import BaseModel, ValidationError

from news_reader.extraction.article import first_sentence, headline
from news_reader.extraction.calibration import Calibration, decide
from news_reader.extraction.calibration import load as load_calibration
from news_reader.extraction.direction import direction_probabilities, value_probabilities
from news_reader.extraction.errors import AnswerCutOff, InvalidModelOutput, NewsReaderError
from news_reader.extraction.llm import LLMClient, about_business, parse_cut_off, parse_output
from news_reader.extraction.salience import NOT_ABOUT, PASSING_MENTION, about_probability, select
from news_reader.extraction.schemas import (
    ArticleExtraction,
    ArticleInfo,
    BusinessCategory,
    BusinessesInvolved,
    BusinessInfo,
    BusinessSpecificInfo,
    GeneralInfo,
    StepError,
    StepUsage,
)
from news_reader.extraction.steps import STEPS
from news_reader.telemetry.trace_ids import current_trace_id


def general_info(client: LLMClient, prompt: str, article: str) -> dict:
    """The title and summary, `usage` and `error`. A summary cut off at the step's budget (the small model can copy
    the article into it) is cut to its first sentence, and `error` says so; any other failure is raised (the step
    has nothing to keep)."""
    try:
        value, usage = STEPS["general_info"].run(client, prompt, article)
    except AnswerCutOff as error:
        value = _summary_before_cut(error)
        if value is None:
            raise
        message = f"{error}; the summary's first sentence is kept"
        failure = StepError(step="general_info", kind=error.kind, message=message)
        return {**value.model_dump(), "usage": _dump(error.usage), "error": failure.model_dump()}
    return {**value.model_dump(), "usage": _dump(usage), "error": None}


def business_category(client: LLMClient, prompt: str, article: str, min_probability: float) -> dict:
    """Whether the article is about business (its probability of `true` reaches `min_probability`; without
    log-probabilities, the model's answer) and `usage`."""
    answer, p_true, usage = business_probability(client, prompt, article)
    decided = answer.is_about_business if p_true is None else p_true >= min_probability
    return {"is_about_business": decided, "usage": _dump(usage)}


def business_probability(client: LLMClient, prompt: str, article: str) -> tuple[BusinessCategory, float | None,
                                                                                StepUsage]:
    """The business_category step's answer, its probability of `true` read from the answer's log-probabilities
    (None where the server returns none), and its usage."""
    step = STEPS["business_category"]
    answer, usage, tokens = step.run_with_logprobs(client, prompt, article, client.settings.top_logprobs or None)
    probabilities = value_probabilities(tokens, "is_about_business", ("true", "false"))
    return answer, (probabilities["true"] if probabilities else None), usage


def _summary_before_cut(error: AnswerCutOff) -> GeneralInfo | None:
    try:
        value = parse_cut_off(error.raw_output, GeneralInfo, unfinished_strings=True)
    except ValueError:
        return None
    sentence = first_sentence(value.summary)
    return value.model_copy(update={"summary": sentence}) if sentence else None


def businesses_involved(client: LLMClient, prompt: str, article: str) -> dict:
    """The businesses the article is about. A failure comes back as `error`: the title, summary and classification
    already paid for must survive it. A list cut off at its token budget (the small model can go on naming until
    then) keeps the names completed before the cut, and its `error` says so."""
    try:
        involved, usage = STEPS["businesses_involved"].run(client, prompt, article)
    except NewsReaderError as error:
        names, message = _names_before_cut(error), str(error)
        if names:
            message += f"; the {len(names)} names before the cut are kept"
        failure = StepError(step="businesses_involved", kind=error.kind, message=message)
        usage = getattr(error, "usage", None)
        return {"businesses": names, "usage": _dump(usage), "error": failure.model_dump()}
    return {"businesses": involved.businesses, "usage": _dump(usage), "error": None}


def _names_before_cut(error: NewsReaderError) -> list[str]:
    if not isinstance(error, AnswerCutOff):
        return []
    try:
        return parse_cut_off(error.raw_output, BusinessesInvolved).businesses
    except ValueError:
        return []


def business_analysis(
    client: LLMClient, template: str, article: str, businesses: list[str], max_businesses: int, *, min_mentions: int,
    min_about: float = 0.0,
) -> dict:
    """Per prominent business (salience.is_prominent), at most `max_businesses`: with `min_about` above 0 one short
    call asks whether the news is about it, and a business less probable than that is left out; then one LLM call
    analyses it, its prompt rendered from `template` (the text of a business_analysis template). Businesses run
    at most `max_concurrency` at a time; a failure is recorded, not raised, and so is each business left out."""
    infos: list[BusinessInfo] = []
    usages: list[StepUsage] = []
    selection = select(article, businesses, min_mentions, max_businesses)
    errors = [
        StepError(step="business_analysis", business=name, kind=PASSING_MENTION,
                  message=f"named only in passing: not in the headline or first paragraph, and fewer than "
                  f"{min_mentions} times (NEWS_READER_MIN_MENTIONS)")
        for name in selection.passing
    ] + [
        StepError(step="business_analysis", business=name, kind="skipped",
                  message=f"more than {max_businesses} businesses (NEWS_READER_MAX_BUSINESSES)")
        for name in selection.over_cap
    ]
    chosen, step = selection.analysed, STEPS["business_analysis"]
    calibration = load_calibration(client.settings.direction_calibration)
    top_logprobs = client.settings.top_logprobs or None
    spent: dict[str, list[StepUsage]] = {name: [] for name in chosen}

    def analyze_one(name: str) -> tuple[BusinessInfo | None, float | None]:
        """The analysis, or None when the model says the news is not about the business; and that probability."""
        with about_business(name):
            p_about = None
            if min_about > 0:
                p_about, _ = _spending(spent[name], about_probability, client, article, name)
                if p_about is not None and p_about < min_about:
                    return None, p_about
            prompt = step.render_source(template, article, business=name)
            info, _, tokens = _spending(spent[name], step.run_with_logprobs, client, prompt, article, top_logprobs)
        return with_confidence(info, name, direction_probabilities(tokens), calibration), p_about

    with ThreadPoolExecutor(max_workers=client.settings.max_concurrency) as pool:
        futures = [pool.submit(contextvars.copy_context().run, analyze_one, name) for name in chosen]
        for name, future in zip(chosen, futures, strict=True):
            try:
                info, p_about = future.result()
            except Exception as error:  # whatever fails, one business must not lose the others
                known = isinstance(error, NewsReaderError)
                errors.append(StepError(
                    step="business_analysis", business=name, kind=error.kind if known else "unexpected_error",
                    message=str(error) if known else f"{type(error).__name__}: {error}",
                ))
            else:
                if info is not None:
                    infos.append(info)
                else:
                    errors.append(StepError(
                        step="business_analysis", business=name, kind=NOT_ABOUT,
                        message=f"the model says the news is not about it: probability {p_about:.2f}, below "
                        f"{min_about} (NEWS_READER_MIN_ABOUT_PROBABILITY)"))
            usages.extend(usage.model_copy(update={"business": name}) for usage in spent[name])
    return {
        "business_info": [info.model_dump() for info in infos],
        "usage": [_dump(usage) for usage in usages],
        "errors": [error.model_dump() for error in errors],
    }


def _spending(spent: list[StepUsage], call: Callable[..., tuple], *args: object) -> tuple:
    """`call(*args)`, whose answer's second item is its usage, with that usage (or its error's) added to `spent`."""
    try:
        answer = call(*args)
    except NewsReaderError as error:
        if getattr(error, "usage", None) is not None:
            spent.append(error.usage)
        raise
    spent.append(answer[1])
    return answer


def assemble(
    article: str,
    general_info: dict,
    business_category: dict,
    businesses_involved: dict | None = None,
    business_analysis: dict | None = None,
) -> ArticleInfo:
    """The result from the nodes' answers; bypassed nodes (a non-business article) arrive as None."""
    found = businesses_involved or {"usage": None, "error": None}
    analysis = business_analysis or {"business_info": [], "usage": [], "errors": []}
    usage = [general_info["usage"], business_category["usage"], found["usage"], *analysis["usage"]]
    errors = [general_info["error"], found["error"], *analysis["errors"]]
    return _result(
        article,
        GeneralInfo.model_validate({k: general_info[k] for k in GeneralInfo.model_fields}),
        BusinessCategory.model_validate({k: business_category[k] for k in BusinessCategory.model_fields}),
        [BusinessInfo.model_validate(b) for b in analysis["business_info"]],
        [StepUsage.model_validate(u) for u in usage if u],
        [StepError.model_validate(e) for e in errors if e],
    )


def single_prompt(client: LLMClient, prompt: str, article: str) -> ArticleInfo:
    """The whole result from one call. An answer whose only fault is ungrounded quotes (after the repair round) is
    kept, with those businesses moved to `errors`, so that one bad quote does not lose the article."""
    try:
        extraction, usage = STEPS["single_prompt"].run(client, prompt, article)
    except InvalidModelOutput as error:
        try:
            extraction = parse_output(error.raw_output, ArticleExtraction)
        except ValueError:
            raise error from None
        infos, errors = [], []
        for entry in extraction.business_info:
            try:
                infos.append(BusinessSpecificInfo.model_validate(entry.model_dump(), context={"article": article}))
            except ValidationError as invalid:
                message = "; ".join(e["msg"] for e in invalid.errors(include_url=False))
                errors.append(
                    StepError(step="single_prompt", business=entry.business, kind=error.kind, message=message)
                )
        return _result(article, extraction, extraction, _unrated(infos), [error.usage], errors)
    assert isinstance(extraction, ArticleExtraction)
    return _result(article, extraction, extraction, _unrated(extraction.business_info), [usage], [])


def _unrated(infos: list[BusinessSpecificInfo]) -> list[BusinessInfo]:
    """The single prompt's entries: its call asks for no log-probabilities, so they carry no confidence."""
    return [with_confidence(info, info.business, None) for info in infos]


def _result(
    article: str,
    general: GeneralInfo,
    category: BusinessCategory,
    business_info: list[BusinessInfo],
    usage: list[StepUsage],
    errors: list[StepError],
) -> ArticleInfo:
    """A headline in the text is the title, verbatim; a non-business article has no business entries."""
    return ArticleInfo(
        title=headline(article) or general.title,
        summary=general.summary,
        is_about_business=category.is_about_business,
        business_info=business_info if category.is_about_business else [],
        trace_id=current_trace_id(),
        usage=usage,
        errors=errors,
    )


def with_confidence(info: BaseModel, name: str, probabilities: dict[str, float] | None,
                    calibration: Calibration | None = None) -> BusinessInfo:
    """The analysis of business `name` with its direction's (calibrated) probabilities; the direction is then the
    most probable one, and the confidence its probability. Without probabilities, the model's answer stands."""
    analysis = {**info.model_dump(), "business": name}
    if probabilities is None:
        return BusinessInfo(**analysis, direction_probabilities=None, confidence=None)
    probabilities, analysis["stock_price_change"] = decide(probabilities, calibration)
    return BusinessInfo(**analysis, direction_probabilities=probabilities,
                        confidence=probabilities[analysis["stock_price_change"]])


def _dump(usage: StepUsage | None) -> dict | None:
    return usage.model_dump(mode="json") if usage is not None else None
