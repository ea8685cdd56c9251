"""The quality gate: thresholds per dataset, checked against an experiment record."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from news_reader.cli import main
from news_reader.evaluation.gate import GateError, Thresholds, check
from news_reader.evaluation.records import METRICS, DatasetRef, ExperimentRecord

THRESHOLDS = """\
version: 1
sets:
  smoke:
    min: {schema_valid_rate: 1.0, company_f1: 0.5, grounding_rate: 0.9}
    max: {prompt_tokens_per_article: 4000, wall_p95_per_reference: 6.0}
  full:
    min: {company_f1: 0.7}
"""


def make_record(config: str = "default", dataset: str = "data/eval/smoke.jsonl", sha256: str = "ab12" * 16,
                **metrics: float | None) -> ExperimentRecord:
    """A record as an experiment over the smoke set writes it; keyword arguments override metrics."""
    measured = {
        "schema_valid_rate": 1.0, "title_match_rate": 0.55, "title_f1": 0.871, "summary_rouge_l": 0.312,
        "business_accuracy": 0.9, "business_precision": 0.882, "business_recall": 0.938, "company_precision": 0.714,
        "company_recall": 0.645, "company_f1": 0.678, "direction_accuracy": 0.75, "grounding_rate": 0.952,
        "judge_pass_rate": 0.8, "judge_agreement": 0.85, "judge_kappa": None, "step_errors_per_article": 0.05,
        "prompt_tokens_per_article": 3124.6, "completion_tokens_per_article": 412.3, "cached_tokens_per_article": 0.0,
        "wall_ms_mean": 41210.0, "wall_ms_p95": 78344.0, "reference_ms": 14000.0,
        "wall_mean_per_reference": 2.94, "wall_p95_per_reference": 5.6, "lines_evaluated": 20.0, "lines_failed": 0.0,
    }
    slug = config.replace("=", "-")
    return ExperimentRecord(
        name=f"smoke-{slug}", created="2025-06-02T10:14:03+00:00", config=config, flow="flows/news_reader",
        variant=None, flow_run=f"news_reader_{slug}_20250602_101403", eval_run=f"eval_{slug}_20250602_102211",
        model="qwen2.5-1.5b-instruct-q4_k_m", endpoint="http://127.0.0.1:8765/v1",
        prompt_sha256={"general_info": "9f" * 32, "business_category": "3c" * 32},
        dataset=DatasetRef(path=dataset, sha256=sha256, lines=20), judge_model="qwen2.5-1.5b-instruct-q4_k_m",
        metrics={**measured, **metrics},
    )


@pytest.fixture
def thresholds_file(tmp_path) -> Path:
    path = tmp_path / "thresholds.yaml"
    path.write_text(THRESHOLDS)
    return path


@pytest.fixture
def thresholds(thresholds_file) -> Thresholds:
    return Thresholds.load(thresholds_file)


def statuses(result) -> dict[str, tuple[str, bool]]:
    return {c.metric: (c.measured, c.passed) for c in result.checks}


def test_record_within_every_threshold_passes(thresholds):
    result = check(make_record(), thresholds)
    assert result.passed
    assert len(result.checks) == 5
    assert result.report().splitlines()[-1] == "gate: PASSED"


def test_metric_below_its_minimum_fails(thresholds):
    result = check(make_record(company_f1=0.41), thresholds)
    assert not result.passed
    assert statuses(result)["company_f1"] == ("0.410", False)
    assert result.report().splitlines()[-1] == "gate: FAILED (1 of 5 checks)"


def test_metric_above_its_maximum_fails(thresholds):
    result = check(make_record(prompt_tokens_per_article=4210.0), thresholds)
    assert statuses(result)["prompt_tokens_per_article"] == ("4,210", False)
    assert [c.metric for c in result.checks if not c.passed] == ["prompt_tokens_per_article"]


def test_value_equal_to_the_threshold_passes(thresholds):
    assert check(make_record(company_f1=0.5, wall_p95_per_reference=6.0), thresholds).passed


@pytest.mark.parametrize("missing", ["none", "absent"])
def test_metric_not_measured_fails(thresholds, missing):
    record = make_record(grounding_rate=None)
    if missing == "absent":
        del record.metrics["grounding_rate"]
    result = check(record, thresholds)
    assert statuses(result)["grounding_rate"] == ("not measured", False)
    assert not result.passed


def test_report_names_the_run_and_aligns_one_row_per_rule(thresholds):
    report = check(make_record(company_f1=0.41), thresholds).report()
    for expected in ("config:   default", "flow run: news_reader_default_20250602_101403",
                     "eval run: eval_default_20250602_102211", "data/eval/smoke.jsonl (sha256 ab12ab12ab12, 20 lines)",
                     "model:    qwen2.5-1.5b-instruct-q4_k_m"):
        assert expected in report
    rows = [line for line in report.splitlines() if line.endswith(("PASS", "FAIL"))]
    assert len(rows) == 5
    assert len({row.index(">=" if ">=" in row else "<=") for row in rows}) == 1  # the rule column is aligned
    company = next(row for row in rows if row.startswith("company_f1"))
    assert company.split() == ["company_f1", "company", "F1", "0.410", ">=", "0.500", "FAIL"]
    assert ">= 1.000" in report and "<= 4,000" in report and "<= 6.00" in report


def test_set_defaults_to_the_dataset_name(thresholds):
    result = check(make_record(dataset="data/eval/full.jsonl"), thresholds)
    assert result.set_name == "full"
    assert [c.metric for c in result.checks] == ["company_f1"]
    assert not result.passed  # 0.678 is good enough for smoke, not for full


def test_set_can_be_chosen_explicitly(thresholds):
    assert check(make_record(), thresholds, set_name="full").set_name == "full"


def test_missing_set_is_an_error_naming_the_sets(thresholds):
    with pytest.raises(GateError, match=r"no threshold set 'holdout'; sets: smoke, full"):
        check(make_record(dataset="data/eval/holdout.jsonl"), thresholds)


def test_unknown_metric_in_thresholds_is_an_error(tmp_path):
    path = tmp_path / "thresholds.yaml"
    path.write_text("version: 1\nsets:\n  smoke:\n    min: {company_f2: 0.5}\n")
    with pytest.raises(GateError, match="unknown metric company_f2"):
        Thresholds.load(path)


def test_unsupported_version_is_an_error(tmp_path):
    path = tmp_path / "thresholds.yaml"
    path.write_text(THRESHOLDS.replace("version: 1", "version: 2"))
    with pytest.raises(GateError, match="unsupported version 2"):
        Thresholds.load(path)


def test_unknown_key_in_thresholds_is_an_error(tmp_path):
    path = tmp_path / "thresholds.yaml"
    path.write_text(THRESHOLDS.replace("min:", "minimum:", 1))
    with pytest.raises(GateError, match="sets.smoke.minimum"):
        Thresholds.load(path)


@pytest.fixture
def gate(tmp_path, thresholds_file):
    """Run `news-reader eval gate` on a saved record; returns the click result."""

    def _gate(record: ExperimentRecord, *args: str):
        path = record.save(tmp_path / "records")
        return CliRunner().invoke(main, ["eval", "gate", str(path), "--thresholds", str(thresholds_file), *args])

    return _gate


def test_cli_exits_0_when_the_gate_passes_and_writes_the_report(gate, tmp_path):
    report = tmp_path / "out" / "gate.txt"
    result = gate(make_record(), "--report", str(report))
    assert result.exit_code == 0
    assert result.stdout.rstrip().endswith("gate: PASSED")
    assert report.read_text() == result.stdout


def test_cli_exits_1_when_a_check_fails(gate):
    result = gate(make_record(wall_p95_per_reference=6.31))
    assert result.exit_code == 1
    assert "gate: FAILED (1 of 5 checks)" in result.stdout


def test_cli_set_option_picks_the_set(gate):
    result = gate(make_record(), "--set", "full")
    assert result.exit_code == 1
    assert "set 'full'" in result.stdout


@pytest.mark.parametrize("problem", ["missing record", "missing thresholds", "bad thresholds", "missing set"])
def test_cli_exits_2_with_one_line_when_input_is_unusable(tmp_path, thresholds_file, problem):
    record = make_record().save(tmp_path / "records")
    if problem == "missing record":
        record = tmp_path / "nope.json"
    elif problem == "missing thresholds":
        thresholds_file = tmp_path / "nope.yaml"
    elif problem == "bad thresholds":
        thresholds_file.write_text("version: 1\nsets: [smoke\n")
    args = ["eval", "gate", str(record), "--thresholds", str(thresholds_file)]
    if problem == "missing set":
        args += ["--set", "holdout"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    assert result.stderr.startswith("news-reader: ")
    assert len(result.stderr.splitlines()) == 1
    assert result.stdout == ""


def test_the_committed_thresholds_file_is_valid_and_covers_smoke_and_full():
    from tests.conftest import REPO

    thresholds = Thresholds.load(REPO / "evaluations" / "thresholds.yaml")
    assert {"smoke", "full"} <= set(thresholds.sets)


def test_the_smoke_gate_bounds_the_work_done_and_time_only_in_reference_requests_timed_on_the_same_machine():
    from tests.conftest import REPO

    smoke = Thresholds.load(REPO / "evaluations" / "thresholds.yaml").sets["smoke"]
    assert [name for name in {**smoke.min, **smoke.max} if METRICS[name].unit == "ms"] == []
    assert {"llm_calls_per_article", "prompt_tokens_per_article", "completion_tokens_per_article",
            "wall_mean_per_reference", "wall_p95_per_reference"} <= set(smoke.max)


def test_the_report_names_the_reference_times(thresholds):
    record = make_record()
    assert "reference request: not measured" in check(record, thresholds).report()
    record.reference_ms = [13_204, 14_020, 13_961, 12_876]
    assert ("reference request: 13.2 s, 14.0 s, 14.0 s, 12.9 s (half before the flow run, half after)"
            in check(record, thresholds).report())


def test_a_set_without_rules_is_an_error_not_a_pass(tmp_path):
    path = tmp_path / "thresholds.yaml"
    path.write_text("version: 1\nsets:\n  smoke: {}\n")
    with pytest.raises(GateError, match="has no rules"):
        check(make_record(), Thresholds.load(path))


def test_a_metric_must_beat_its_trivial_baseline_by_the_margin(tmp_path):
    path = tmp_path / "thresholds.yaml"
    path.write_text("version: 1\nsets:\n  smoke:\n    above_baseline:\n      direction_accuracy: 0.15\n")
    thresholds = Thresholds.load(path)
    passing = make_record(direction_accuracy=0.70, direction_accuracy_always_none=0.54)
    failing = make_record(direction_accuracy=0.60, direction_accuracy_always_none=0.54)
    unmeasured = make_record(direction_accuracy=0.70)
    [ok] = check(passing, thresholds).checks
    assert ok.passed and ok.rule == ">= trivial + 0.150 = 0.690" and ok.measured == "0.700"
    assert not check(failing, thresholds).passed
    assert not check(unmeasured, thresholds).passed  # no baseline measured: nothing to beat is not a pass


def test_a_margin_over_a_metric_without_a_baseline_is_an_error(tmp_path):
    path = tmp_path / "thresholds.yaml"
    path.write_text("version: 1\nsets:\n  smoke:\n    above_baseline:\n      company_f1: 0.1\n")
    with pytest.raises(GateError, match="company_f1 has no trivial baseline; metrics with one: business_accuracy"):
        Thresholds.load(path)
