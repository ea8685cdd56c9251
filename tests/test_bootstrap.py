"""Paired bootstrap intervals for the difference between two runs."""

from __future__ import annotations

from news_reader.evaluation.bootstrap import difference_interval
from news_reader.evaluation.records import LineResult


def line(n: int, correct: bool = True, tp: int = 1, fp: int = 0, fn: int = 0, tokens: int = 1000) -> LineResult:
    return LineResult(line=n, business_correct=correct, companies_tp=tp, companies_fp=fp, companies_fn=fn,
                      directions_correct=tp, directions_total=tp, summary_rouge_l=0.5, prompt_tokens=tokens,
                      completion_tokens=100, wall_ms=1000, step_latency_sum_ms=1000)


def test_identical_runs_differ_by_exactly_nothing():
    run = [line(n, correct=n % 3 == 0) for n in range(30)]
    assert difference_interval(run, run, "business_accuracy") == (0.0, 0.0)


def test_a_clear_improvement_has_an_interval_above_zero():
    worse = [line(n, correct=n % 2 == 0) for n in range(60)]
    better = [line(n, correct=True) for n in range(60)]
    low, high = difference_interval(worse, better, "business_accuracy")
    assert 0 < low < 0.5 < high <= 0.7


def test_a_single_changed_article_is_no_evidence_of_a_difference():
    a = [line(n, correct=True) for n in range(7)]
    b = [line(n, correct=n != 3) for n in range(7)]
    low, high = difference_interval(a, b, "business_accuracy")
    assert low < 0 and high == 0.0


def test_company_f1_is_resampled_micro_averaged_and_tokens_per_article():
    a = [line(n, tp=1, fp=1) for n in range(20)]
    b = [line(n, tp=1, fp=0, tokens=1500) for n in range(20)]
    f1_low, f1_high = difference_interval(a, b, "company_f1")
    assert f1_low == f1_high == 1.0 - 2 / 3  # micro F1 goes from 2/3 to 1 in every resample
    assert difference_interval(a, b, "prompt_tokens_per_article") == (500.0, 500.0)


def test_only_articles_both_runs_evaluated_are_compared():
    a = [line(n) for n in range(10)]
    b = [line(n, correct=False) for n in range(5, 15)]
    assert difference_interval(a, b, "business_accuracy") == (-1.0, -1.0)
    assert difference_interval(a, [], "business_accuracy") is None
    assert difference_interval(a, b, "title_match_rate") is None  # not resampled
