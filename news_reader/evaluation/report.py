"""Recorded runs side by side: a markdown table of every metric and a chart of quality vs tokens vs latency."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from news_reader.evaluation.bootstrap import RESAMPLES, difference_interval
from news_reader.evaluation.records import METRICS, DatasetRef, ExperimentRecord
from news_reader.extraction.errors import NewsReaderError

QUALITY = ("business_accuracy", "company_f1", "direction_accuracy", "summary_rouge_l", "grounding_rate")


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
        arrow = "↑" if metric.higher_is_better else "↓"
        lines.append(f"| {metric.label} {arrow} | " + " | ".join(cells) + " |")
    if len(records) > 1:
        lines += ["", *_differences(records, names)]
    return "\n".join(lines) + "\n"


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
    fig = Figure(figsize=(14, 6), layout="constrained")
    FigureCanvasAgg(fig)
    fig.suptitle(f"quality vs tokens vs latency per variant: {_title(records)}")
    _scatter(fig, fig.add_subplot(1, 2, 1), records)
    _bars(fig.add_subplot(1, 2, 2), records)
    return fig


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
