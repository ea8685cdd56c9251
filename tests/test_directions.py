"""Direction metrics from the confusion of matched companies, and what the trivial answer scores."""

from __future__ import annotations

import math

import numpy as np
import pytest

from news_reader.evaluation import directions
from news_reader.evaluation.bootstrap import difference_interval
from news_reader.evaluation.records import LineResult

# 6 matched companies: 3 labelled none (2 right, 1 said increase), 2 increase (1 right, 1 said none), 1 decrease
# (said decrease); 2 predicted companies match no label, 1 label was missed.
PAIRS = [("none", "none"), ("none", "none"), ("none", "increase"), ("increase", "increase"),
         ("increase", "none"), ("decrease", "decrease")]
COUNTS = {**directions.confusion(PAIRS), "companies_fp": 2, "companies_fn": 1}


def test_the_confusion_keeps_non_zero_cells_by_expected_then_predicted():
    assert directions.confusion(PAIRS) == {"increase>increase": 1, "increase>none": 1, "decrease>decrease": 1,
                                           "none>increase": 1, "none>none": 2}
    assert directions.confusion([]) == {}


def test_accuracy_and_macro_f1_of_a_known_confusion():
    assert directions.accuracy(COUNTS) == pytest.approx(4 / 6)
    f1 = {"increase": 2 * 1 / (2 + 2), "decrease": 1.0, "none": 2 * 2 / (3 + 3)}
    assert directions.macro_f1(COUNTS) == pytest.approx(sum(f1.values()) / 3)


def test_company_direction_f1_counts_a_wrong_direction_as_a_miss_and_a_false_alarm():
    right, wrong = 4, 2
    expected = 2 * right / (2 * right + (2 + wrong) + (1 + wrong))
    assert directions.company_direction_f1(COUNTS) == pytest.approx(expected)


def test_always_none_scores_the_share_of_none_labels_and_a_third_of_none_f1():
    trivial = directions.always_none(COUNTS)
    assert directions.accuracy(trivial) == pytest.approx(3 / 6)
    assert directions.macro_f1(trivial) == pytest.approx(2 * 3 / (3 + 6) / 3)
    assert directions.company_direction_f1(trivial) == pytest.approx(2 * 3 / (2 * 3 + (2 + 3) + (1 + 3)))
    assert trivial["companies_fp"] == 2 and trivial["companies_fn"] == 1  # the same companies


def test_directions_neither_labelled_nor_predicted_are_left_out_of_macro_f1():
    only_none = directions.confusion([("none", "none")])
    assert directions.macro_f1(only_none) == 1.0


def test_nothing_matched_is_nan_and_arrays_are_answered_in_kind():
    assert math.isnan(directions.accuracy({})) and math.isnan(directions.macro_f1({}))
    resampled = {"none>none": np.array([1, 0, 2]), "none>increase": np.array([1, 2, 0])}
    np.testing.assert_allclose(directions.accuracy(resampled), [0.5, 0.0, 1.0])
    assert directions.macro_f1(resampled).shape == (3,)


def line(n: int, pairs: list[tuple[str, str]]) -> LineResult:
    return LineResult(line=n, business_correct=True, companies_tp=len(pairs), companies_fp=0, companies_fn=0,
                      directions_correct=sum(e == p for e, p in pairs), directions_total=len(pairs),
                      confusion=directions.confusion(pairs), summary_rouge_l=0.5, prompt_tokens=1000,
                      completion_tokens=100, wall_ms=1000, step_latency_sum_ms=1000)


def test_macro_f1_and_company_direction_f1_are_bootstrapped_from_each_line_s_confusion():
    labels = ["increase", "decrease", "none"] * 10
    always_none = [line(n, [(e, "none")]) for n, e in enumerate(labels)]
    right = [line(n, [(e, e)]) for n, e in enumerate(labels)]
    low, high = difference_interval(always_none, right, "direction_macro_f1")
    assert 0.4 < low <= 1 - 0.5 / 3 <= high  # always none: none's F1 is 2*10/(10+30), a third of the macro mean
    low, high = difference_interval(always_none, right, "company_direction_f1")
    assert 0.4 < low <= high


def test_records_made_before_the_confusion_was_kept_get_no_interval():
    old = line(0, [("none", "none")]).model_copy(update={"confusion": None})
    assert difference_interval([old], [line(0, [("none", "none")])], "direction_macro_f1") is None
    assert difference_interval([old], [line(0, [("none", "none")])], "direction_accuracy") == (0.0, 0.0)
