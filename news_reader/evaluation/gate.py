"""The quality gate: per-dataset thresholds (a versioned YAML file) checked against one experiment record."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from news_reader.evaluation.records import METRICS, ExperimentRecord
from news_reader.extraction.errors import NewsReaderError, validation_message

THRESHOLDS_VERSION = 1


class GateError(NewsReaderError):
    kind = "gate"


class Bounds(BaseModel):
    """Lowest and highest acceptable value of each metric, and how far a metric must beat the trivial answer on the
    same lines (`above_baseline`: the margin over the metric's baseline, e.g. direction accuracy over always none),
    for one dataset."""

    model_config = ConfigDict(extra="forbid")

    min: dict[str, float] = {}
    max: dict[str, float] = {}
    above_baseline: dict[str, float] = {}

    @field_validator("min", "max", "above_baseline")
    @classmethod
    def _known_metrics(cls, rules: dict[str, float]) -> dict[str, float]:
        unknown = [name for name in rules if name not in METRICS]
        if unknown:
            raise ValueError(f"unknown metric {', '.join(unknown)}; metrics: {', '.join(METRICS)}")
        return rules

    @field_validator("above_baseline")
    @classmethod
    def _have_baselines(cls, rules: dict[str, float]) -> dict[str, float]:
        without = [name for name in rules if METRICS[name].baseline is None]
        if without:
            with_one = [name for name, metric in METRICS.items() if metric.baseline]
            raise ValueError(f"{', '.join(without)} has no trivial baseline; metrics with one: {', '.join(with_one)}")
        return rules


class Thresholds(BaseModel):
    """The thresholds file: `version` and one set of bounds per dataset name."""

    model_config = ConfigDict(extra="forbid")

    version: int
    sets: dict[str, Bounds]

    @field_validator("version")
    @classmethod
    def _supported(cls, version: int) -> int:
        if version != THRESHOLDS_VERSION:
            raise ValueError(f"unsupported version {version}; this news-reader reads version {THRESHOLDS_VERSION}")
        return version

    @classmethod
    def load(cls, path: Path) -> Thresholds:
        try:
            return cls.model_validate(yaml.safe_load(path.read_text()))
        except OSError as error:
            raise GateError(f"{path}: cannot read thresholds: {error.strerror}") from error
        except yaml.YAMLError as error:
            raise GateError(f"{path}: not valid YAML: {' '.join(str(error).split())}") from error
        except ValidationError as error:
            problems = validation_message(error, "file", drop_value_error=True)
            raise GateError(f"{path}: invalid thresholds: {problems}") from error


@dataclass(frozen=True)
class Check:
    """One rule applied to one metric of the record."""

    metric: str
    rule: str
    measured: str
    passed: bool

    @property
    def label(self) -> str:
        return METRICS[self.metric].label


@dataclass(frozen=True)
class GateResult:
    record: ExperimentRecord
    set_name: str
    checks: list[Check]

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    def report(self) -> str:
        """Plain text: what was checked, one aligned row per rule, and the verdict on the last line."""
        record, dataset = self.record, self.record.dataset
        lines = [
            f"quality gate, set {self.set_name!r}",
            f"config:   {record.config}",
            f"flow run: {record.flow_run}",
            f"eval run: {record.eval_run}",
            f"dataset:  {dataset.path} (sha256 {dataset.sha256[:12]}, {dataset.lines} lines)",
            f"model:    {record.model}",
            f"reference request: {_reference(record.reference_ms)}",
            "",
        ]
        rows = [("metric", "label", "measured", "rule", "status")]
        rows += [(c.metric, c.label, c.measured, c.rule, "PASS" if c.passed else "FAIL") for c in self.checks]
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines += ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
                  for row in rows]
        failed = sum(not check.passed for check in self.checks)
        lines += ["", "gate: PASSED" if not failed else f"gate: FAILED ({failed} of {len(self.checks)} checks)"]
        return "\n".join(lines)


def _reference(times_ms: list[int]) -> str:
    if not times_ms:
        return "not measured"
    return ", ".join(f"{ms / 1000:.1f} s" for ms in times_ms) + " (half before the flow run, half after)"


def dataset_name(record: ExperimentRecord) -> str:
    """The name a dataset goes by in the thresholds file: `data/eval/smoke.jsonl` -> `smoke`."""
    return Path(record.dataset.path).stem


def check(record: ExperimentRecord, thresholds: Thresholds, set_name: str | None = None) -> GateResult:
    """Apply the set's rules (by default the set named for the record's dataset) to the record's metrics."""
    set_name = set_name or dataset_name(record)
    if set_name not in thresholds.sets:
        raise GateError(f"no threshold set {set_name!r}; sets: {', '.join(thresholds.sets) or 'none'}")
    bounds = thresholds.sets[set_name]
    if not bounds.min and not bounds.max and not bounds.above_baseline:
        raise GateError(f"threshold set {set_name!r} has no rules: a gate that checks nothing cannot pass")
    checks = [_check(record, name, ">=", limit) for name, limit in bounds.min.items()]
    checks += [_check(record, name, "<=", limit) for name, limit in bounds.max.items()]
    checks += [_check_margin(record, name, margin) for name, margin in bounds.above_baseline.items()]
    return GateResult(record, set_name, checks)


def _check_margin(record: ExperimentRecord, name: str, margin: float) -> Check:
    """The metric must reach its trivial baseline's value on the same lines plus `margin`."""
    metric = METRICS[name]
    value, trivial = record.metrics.get(name), record.metrics.get(metric.baseline)
    if trivial is None:
        return Check(name, f">= trivial + {metric.format(margin)} (trivial not measured)",
                     "not measured" if value is None else metric.format(value), False)
    rule = f">= trivial + {metric.format(margin)} = {metric.format(trivial + margin)}"
    if value is None:
        return Check(name, rule, "not measured", False)
    return Check(name, rule, metric.format(value), value >= trivial + margin)


def _check(record: ExperimentRecord, name: str, op: str, limit: float) -> Check:
    metric, value = METRICS[name], record.metrics.get(name)
    rule = f"{op} {metric.format(limit)}"
    if value is None:
        return Check(name, rule, "not measured", False)
    return Check(name, rule, metric.format(value), value >= limit if op == ">=" else value <= limit)
