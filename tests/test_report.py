"""Comparison of recorded runs: a markdown table and a chart."""

from __future__ import annotations

import matplotlib.image
import pytest
from click.testing import CliRunner

from news_reader.cli import main
from news_reader.evaluation import directions
from news_reader.evaluation.calibration import Entry
from news_reader.evaluation.records import LineResult
from news_reader.evaluation.report import ReportError, compare, markdown
from tests.test_gate import make_record

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def records():
    """Three configurations over the same smoke set: step by step, one variant, and the single-prompt baseline."""
    return [
        make_record("default"),
        make_record("general_info=variant_1", company_f1=0.702, summary_rouge_l=0.355, prompt_tokens_per_article=3390.1,
                    wall_ms_mean=44020.0),
        make_record("single_prompt", company_f1=0.588, direction_accuracy=None, prompt_tokens_per_article=1480.2,
                    completion_tokens_per_article=530.7, wall_ms_mean=18230.0),
    ]


def row(table: str, label: str) -> list[str]:
    """The cells of the metric row whose label starts with `label`."""
    line = next(line for line in table.splitlines() if line.startswith(f"| {label}"))
    return [cell.strip() for cell in line.strip("|").split("|")][1:]


def test_markdown_describes_every_run(records):
    table = markdown(records)
    for record in records:
        assert f"| {record.config} | {record.name} | qwen2.5-1.5b-instruct-q4_k_m |" in table
        assert record.flow_run in table and record.eval_run in table
    assert "data/eval/smoke.jsonl (ab12ab12), 20 lines" in table
    assert "general_info `9f9f9f9f`" in table
    assert "| metric | default | general_info=variant_1 | single_prompt |" in table


def test_differences_are_signed_and_taken_from_the_default_run(records):
    differences = markdown(records[::-1]).split("Difference from default")[1]
    assert "| metric | single_prompt | general_info=variant_1 |" in differences
    assert row(differences, "company F1") == ["−0.090", "+0.024"]
    assert row(differences, "prompt tokens / article") == ["−1,644", "+266"]
    assert row(differences, "direction accuracy") == ["n/a", "0.000"]


def test_best_value_is_bold_where_higher_is_better(records):
    assert row(markdown(records), "company F1") == ["0.678", "**0.702**", "0.588"]


def test_best_value_is_bold_where_lower_is_better(records):
    table = markdown(records)
    assert row(table, "prompt tokens / article") == ["3,125", "3,390", "**1,480**"]
    assert row(table, "LLM wall time / article, mean") == ["41,210", "44,020", "**18,230**"]


def test_unmeasured_value_is_na_and_never_best(records):
    records[1].metrics["wall_ms_mean"] = None
    assert row(markdown(records), "LLM wall time / article, mean") == ["41,210", "n/a", "**18,230**"]


def test_ties_for_best_are_all_bold(records):
    assert row(markdown(records), "completion tokens / article") == ["**412**", "**412**", "531"]


def test_row_where_every_run_ties_has_no_bold(records):
    assert row(markdown(records), "direction accuracy") == ["0.750", "0.750", "n/a"]
    assert row(markdown(records), "schema-valid lines") == ["1.000", "1.000", "1.000"]


def test_metric_no_run_measured_is_left_out(records):
    table = markdown(records)
    assert "Cohen's kappa" not in table
    assert "company recall" in table


def test_metrics_follow_the_catalogue_order(records):
    table = markdown(records)
    assert table.index("schema-valid lines") < table.index("company F1") < table.index("lines failed")


def test_runs_sharing_a_config_are_told_apart_by_record_name(records):
    other_model = make_record("default").model_copy(update={"name": "smoke-default-phi"})
    assert "| metric | smoke-default | smoke-default-phi |" in markdown([records[0], other_model])


def test_runs_over_different_datasets_are_refused(records, tmp_path):
    records.append(make_record("default", dataset="data/eval/full.jsonl", sha256="cd34" * 16))
    with pytest.raises(ReportError, match="different datasets"):
        compare(records, tmp_path / "compare")
    assert not list(tmp_path.iterdir())


def test_runs_over_different_datasets_compare_when_allowed(records, tmp_path):
    records.append(make_record("full-default", dataset="data/eval/full.jsonl", sha256="cd34" * 16))
    md, _ = compare(records, tmp_path / "compare", allow_mixed=True)
    assert "mixed datasets" in md.read_text()


def test_compare_writes_markdown_and_a_png_chart(records, tmp_path):
    md, png = compare(records, tmp_path / "reports" / "compare")
    assert (md.name, png.name) == ("compare.md", "compare.png")
    assert md.read_text() == markdown(records)
    assert png.read_bytes().startswith(PNG_SIGNATURE)
    height, width, channels = matplotlib.image.imread(png).shape
    assert (width, height) == (2000, 600)  # quality vs cost, quality bars, reliability
    assert channels in (3, 4)


def test_chart_copes_with_unmeasured_quality_tokens_and_latency(tmp_path):
    records = [make_record("default", company_f1=None), make_record("single_prompt", wall_ms_mean=None),
               make_record("general_info=variant_1", grounding_rate=None, business_accuracy=None)]
    _, png = compare(records, tmp_path / "compare")
    assert png.read_bytes().startswith(PNG_SIGNATURE)


def test_cli_compares_a_folder_of_records(records, tmp_path):
    for record in records:
        record.save(tmp_path / "records")
    out = tmp_path / "reports" / "compare"
    result = CliRunner().invoke(main, ["eval", "compare", str(tmp_path / "records"), "--out", str(out)])
    assert result.exit_code == 0, result.stderr
    assert row(result.stdout, "company F1") == ["0.678", "**0.702**", "0.588"]
    assert f"wrote {out}.md\nwrote {out}.png" in result.stdout
    assert (tmp_path / "reports" / "compare.png").is_file()


def test_cli_refuses_mixed_datasets_unless_allowed(records, tmp_path):
    paths = [str(records[0].save(tmp_path)),
             str(make_record("full", dataset="data/eval/full.jsonl", sha256="cd34" * 16).save(tmp_path))]
    args = ["eval", "compare", *paths, "--out", str(tmp_path / "compare")]
    refused = CliRunner().invoke(main, args)
    assert refused.exit_code == 2
    assert refused.stderr.startswith("news-reader: records cover 2 different datasets")
    assert len(refused.stderr.splitlines()) == 1
    assert CliRunner().invoke(main, [*args, "--allow-mixed-datasets"]).exit_code == 0


def test_cli_exits_2_on_a_folder_without_records(tmp_path):
    result = CliRunner().invoke(main, ["eval", "compare", str(tmp_path)])
    assert result.exit_code == 2
    assert result.stderr == f"news-reader: no *.json records in {tmp_path}\n"


def test_differences_carry_a_bootstrap_interval_when_records_keep_their_lines():
    from tests.test_bootstrap import line

    base = make_record("default").model_copy(update={"lines": [line(n, correct=n % 2 == 0) for n in range(40)]})
    better = make_record("business_category=variant_1", business_accuracy=1.0).model_copy(
        update={"lines": [line(n) for n in range(40)]})
    differences = markdown([base, better]).split("Difference from default")[1]
    [cell] = row(differences, "is-business accuracy")
    assert cell.startswith("+0.100 [+0.") and cell.endswith("]")
    assert row(differences, "title exact match") == ["0.000"]  # not resampled: no interval


def test_a_metric_no_better_than_its_trivial_answer_is_marked_as_failing(records):
    records[0].metrics.update(direction_accuracy=0.54, direction_accuracy_always_none=0.54)
    records[1].metrics.update(direction_accuracy=0.80, direction_accuracy_always_none=0.54)
    table = markdown(records)
    assert row(table, "direction accuracy")[:2] == ["0.540 ✗", "**0.800**"]
    assert "✗: no better than its trivial answer" in table


def scored_line(n: int, pairs: list[tuple[str, str]], confidences: list[float], extra: list[float]) -> LineResult:
    """An article whose matched companies have (labelled, predicted) `pairs`, and `extra` unlabelled companies."""
    entries = [Entry(confidence=c, matched=True, right=e == p) for (e, p), c in zip(pairs, confidences, strict=True)]
    entries += [Entry(confidence=c, matched=False, right=False) for c in extra]
    return LineResult(line=n, business_correct=True, companies_tp=len(pairs), companies_fp=len(extra),
                      companies_fn=1, directions_correct=sum(e == p for e, p in pairs), directions_total=len(pairs),
                      confusion=directions.confusion(pairs), entries=entries, summary_rouge_l=0.5,
                      prompt_tokens=1000, completion_tokens=100, wall_ms=1000, step_latency_sum_ms=1000)


def test_each_run_shows_its_direction_confusion_and_a_confidence_threshold_table(tmp_path):
    record = make_record("default")
    record.lines = [scored_line(0, [("none", "none"), ("increase", "none")], [0.9, 0.45], [0.95]),
                    scored_line(1, [("decrease", "decrease")], [0.85], [0.3])]
    table = markdown([record])
    confusion = table.split("## default: directions of the matched companies")[1]
    assert row(confusion, "increase") == ["0", "0", "1", "1"]
    assert row(confusion, "none") == ["0", "0", "1", "1"]
    thresholds = table.split("## default: keeping only")[1]
    assert "over the 5 labelled companies" in thresholds
    assert row(thresholds, "0.0") == ["5", "0.400", "0.400", "0.400"]  # 2 right of 5 kept, of 5 labelled
    assert row(thresholds, "0.9") == ["2", "0.500", "0.200", "0.286"]  # none 0.9 right, the unlabelled 0.95
    _, png = compare([record], tmp_path / "compare")
    assert png.read_bytes().startswith(PNG_SIGNATURE)


def test_records_without_confusion_or_confidences_show_neither_section(records):
    table = markdown(records)
    assert "directions of the matched companies" not in table and "keeping only" not in table
