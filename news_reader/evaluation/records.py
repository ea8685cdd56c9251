"""What an experiment records (runs, prompts, model, data, metrics) and the catalogue of metrics it reports."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from news_reader.evaluation.calibration import Entry


@dataclass(frozen=True)
class Metric:
    """How to read a metric: its label, whether higher is better, how to print it, and the metric of the trivial
    answer it must beat (on the same lines), if it has one."""

    label: str
    higher_is_better: bool
    unit: Literal["rate", "count", "tokens", "ms", "decimal"]
    baseline: str | None = None

    def format(self, value: float | None) -> str:
        if value is None:
            return "n/a"
        if self.unit == "rate":
            return f"{value:.3f}"
        if self.unit == "decimal":
            return f"{value:.2f}"
        return f"{value:,.0f}"


# Every metric an evaluation run logs, in report order. Rates are 0..1. An article's wall time runs from its first
# LLM call to its last answer; the sum of its steps' latencies counts, for calls sent at once to a server that
# answers one at a time, each call's wait behind the others (it was called "LLM latency" until 2026-12).
METRICS: dict[str, Metric] = {
    "schema_valid_rate": Metric("schema-valid lines", True, "rate"),
    "title_match_rate": Metric("title exact match (normalised)", True, "rate"),
    "title_f1": Metric("title token F1", True, "rate"),
    "summary_rouge_l": Metric("summary ROUGE-L vs standfirst", True, "rate"),
    "business_accuracy": Metric("is-business accuracy", True, "rate", baseline="business_accuracy_majority"),
    "business_precision": Metric("is-business precision", True, "rate"),
    "business_recall": Metric("is-business recall", True, "rate"),
    "business_accuracy_majority": Metric("trivial: is-business accuracy of the majority answer", True, "rate"),
    "company_precision": Metric("company precision", True, "rate"),
    "company_recall": Metric("company recall", True, "rate"),
    "company_f1": Metric("company F1", True, "rate"),
    "direction_accuracy": Metric("direction accuracy (matched companies)", True, "rate",
                                 baseline="direction_accuracy_always_none"),
    "direction_accuracy_always_none": Metric("trivial: direction accuracy of always none", True, "rate"),
    "direction_macro_f1": Metric("direction macro-F1 (3 classes)", True, "rate",
                                 baseline="direction_macro_f1_always_none"),
    "direction_macro_f1_always_none": Metric("trivial: direction macro-F1 of always none", True, "rate"),
    "company_direction_f1": Metric("company+direction F1", True, "rate", baseline="company_direction_f1_always_none"),
    "company_direction_f1_always_none": Metric("trivial: company+direction F1, same companies, always none", True,
                                               "rate"),
    "direction_ece": Metric("direction confidence: expected calibration error", False, "rate"),
    "confidence_coverage": Metric("listed companies with a confidence", True, "rate"),
    "grounding_rate": Metric("quotes verbatim in article", True, "rate"),
    "judge_pass_rate": Metric("judge: reasons passed", True, "rate"),
    "judge_agreement": Metric("judge agreement with labels", True, "rate"),
    "judge_kappa": Metric("judge Cohen's kappa vs labels", True, "rate"),
    "step_errors_per_article": Metric(
        "step errors per article (companies left out by the salience checks are not errors)", False, "rate"),
    "passing_mentions_per_article": Metric("listed companies left out as passing mentions / article", False, "rate"),
    "not_about_per_article": Metric("listed companies left out: the news is not about them / article", False,
                                    "rate"),
    "llm_calls_per_article": Metric("LLM calls / article", False, "decimal"),
    "prompt_tokens_per_article": Metric("prompt tokens / article", False, "tokens"),
    "completion_tokens_per_article": Metric("completion tokens / article", False, "tokens"),
    "cached_tokens_per_article": Metric("cached tokens / article", True, "tokens"),
    "cached_share": Metric("cached share of prompt tokens", True, "rate"),
    "wall_ms_mean": Metric("LLM wall time / article, mean", False, "ms"),
    "wall_ms_p95": Metric("LLM wall time / article, p95", False, "ms"),
    "reference_ms": Metric("reference request on the same server", False, "ms"),
    "wall_mean_per_reference": Metric("LLM wall time / article, mean, in reference requests", False, "decimal"),
    "wall_p95_per_reference": Metric("LLM wall time / article, p95, in reference requests", False, "decimal"),
    "step_latency_sum_ms_mean": Metric("sum of step latencies / article, mean", False, "ms"),
    "step_latency_sum_ms_p95": Metric("sum of step latencies / article, p95", False, "ms"),
    "lines_evaluated": Metric("lines scored", True, "count"),
    "lines_failed": Metric("lines failed (flow or evaluation)", False, "count"),
}


class DatasetRef(BaseModel):
    path: str
    sha256: str
    lines: int


class LineResult(BaseModel):
    """One article's scores, kept in the record so that comparisons can resample articles (paired bootstrap)."""

    line: int = Field(description="The article's line number in the dataset, from 0.")
    scored: bool = Field(True, description="False when the line's flow or evaluation failed (scored as empty).")
    business_correct: bool
    companies_tp: int
    companies_fp: int
    companies_fn: int
    directions_correct: int
    directions_total: int
    confusion: dict[str, int] | None = Field(None, description=(
        "Matched companies per `expected>predicted` direction pair (non-zero cells); None in records made before."))
    entries: list[Entry] | None = Field(None, description=(
        "Each company the flow listed: its confidence, matched, right direction; None in records made before."))
    summary_rouge_l: float
    prompt_tokens: int | None
    completion_tokens: int | None
    wall_ms: int | None = Field(None, description="The article's LLM wall time; None in records made before it was.")
    step_latency_sum_ms: int | None


class ExperimentRecord(BaseModel):
    """One configuration (flow + variant) run over one dataset, then evaluated."""

    name: str
    created: str
    config: str = Field(description="`default`, `<step>=<variant>` or `single_prompt`.")
    flow: str
    variant: str | None = Field(description="Prompt flow's variant id, e.g. ${general_info_prompt.variant_1}.")
    flow_run: str
    eval_run: str
    model: str
    endpoint: str
    prompt_sha256: dict[str, str] = Field(description="sha256 of every prompt template the configuration used.")
    dataset: DatasetRef
    judge_model: str | None
    reference_ms: list[int] = Field(default_factory=list, description=(
        "Times of the reference request on the flow run's server: half just before the run, half just after; empty "
        "where the run's server was not at hand (workspace runs, reused flow runs)."))
    metrics: dict[str, float | None]
    lines: list[LineResult] = Field(default_factory=list)

    def save(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{self.name}.json"
        path.write_text(self.model_dump_json(indent=2) + "\n")
        return path

    @classmethod
    def load(cls, path: Path) -> ExperimentRecord:
        return cls.model_validate_json(path.read_text())


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def count_lines(path: Path) -> int:
    with path.open("rb") as f:
        return sum(1 for line in f if line.strip())


def dataset_ref(path: Path, root: Path) -> DatasetRef:
    """The dataset's path (relative to `root` when inside it), content hash and number of lines."""
    resolved = path.resolve()
    shown = resolved.relative_to(root) if resolved.is_relative_to(root) else resolved
    return DatasetRef(path=str(shown), sha256=sha256_file(path), lines=count_lines(path))


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
