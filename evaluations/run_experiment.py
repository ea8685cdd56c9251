"""Run an experiment: the flow (one configuration, all of them, or the baseline) over a labelled dataset, then the
evaluation flow over that run, and record runs, variant, prompt hashes, model, dataset hash and metrics.

    python evaluations/run_experiment.py --data smoke --config all
    python evaluations/run_experiment.py --data full --config default --flow-run <existing run>   # evaluate only

This is the Prompt flow side of the evaluation; the scoring, judge, records, gate and comparison are in
news_reader.evaluation and do not depend on Prompt flow.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import click
import yaml
from promptflow.client import PFClient

from news_reader.evaluation.records import METRICS, ExperimentRecord, LineResult, dataset_ref, sha256_file
from news_reader.evaluation.scoring import LineScore, line_result
from news_reader.prompting import DEFAULT_VARIANT, PROMPTS_DIR, template_file

REPO = Path(__file__).resolve().parents[1]
STEP_FLOW = REPO / "flows" / "news_reader"
SINGLE_FLOW = REPO / "flows" / "news_reader_single"
EVAL_FLOW = REPO / "evaluations" / "news_reader_eval"
BASELINE = "single_prompt"
EVAL_COLUMNS = {
    "article": "${data.article}",
    "title_reference": "${data.title_reference}",
    "summary_reference": "${data.summary_reference}",
    "expected_is_about_business": "${data.is_about_business}",
    "expected_companies": "${data.companies}",
    **{k: f"${{run.outputs.{k}}}" for k in ("title", "summary", "is_about_business", "business_info", "usage",
                                             "errors")},
}


def flow_variants() -> dict[str, list[str]]:
    """Prompt nodes with variants in the step flow and their variant ids, default first."""
    dag = yaml.safe_load((STEP_FLOW / "flow.dag.yaml").read_text())
    return {
        node: [spec["default_variant_id"], *sorted(set(spec["variants"]) - {spec["default_variant_id"]})]
        for node, spec in dag.get("node_variants", {}).items()
    }


def configurations(choice: str) -> list[str]:
    """`all` is the default, every non-default variant (one node changed at a time) and the baseline."""
    known = ["default", *(f"{node.removesuffix('_prompt')}={v}" for node, vs in flow_variants().items()
                          for v in vs[1:]), BASELINE]
    if choice == "all":
        return known
    if choice not in known:
        raise click.BadParameter(f"{choice!r}; choose one of: all, {', '.join(known)}", param_hint="--config")
    return [choice]


def flow_and_variant(config: str) -> tuple[Path, str | None, dict[str, str]]:
    """The flow folder, Prompt flow's variant id, and the prompt variant of each step the configuration uses."""
    if config == BASELINE:
        return SINGLE_FLOW, None, {BASELINE: DEFAULT_VARIANT}
    steps = dict.fromkeys(["general_info", "business_category", "businesses_involved", "business_analysis"],
                          DEFAULT_VARIANT)
    if config == "default":
        return STEP_FLOW, None, steps
    step, variant = config.split("=")
    return STEP_FLOW, f"${{{step}_prompt.{variant}}}", {**steps, step: variant}


def prompt_hashes(steps: dict[str, str], judge: bool) -> dict[str, str]:
    """sha256 of every template the run used: the system prompt, each step's variant, and the judge's."""
    names = ["system.jinja2", *(template_file(step, variant) for step, variant in steps.items())]
    names += ["judge_reason.jinja2"] if judge else []
    return {name: sha256_file(PROMPTS_DIR / name) for name in names}


def line_results(pf: PFClient, eval_run: str) -> list[LineResult]:
    """Each evaluated article's scores, by its line number in the dataset."""
    details = pf.get_details(eval_run, all_results=True)
    return [
        line_result(int(line), LineScore.model_validate(scores))
        for line, scores in zip(details["inputs.line_number"], details["outputs.scores"], strict=True)
        if isinstance(scores, dict)
    ]


def failed_lines(pf: PFClient, run_name: str) -> int:
    details = pf.get_details(run_name, all_results=True)
    return int((details["outputs.title"] == "(Failed)").sum()) if "outputs.title" in details else len(details)


@click.command()
@click.option("--data", "data_name", default="smoke", show_default=True,
              help="A dataset in data/eval (smoke, full) or a path to a JSONL file in the evaluation format.")
@click.option("--config", "config_choice", default="default", show_default=True,
              help="default, <step>=<variant>, single_prompt, or all.")
@click.option("--flow-run", help="Evaluate this existing flow run instead of running the flow (one --config only).")
@click.option("--eval-run", help="With --flow-run: record this existing evaluation run of it instead of running one.")
@click.option("--judge/--no-judge", default=True, show_default=True, help="Run the LLM judge of the reasons.")
@click.option("--connection", default="news_reader_llm", show_default=True, help="Prompt flow connection to use.")
@click.option("--model", default=None, help="Model (or Azure deployment) for the flow and the judge.")
@click.option("--judge-model", default=None, help="Model for the judge (default: --model or the flow's).")
@click.option("--out", default=".state/experiments", show_default=True, type=click.Path(path_type=Path),
              help="Folder for the experiment records.")
def main(data_name, config_choice, flow_run, eval_run, judge, connection, model, judge_model, out) -> None:
    """Run the flow and the evaluation, and write one record per configuration."""
    data = Path(data_name) if data_name.endswith(".jsonl") else REPO / "data" / "eval" / f"{data_name}.jsonl"
    if not data.is_file():
        raise click.BadParameter(f"no dataset at {data}", param_hint="--data")
    configs = configurations(config_choice)
    if flow_run and len(configs) != 1:
        raise click.UsageError("--flow-run evaluates one configuration: name it with --config")
    if eval_run and not flow_run:
        raise click.UsageError("--eval-run needs the --flow-run it evaluated")
    pf = PFClient()
    stamp = datetime.now(UTC).strftime("%Y%m%d_%H%M%S")
    dataset = dataset_ref(data, REPO)
    flow_model = model or _dag_model(STEP_FLOW)
    judge_model = judge_model or flow_model
    failed_configs = []
    for config in configs:
        flow, variant, steps = flow_and_variant(config)
        name = f"{data.stem}_{config.replace('=', '_')}_{stamp}"
        llm_nodes = _llm_nodes(flow)
        if flow_run is None:
            run = pf.run(
                flow=flow, data=data, column_mapping={"article": "${data.article}"}, variant=variant, name=name,
                connections={node: {"connection": connection, "model": flow_model} for node in llm_nodes},
                stream=True,
            )
            flow_run_name = run.name
        else:
            flow_run_name = flow_run
        if eval_run is None:
            eval_run_name = pf.run(
                flow=EVAL_FLOW, data=data, run=flow_run_name, column_mapping={**EVAL_COLUMNS, "judge": judge},
                connections={"judge": {"connection": connection, "model": judge_model}}, name=f"{name}_eval",
                stream=True,
            ).name
        else:
            eval_run_name = eval_run
        metrics: dict[str, float | None] = dict.fromkeys(METRICS)
        metrics.update(pf.get_metrics(eval_run_name))
        metrics["lines_failed"] = float(failed_lines(pf, flow_run_name))
        # A line whose flow run failed has no output to validate: it counts as not schema-valid.
        evaluated = metrics["lines_evaluated"] or 0.0
        metrics["schema_valid_rate"] = (metrics["schema_valid_rate"] or 0.0) * evaluated / dataset.lines
        record = ExperimentRecord(
            name=name, created=datetime.now(UTC).isoformat(timespec="seconds"), config=config,
            flow=str(flow.relative_to(REPO)), variant=variant, flow_run=flow_run_name, eval_run=eval_run_name,
            model=flow_model, endpoint=_endpoint(pf, connection), prompt_sha256=prompt_hashes(steps, judge),
            dataset=dataset, judge_model=judge_model if judge else None, metrics=metrics,
            lines=line_results(pf, eval_run_name),
        )
        path = record.save(out)
        click.echo(f"{config}: {metrics['lines_failed']:.0f} failed lines; record {path}")
        if metrics["lines_failed"] == dataset.lines:
            failed_configs.append(config)
    if failed_configs:
        click.echo(f"every line failed for: {', '.join(failed_configs)}", err=True)
        sys.exit(1)


def _dag(flow: Path) -> dict:
    return yaml.safe_load((flow / "flow.dag.yaml").read_text())


def _llm_nodes(flow: Path) -> list[str]:
    """Nodes that take a connection: the ones `--connection` and `--model` apply to."""
    return [n["name"] for n in _dag(flow)["nodes"] if "connection" in n.get("inputs", {})]


def _dag_model(flow: Path) -> str:
    return next(n["inputs"]["model"] for n in _dag(flow)["nodes"] if "model" in n.get("inputs", {}))


def _endpoint(pf: PFClient, connection: str) -> str:
    """Where the model ran: the connection's base URL or Azure endpoint (never its key)."""
    found = pf.connections.get(connection)
    return getattr(found, "base_url", None) or getattr(found, "api_base", None) or connection


if __name__ == "__main__":
    main()
