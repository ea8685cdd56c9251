"""Recorded runs side by side: a markdown table of every metric beside its trivial baseline, each run's direction
confusion and confidence thresholds, and a chart of quality vs tokens vs latency with a reliability diagram."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from news_reader.evaluation import directions
from news_reader.evaluation.bootstrap import RESAMPLES, difference_interval
from news_reader.evaluation.calibration import Entry, reliability, threshold_table
from news_reader.evaluation.records import METRICS, DatasetRef, ExperimentRecord
from news_reader.extraction.direction import DIRECTIONS
from news_reader.extraction.errors import NewsReaderError

QUALITY = ("business_accuracy", "company_f1", "direction_accuracy", "direction_macro_f1", "company_direction_f1",
           "summary_rouge_l", "grounding_rate")
BELOW_BASELINE = "✗"


class ReportError(NewsReaderError):
    kind = "report"


def compare(records: Sequence[ExperimentRecord], out_stem: Path, allow_mixed: bool = False) -> tuple[Path, Path]:
    """Write `<out_stem>.md` and `<out_stem>.png`; runs over different datasets are refused unless allowed."""
    if not records:
        raise ReportError("no records to compare")
    hashes = {record.dataset.sha256 for record in records}
    if len(hashes) > 1 and not allow_mixed:
        datasets = ", ".join(sorted({_dataset(r.dataset) for r in records}))
        raise ReportError(f"records cover {len(hashes)} different datasets ({datasets}); "
                          "metrics over different data are not comparable (allow with --allow-mixed-datasets)")
    out_stem.parent.mkdir(parents=True, exist_ok=True)
    md, png = out_stem.with_name(out_stem.name + ".md"), out_stem.with_name(out_stem.name + ".png")
    md.write_text(markdown(records))
    _chart(records).savefig(png)
    return md, png


def markdown(records: Sequence[ExperimentRecord]) -> str:
    """A table of the runs, then one row per metric with the best value of the row in bold."""
    names = _names(records)
    lines = [f"# Comparison over {_title(records)}", "",
             "| config | record | model | dataset | flow run | eval run | prompts (sha256) |",
             "|---|---|---|---|---|---|---|"]
    for r in records:
        prompts = ", ".join(f"{template} `{sha[:8]}`" for template, sha in sorted(r.prompt_sha256.items()))
        lines.append(f"| {r.config} | {r.name} | {r.model} | {_dataset(r.dataset)}, {r.dataset.lines} lines "
                     f"| {r.flow_run} | {r.eval_run} | {prompts} |")
    lines += ["", "| metric | " + " | ".join(names) + " |", "|---|" + "---:|" * len(records)]
    for key, metric in METRICS.items():
        values = [r.metrics.get(key) for r in records]
        measured = [v for v in values if v is not None]
        if not measured:
            continue
        best = metric.format(max(measured) if metric.higher_is_better else min(measured))
        cells = [metric.format(v) for v in values]
        if len({metric.format(v) for v in measured}) > 1:  # a row where every run ties has no best
            cells = [f"**{cell}**" if cell == best else cell for cell in cells]
        if metric.baseline is not None:
            cells = [f"{cell} {BELOW_BASELINE}" if _below_baseline(r, key) else cell
                     for cell, r in zip(cells, records, strict=True)]
        arrow = "↑" if metric.higher_is_better else "↓"
        lines.append(f"| {metric.label} {arrow} | " + " | ".join(cells) + " |")
    lines += ["", f"{BELOW_BASELINE}: no better than its trivial answer on the same lines (the `trivial:` row): a "
              "failure, whatever its size."]
    if len(records) > 1:
        lines += ["", *_differences(records, names)]
    for name, record in zip(names, records, strict=True):
        lines += _directions(name, record)
    return "\n".join(lines) + "\n"


def _below_baseline(record: ExperimentRecord, key: str) -> bool:
    value, trivial = record.metrics.get(key), record.metrics.get(METRICS[key].baseline)
    return value is not None and trivial is not None and value <= trivial


def _directions(name: str, record: ExperimentRecord) -> list[str]:
    """The run's direction confusion over matched companies, and company+direction precision and recall by
    confidence threshold; nothing for records made before the lines kept them."""
    out = []
    if record.lines and all(line.confusion is not None for line in record.lines):
        counts = {key: sum(line.confusion.get(key, 0) for line in record.lines) for key in directions.CELLS}
        out += ["", f"## {name}: directions of the matched companies", "",
                "| labelled \\ predicted | " + " | ".join(DIRECTIONS) + " | total |", "|---|" + "---:|" * 4]
        for expected in DIRECTIONS:
            row = [counts[directions.cell(expected, p)] for p in DIRECTIONS]
            out.append(f"| {expected} | " + " | ".join(str(n) for n in row) + f" | {sum(row)} |")
    entries = _entries(record)
    if entries is not None and any(e.confidence is not None for e in entries):
        labelled = sum(line.companies_tp + line.companies_fn for line in record.lines)
        out += ["", f"## {name}: keeping only the companies whose direction's confidence is at least a threshold", "",
                "A kept company counts as right when it matches a labelled company and has its labelled direction "
                f"(company+direction); recall is over the {labelled} labelled companies.", "",
                "| confidence ≥ | companies kept | precision | recall | F1 |", "|---:|---:|---:|---:|---:|"]
        rate = METRICS["company_f1"].format
        for row in threshold_table(entries, labelled):
            out.append(f"| {row.threshold:.1f} | {row.kept} | {rate(row.precision)} | {rate(row.recall)} "
                       f"| {rate(row.f1)} |")
    return out


def _entries(record: ExperimentRecord) -> list[Entry] | None:
    if not record.lines or any(line.entries is None for line in record.lines):
        return None
    return [e for line in record.lines for e in line.entries]


def _differences(records: Sequence[ExperimentRecord], names: list[str]) -> list[str]:
    """How much each run differs from the reference run (`default` when present, else the first)."""
    ref = next((i for i, r in enumerate(records) if r.config == "default"), 0)
    others = [i for i in range(len(records)) if i != ref]
    lines = [f"Difference from {names[ref]} (positive: more than it). In brackets, where the records keep their "
             f"per-article scores: the 95% paired bootstrap interval over the articles both runs evaluated "
             f"({RESAMPLES:,} resamples). An interval that contains 0 is no evidence of a difference.", "",
             "| metric | " + " | ".join(names[i] for i in others) + " |", "|---|" + "---:|" * len(others)]
    for key, metric in METRICS.items():
        base = records[ref].metrics.get(key)
        values = [records[i].metrics.get(key) for i in others]
        if base is None or all(v is None for v in values):
            continue
        cells = []
        for i, value in zip(others, values, strict=True):
            cell = "n/a" if value is None else _signed(metric, value - base)
            interval = difference_interval(records[ref].lines, records[i].lines, key) if value is not None else None
            if interval is not None:
                cell += f" [{_signed(metric, interval[0])}, {_signed(metric, interval[1])}]"
            cells.append(cell)
        lines.append(f"| {metric.label} | " + " | ".join(cells) + " |")
    return lines


def _signed(metric, delta: float) -> str:
    text = metric.format(abs(delta))
    return text if text.strip("0.,") == "" else ("+" if delta > 0 else "−") + text


def _chart(records: Sequence[ExperimentRecord]) -> Figure:
    fig = Figure(figsize=(20, 6), layout="constrained")
    FigureCanvasAgg(fig)
    fig.suptitle(f"quality vs tokens vs latency per variant: {_title(records)}")
    _scatter(fig, fig.add_subplot(1, 3, 1), records)
    _bars(fig.add_subplot(1, 3, 2), records)
    _reliability(fig.add_subplot(1, 3, 3), records)
    return fig


def _reliability(ax, records: Sequence[ExperimentRecord]) -> None:
    """Accuracy of the matched companies' directions against their confidence, per confidence bin; a calibrated
    run lies on the diagonal. Runs without confidences are listed, not drawn."""
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="calibrated")
    missing = []
    for i, (name, record) in enumerate(zip(_names(records), records, strict=True)):
        bins = reliability(_entries(record) or [])
        if not bins:
            missing.append(name)
            continue
        ece = record.metrics.get("direction_ece")
        label = name if ece is None else f"{name} (ECE {ece:.3f})"
        ax.plot([b.mean_confidence for b in bins], [b.accuracy for b in bins], marker="o", color=f"C{i}",
                label=label)
        for b in bins:
            ax.annotate(str(b.count), (b.mean_confidence, b.accuracy), textcoords="offset points", xytext=(4, -10),
                        fontsize=7, color=f"C{i}")
    title = "reliability of the direction's confidence (n per bin)"
    if missing:
        title += "\nno confidences: " + ", ".join(missing)
    ax.set(xlim=(0, 1), ylim=(0, 1.05), xlabel="confidence (bin mean)", ylabel="direction accuracy", title=title)
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)


def _scatter(fig: Figure, ax, records: Sequence[ExperimentRecord]) -> None:
    """x = tokens per article, y = company F1, colour = mean wall time; runs missing x or y are listed, not drawn."""
    points, missing = [], []
    for name, r in zip(_names(records), records, strict=True):
        prompt, completion = r.metrics.get("prompt_tokens_per_article"), r.metrics.get("completion_tokens_per_article")
        f1 = r.metrics.get("company_f1")
        if prompt is None or completion is None or f1 is None:
            missing.append(name)
        else:
            points.append((name, prompt + completion, f1, r.metrics.get("wall_ms_mean")))
    timed = [p for p in points if p[3] is not None]
    if timed:
        dots = ax.scatter([p[1] for p in timed], [p[2] for p in timed], c=[p[3] for p in timed], s=120,
                          cmap="viridis")
        fig.colorbar(dots, ax=ax, label=f"{METRICS['wall_ms_mean'].label} (ms)")
    untimed = [p for p in points if p[3] is None]
    if untimed:
        ax.scatter([p[1] for p in untimed], [p[2] for p in untimed], s=120, c="lightgrey", edgecolors="black",
                   label="wall time not measured")
        ax.legend(loc="best", fontsize=8)
    for name, x, y, _ in points:
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(6, 6), fontsize=8)
    title = "quality vs cost"
    if missing:
        title += "\nnot plotted (tokens or F1 not measured): " + ", ".join(missing)
    ax.set(xlabel="prompt + completion tokens / article", ylabel="company F1", title=title)
    ax.margins(0.2)  # room for the annotations
    ax.grid(alpha=0.3)


def _bars(ax, records: Sequence[ExperimentRecord]) -> None:
    """Grouped bars: one group per quality metric, one bar per run; a metric not measured is marked n/a."""
    width = 0.8 / len(records)
    for i, (name, r) in enumerate(zip(_names(records), records, strict=True)):
        for j, key in enumerate(QUALITY):
            x, value = j - 0.4 + width * (i + 0.5), r.metrics.get(key)
            if value is None:
                ax.text(x, 0.01, "n/a", ha="center", va="bottom", rotation=90, fontsize=7)
            else:
                ax.bar(x, value, width, color=f"C{i}", label=name)
    bars = dict(zip(*reversed(ax.get_legend_handles_labels()), strict=True))  # one legend entry per run
    if bars:
        ax.legend(bars.values(), bars.keys(), fontsize=8, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.15))
    ax.set_xticks(range(len(QUALITY)), QUALITY, rotation=15, ha="right", fontsize=8)
    ax.set(ylim=(0, 1.05), ylabel="rate", title="quality metrics")
    ax.grid(axis="y", alpha=0.3)


def _names(records: Sequence[ExperimentRecord]) -> list[str]:
    """Each run's column name: its config, or the record's name when two runs share a config."""
    configs = [r.config for r in records]
    return configs if len(set(configs)) == len(configs) else [r.name for r in records]


def _dataset(dataset: DatasetRef) -> str:
    return f"{dataset.path} ({dataset.sha256[:8]})"


def _title(records: Sequence[ExperimentRecord]) -> str:
    datasets = {_dataset(r.dataset) for r in records}
    return datasets.pop() if len(datasets) == 1 else "mixed datasets: " + ", ".join(sorted(datasets))
