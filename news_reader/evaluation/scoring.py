"""Per-article scores against the labels, and their aggregation into the run's metrics."""

from __future__ import annotations

import math
import re
import statistics
from functools import cache

from pydantic import BaseModel, ValidationError

from news_reader.evaluation import directions
from news_reader.evaluation.calibration import Entry, expected_calibration_error
from news_reader.evaluation.matching import match_companies
from news_reader.evaluation.records import LineResult
from news_reader.extraction.salience import NOT_ABOUT, PASSING_MENTION
from news_reader.extraction.schemas import ArticleInfo, StepUsage
from news_reader.percentiles import percentile


class CompanyMatch(BaseModel):
    """A predicted company that matches a labelled one, with both directions and what the model said."""

    business: str
    label: str
    predicted: str
    expected: str
    reason: str
    quote: str
    confidence: float | None = None


class LineScore(BaseModel):
    schema_valid: bool
    title_match: bool
    title_f1: float
    summary_rouge_l: float
    business_predicted: bool
    business_expected: bool
    companies_tp: int
    companies_fp: int
    companies_fn: int
    matches: list[CompanyMatch]
    entries: list[Entry]
    quotes_total: int
    quotes_grounded: int
    step_errors: int
    passing_mentions: int = 0
    not_about: int = 0
    llm_calls: int
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int | None
    wall_ms: int | None
    step_latency_sum_ms: int


class JudgedReason(BaseModel):
    """The judge's verdict on one matched company's reason; `passed` is None when the judge call failed."""

    business: str
    passed: bool | None
    supported: bool | None = None
    consistent: bool | None = None
    direction_correct: bool
    error: str | None = None


@cache
def _text_evaluators():
    """azure-ai-evaluation's token F1 and ROUGE-L; both run offline (no nltk data needed)."""
    from azure.ai.evaluation import F1ScoreEvaluator, RougeScoreEvaluator, RougeType

    return F1ScoreEvaluator(), RougeScoreEvaluator(rouge_type=RougeType.ROUGE_L)


def normalise_title(text: str) -> str:
    """Case, punctuation and spacing do not count: `Time-Warner, Inc.` is `time warner inc`."""
    return " ".join(re.findall(r"\w+", text.casefold()))


def score_line(prediction: dict, expected: dict, article: str) -> LineScore:
    """Scores of one flow output (`title`, `summary`, ..., `usage`, `errors`) against the article's labels."""
    try:
        ArticleInfo.model_validate(prediction)
        schema_valid = True
    except ValidationError:
        schema_valid = False
    f1, rouge = _text_evaluators()
    title, summary = str(prediction.get("title") or ""), str(prediction.get("summary") or "")
    entries = [e for e in prediction.get("business_info") or [] if isinstance(e, dict)]
    labels = expected["companies"]
    matches, extra, missed = match_companies([str(e.get("business", "")) for e in entries], labels)
    by_name: dict[str, dict] = {}
    for entry in entries:  # a repeated name is matched by its first entry, like match_companies does
        by_name.setdefault(str(entry.get("business", "")), entry)
    company_matches = [
        CompanyMatch(
            business=m.predicted,
            label=m.label["name"],
            predicted=str(by_name[m.predicted].get("stock_price_change")),
            expected=m.label["stock_price_change"],
            reason=str(by_name[m.predicted].get("reason") or ""),
            quote=str(by_name[m.predicted].get("relevant_substring") or ""),
            confidence=_confidence(by_name[m.predicted]),
        )
        for m in matches
    ]
    right = {m.business: m.predicted == m.expected for m in company_matches}
    quotes = [str(e.get("relevant_substring") or "") for e in entries]
    usage = [u for u in prediction.get("usage") or [] if isinstance(u, dict)]
    errors = [e for e in prediction.get("errors") or [] if isinstance(e, dict)]
    cached = [u.get("cached_tokens") for u in usage if u.get("cached_tokens") is not None]
    return LineScore(
        schema_valid=schema_valid,
        title_match=bool(title) and normalise_title(title) == normalise_title(expected["title_reference"]),
        title_f1=f1(response=title, ground_truth=expected["title_reference"])["f1_score"] if title else 0.0,
        summary_rouge_l=_rouge_l(rouge, summary, expected["summary_reference"]),
        business_predicted=prediction.get("is_about_business") is True,
        business_expected=expected["is_about_business"],
        companies_tp=len(matches),
        companies_fp=len(extra),
        companies_fn=len(missed),
        matches=company_matches,
        entries=_entries(entries, by_name, right),
        quotes_total=len(quotes),
        quotes_grounded=sum(1 for q in quotes if q and q in article),
        step_errors=sum(e.get("kind") not in (PASSING_MENTION, NOT_ABOUT) for e in errors),
        passing_mentions=sum(e.get("kind") == PASSING_MENTION for e in errors),
        not_about=sum(e.get("kind") == NOT_ABOUT for e in errors),
        llm_calls=sum(int(u.get("calls") or 0) for u in usage),
        prompt_tokens=sum(int(u.get("prompt_tokens") or 0) for u in usage),
        completion_tokens=sum(int(u.get("completion_tokens") or 0) for u in usage),
        cached_tokens=sum(cached) if cached else None,
        wall_ms=article_wall_ms(usage),
        step_latency_sum_ms=sum(int(u.get("latency_ms") or 0) for u in usage),
    )


def article_wall_ms(usage: list[dict]) -> int | None:
    """The article's LLM wall time: from its first call sent to its last answer received (0 without calls). None
    when a step does not say when it started, as in outputs from before `started_at` was recorded."""
    try:
        steps = [StepUsage.model_validate(u) for u in usage]
    except ValidationError:
        return None
    if not steps:
        return 0
    if any(s.started_at is None for s in steps):
        return None
    first = min(s.started_at for s in steps)
    return max(round((s.started_at - first).total_seconds() * 1000) + s.latency_ms for s in steps)


_COST = ("llm_calls_per_article", "prompt_tokens_per_article", "completion_tokens_per_article",
         "cached_tokens_per_article", "cached_share", "wall_ms_mean", "wall_ms_p95", "step_latency_sum_ms_mean",
         "step_latency_sum_ms_p95")


def run_metrics(scored: list[LineScore], unscored: list[LineScore], judged: list[JudgedReason]) -> dict:
    """Metrics over every line of the dataset. A line without a score (its flow or its evaluation failed) counts
    as an empty answer for quality, and is left out of tokens and latency, which it did not report."""
    metrics = aggregate(scored + unscored, judged)
    cost = aggregate(scored, [])
    metrics.update({key: cost[key] for key in _COST})
    metrics["lines_evaluated"] = float(len(scored))
    metrics["lines_failed"] = float(len(unscored))
    return metrics


def empty_answer(expected: dict, article: str) -> LineScore:
    """The score of a line that produced nothing: every labelled company missed, no business, no title."""
    return score_line({}, expected, article)


def line_result(line: int, score: LineScore, scored: bool = True) -> LineResult:
    """What a record keeps of one article's scores; an unscored line keeps no tokens or latency."""
    return LineResult(
        line=line,
        scored=scored,
        business_correct=score.business_predicted == score.business_expected,
        companies_tp=score.companies_tp,
        companies_fp=score.companies_fp,
        companies_fn=score.companies_fn,
        directions_correct=sum(m.predicted == m.expected for m in score.matches),
        directions_total=len(score.matches),
        confusion=directions.confusion((m.expected, m.predicted) for m in score.matches),
        entries=score.entries,
        summary_rouge_l=score.summary_rouge_l,
        prompt_tokens=score.prompt_tokens if scored else None,
        completion_tokens=score.completion_tokens if scored else None,
        wall_ms=score.wall_ms if scored else None,
        step_latency_sum_ms=score.step_latency_sum_ms if scored else None,
    )


def aggregate(lines: list[LineScore], judged: list[JudgedReason]) -> dict[str, float | None]:
    """The run's metrics. Company scores are micro-averaged over all companies; a rate with nothing to count is None."""
    n = len(lines)
    tp, fp, fn = (sum(getattr(s, k) for s in lines) for k in ("companies_tp", "companies_fp", "companies_fn"))
    pred = [s.business_predicted for s in lines]
    true = [s.business_expected for s in lines]
    both = sum(p and t for p, t in zip(pred, true, strict=True))
    matches = [m for s in lines for m in s.matches]
    walls = [s.wall_ms for s in lines if s.wall_ms is not None]
    step_sums = [s.step_latency_sum_ms for s in lines]
    cached = [s.cached_tokens for s in lines if s.cached_tokens is not None]
    verdicts = [j for j in judged if j.passed is not None]
    counts = {**directions.confusion((m.expected, m.predicted) for m in matches), "companies_fp": fp,
              "companies_fn": fn}
    trivial = directions.always_none(counts)
    return {
        "schema_valid_rate": _ratio(sum(s.schema_valid for s in lines), n),
        "title_match_rate": _ratio(sum(s.title_match for s in lines), n),
        "title_f1": _mean([s.title_f1 for s in lines]),
        "summary_rouge_l": _mean([s.summary_rouge_l for s in lines]),
        "business_accuracy": _ratio(sum(p == t for p, t in zip(pred, true, strict=True)), n),
        "business_precision": _ratio(both, sum(pred)),
        "business_recall": _ratio(both, sum(true)),
        "business_accuracy_majority": _ratio(max(sum(true), n - sum(true)), n),
        "company_precision": _ratio(tp, tp + fp),
        "company_recall": _ratio(tp, tp + fn),
        "company_f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "direction_accuracy": _number(directions.accuracy(counts)),
        "direction_accuracy_always_none": _number(directions.accuracy(trivial)),
        "direction_macro_f1": _number(directions.macro_f1(counts)),
        "direction_macro_f1_always_none": _number(directions.macro_f1(trivial)),
        "company_direction_f1": _number(directions.company_direction_f1(counts)),
        "company_direction_f1_always_none": _number(directions.company_direction_f1(trivial)),
        "direction_ece": expected_calibration_error(e for s in lines for e in s.entries),
        "confidence_coverage": _ratio(sum(e.confidence is not None for s in lines for e in s.entries),
                                      sum(len(s.entries) for s in lines)),
        "grounding_rate": _ratio(sum(s.quotes_grounded for s in lines), sum(s.quotes_total for s in lines)),
        "judge_pass_rate": _ratio(sum(bool(j.passed) for j in verdicts), len(verdicts)),
        "judge_agreement": _ratio(sum(j.passed == j.direction_correct for j in verdicts), len(verdicts)),
        "judge_kappa": cohen_kappa([bool(j.passed) for j in verdicts], [j.direction_correct for j in verdicts]),
        "step_errors_per_article": _ratio(sum(s.step_errors for s in lines), n),
        "passing_mentions_per_article": _ratio(sum(s.passing_mentions for s in lines), n),
        "not_about_per_article": _ratio(sum(s.not_about for s in lines), n),
        "llm_calls_per_article": _mean([s.llm_calls for s in lines]),
        "prompt_tokens_per_article": _mean([s.prompt_tokens for s in lines]),
        "completion_tokens_per_article": _mean([s.completion_tokens for s in lines]),
        "cached_tokens_per_article": _mean(cached) if len(cached) == n else None,
        "cached_share": _ratio(sum(cached), sum(s.prompt_tokens for s in lines)) if len(cached) == n else None,
        "wall_ms_mean": _mean(walls) if len(walls) == n else None,
        "wall_ms_p95": percentile(walls, 95) if walls and len(walls) == n else None,
        "step_latency_sum_ms_mean": _mean(step_sums),
        "step_latency_sum_ms_p95": percentile(step_sums, 95) if step_sums else None,
        "lines_evaluated": float(n),
    }


def _rouge_l(rouge, summary: str, reference: str) -> float:
    if not summary:
        return 0.0
    return rouge(response=summary, ground_truth=reference)["rouge_properties"]["rouge_f1_score"]


def cohen_kappa(a: list[bool], b: list[bool]) -> float | None:
    """Agreement beyond chance between two raters; None when chance agreement is total (kappa is undefined)."""
    n = len(a)
    if n == 0:
        return None
    observed = sum(x == y for x, y in zip(a, b, strict=True)) / n
    pa, pb = sum(a) / n, sum(b) / n
    chance = pa * pb + (1 - pa) * (1 - pb)
    return None if chance == 1 else (observed - chance) / (1 - chance)


def _ratio(part: float, whole: float) -> float | None:
    return part / whole if whole else None


def _entries(entries: list[dict], first: dict[str, dict], right: dict[str, bool]) -> list[Entry]:
    """Each listed company as a calibration entry; only the first entry of a repeated name can match a label."""
    out = []
    for entry in entries:
        name = str(entry.get("business", ""))
        matched = entry is first[name] and name in right
        out.append(Entry(confidence=_confidence(entry), matched=matched, right=matched and right[name]))
    return out


def _confidence(entry: dict) -> float | None:
    value = entry.get("confidence")
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _number(value) -> float | None:
    """A numpy scalar as a float, NaN (nothing to count) as None."""
    value = float(value)
    return None if math.isnan(value) else value


def _mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None

