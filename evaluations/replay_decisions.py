"""Score a recorded flow run again as if the business analysis had decided with other settings: which listed
companies are analysed (salience check, cap) and how the direction is read (calibration). The run must have
analysed every company the newer settings would (record it with a high NEWS_READER_MAX_BUSINESSES and
NEWS_READER_MIN_MENTIONS=0); each kept company's analysis, tokens and latency are the recorded ones.

    python evaluations/replay_decisions.py RECORD.json OUTPUTS.jsonl --name dev-new                  # today's settings
    python evaluations/replay_decisions.py RECORD.json OUTPUTS.jsonl --name dev-old --min-mentions 0 --uncalibrated
    python evaluations/replay_decisions.py RECORD.json OUTPUTS.jsonl --name dev-about --probes PROBES.jsonl \
        --min-about 0.6                                  # the salience question (evaluations/probe_salience.py)
    python evaluations/replay_decisions.py RECORD.json OUTPUTS.jsonl --name dev-business --probes PROBES.jsonl \
        --business-probes BUSINESS.jsonl --rerun RERUN.json RERUN.outputs.jsonl  # evaluations/probe_business.py

This is how a decision rule is compared with the one before it without running the model twice: both replays of
one run see the same answers, so their paired bootstrap interval shows the rule's effect alone. An article that a
new rule makes about business, and whose business steps therefore never ran, must be run again (`--rerun`: a run
of today's flow over those articles, in a subset file of the dataset's lines).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import click

from news_reader.evaluation.records import ExperimentRecord, read_jsonl, sha256_file
from news_reader.evaluation.scoring import empty_answer, line_result, run_metrics, score_line
from news_reader.extraction.calibration import Calibration, decide
from news_reader.extraction.calibration import load as load_calibration
from news_reader.extraction.prompting import PROMPTS_DIR, template_file
from news_reader.extraction.salience import NOT_ABOUT, PASSING_MENTION, select
from news_reader.settings import LLMSettings, PipelineSettings

REPO = Path(__file__).resolve().parents[1]


def replay(output: dict, article: str, min_mentions: int, max_businesses: int,
           calibration: Calibration | None, probes: dict[str, dict] | None = None, min_about: float = 0.0) -> dict:
    """The flow output had the business analysis kept only the prominent companies, at most `max_businesses`, asked
    of each whether the news is about it (its recorded probe, when `min_about` > 0) and kept those at least that
    probable, and read each direction through `calibration` (None: the most probable raw direction)."""
    entries = {e["business"]: e for e in output.get("business_info") or []}
    selection = select(article, list(entries), min_mentions, max_businesses)
    asked = [probes[name] for name in selection.analysed] if min_about > 0 else []
    not_about = [probe["business"] for probe in asked if probe["p_yes"] is not None and probe["p_yes"] < min_about]
    decided = []
    for name in (n for n in selection.analysed if n not in not_about):
        entry = entries[name]
        if entry.get("direction_probabilities"):
            probabilities, direction = decide(entry["direction_probabilities"], calibration)
            entry = {**entry, "stock_price_change": direction, "direction_probabilities": probabilities,
                     "confidence": probabilities[direction]}
        decided.append(entry)
    analysed = set(selection.analysed) - set(not_about)
    usage = [u for u in output.get("usage") or [] if u.get("business") is None or u["business"] in analysed]
    usage += _after(usage, [{**probe["usage"], "business": probe["business"]} for probe in asked if probe.get("usage")])
    errors = [e for e in output.get("errors") or [] if e.get("kind") != "skipped"] + [
        {"step": "business_analysis", "business": name, "message": "replayed", "kind": kind}
        for kind, names in ((PASSING_MENTION, selection.passing), (NOT_ABOUT, not_about),
                            ("skipped", selection.over_cap)) for name in names]
    replayed = {**output, "business_info": decided, "usage": usage, "errors": errors}
    replayed.pop("line_number", None)  # Prompt flow's, not the flow's
    return replayed


BUSINESS_STEPS = ("businesses_involved", "business_salience", "business_analysis")


def classified(output: dict, probe: dict | None, min_business: float) -> dict | None:
    """The flow output had the article been called about business when the probe's p_true reaches `min_business`:
    an article no longer about business loses what the business steps found and spent; None for an article now
    about business whose business steps never ran (run it again: --rerun)."""
    if probe is None or probe.get("p_true") is None:
        return output
    business = probe["p_true"] >= min_business
    if business == output["is_about_business"]:
        return output
    if business:
        return None
    return {**output, "is_about_business": False, "business_info": [],
            "usage": [u for u in output.get("usage") or [] if u.get("step") not in BUSINESS_STEPS],
            "errors": [e for e in output.get("errors") or [] if e.get("step") not in BUSINESS_STEPS]}


def rerun_outputs(record_path: Path, outputs: Path, labels: list[dict]) -> dict[int, dict]:
    """The flow outputs of a run over a subset of the dataset, keyed by their line in the dataset (by article id)."""
    subset = read_jsonl(REPO / ExperimentRecord.load(record_path).dataset.path)
    lines = {label["id"]: n for n, label in enumerate(labels)}
    return {lines[subset[int(o["line_number"])]["id"]]: o for o in read_jsonl(outputs)}


def _after(recorded: list[dict], probes: list[dict]) -> list[dict]:
    """The probes' usage moved onto the article's timeline, one after the other after its last recorded call: they
    were made later, and the article's calls take turns (a conservative wall time: in the flow each check comes
    just before its company's analysis)."""
    spans = [(datetime.fromisoformat(u["started_at"]), u["latency_ms"]) for u in recorded if u.get("started_at")]
    if not spans:
        return probes
    at = max(start + timedelta(milliseconds=ms) for start, ms in spans)
    moved = []
    for probe in probes:
        moved.append({**probe, "started_at": at.isoformat()})
        at += timedelta(milliseconds=probe["latency_ms"])
    return moved


@click.command()
@click.argument("record_path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("outputs", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", required=True, help="The new record's name (and config column in reports).")
@click.option("--min-mentions", type=int, default=None, help="Default: NEWS_READER_MIN_MENTIONS's.")
@click.option("--max-businesses", type=int, default=None, help="Default: NEWS_READER_MAX_BUSINESSES's.")
@click.option("--uncalibrated", is_flag=True, help="Read the model's own probabilities.")
@click.option("--probes", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The salience question's answers for OUTPUTS (evaluations/probe_salience.py).")
@click.option("--min-about", type=float, default=None,
              help="Keep a company only if the news is about it at least this probably; default: "
                   "NEWS_READER_MIN_ABOUT_PROBABILITY's. Needs --probes when above 0.")
@click.option("--business-probes", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The is-business question's answers for the dataset (evaluations/probe_business.py): each "
                   "article is then about business when its p_true reaches --min-business.")
@click.option("--min-business", type=float, default=None,
              help="Default: NEWS_READER_MIN_BUSINESS_PROBABILITY's. Used with --business-probes.")
@click.option("--rerun", nargs=2, multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="RECORD OUTPUTS of a run of today's default flow over some of the dataset's articles (a subset "
                   "file, matched by article id): they replace the recorded lines as they are. Repeatable; a later "
                   "run's line replaces an earlier one's.")
@click.option("--out", default=REPO / ".state" / "experiments", show_default=True,
              type=click.Path(file_okay=False, path_type=Path))
def main(record_path: Path, outputs: Path, name: str, min_mentions: int | None, max_businesses: int | None,
         uncalibrated: bool, probes: Path | None, min_about: float | None, business_probes: Path | None,
         min_business: float | None, rerun: tuple[tuple[Path, Path], ...], out: Path) -> None:
    """Replay the flow outputs OUTPUTS of the run that RECORD_PATH records, and write the new record to --out."""
    record = ExperimentRecord.load(record_path)
    limits = PipelineSettings()
    min_mentions = limits.min_mentions if min_mentions is None else min_mentions
    max_businesses = limits.max_businesses if max_businesses is None else max_businesses
    min_about = limits.min_about_probability if min_about is None else min_about
    if min_about > 0 and probes is None:
        raise click.UsageError(f"--min-about {min_about} needs --probes")
    asked: dict[int, dict[str, dict]] = {}
    for probe in read_jsonl(probes) if min_about > 0 else []:
        asked.setdefault(int(probe["line_number"]), {})[probe["business"]] = probe
    calibration = None if uncalibrated else load_calibration(LLMSettings(model="replay").direction_calibration)
    min_business = limits.min_business_probability if min_business is None else min_business
    classify = {int(p["line_number"]): p for p in read_jsonl(business_probes)} if business_probes else {}
    labels = read_jsonl(REPO / record.dataset.path)
    by_line = {int(o["line_number"]): o for o in read_jsonl(outputs)}
    again = {n: output for run in rerun for n, output in rerun_outputs(*run, labels).items()}
    scored, unscored, not_replayable = {}, {}, []
    for n, label in enumerate(labels):
        if n in again:
            scored[n] = score_line({k: v for k, v in again[n].items() if k != "line_number"}, label, label["article"])
        elif n in by_line:
            output = classified(by_line[n], classify.get(n), min_business)
            if output is None:
                not_replayable.append(n)
                continue
            output = replay(output, label["article"], min_mentions, max_businesses, calibration, asked.get(n, {}),
                            min_about)
            scored[n] = score_line(output, label, label["article"])
        else:
            unscored[n] = empty_answer(label, label["article"])
    if not_replayable:
        raise click.ClickException(f"lines {', '.join(map(str, not_replayable))} are about business now but were "
                                   "not when recorded: run them again with today's flow and pass --rerun")
    lines = [line_result(n, scored[n]) if n in scored else line_result(n, unscored[n], scored=False)
             for n in range(len(labels))]
    metrics = run_metrics(list(scored.values()), list(unscored.values()), [])
    rule = (f"replayed: min_mentions {min_mentions}, max_businesses {max_businesses}, min_about {min_about}, "
            f"{'uncalibrated' if calibration is None else 'calibrated'}"
            + (f", min_business {min_business}" if business_probes else "")
            + (f", {len(again)} lines run again ({', '.join(r.name for r, _ in rerun)})" if rerun else ""))
    prompts = dict(record.prompt_sha256)
    if min_about > 0:  # the salience question's prompt, as it is now
        salience = PROMPTS_DIR / template_file("business_salience")
        prompts[salience.name] = sha256_file(salience)
    replayed = record.model_copy(update={"name": name, "config": name, "eval_run": rule, "metrics": metrics,
                                         "lines": lines, "reference_ms": [], "prompt_sha256": prompts})
    click.echo(f"wrote {replayed.save(out)} ({rule})")


if __name__ == "__main__":
    main()
