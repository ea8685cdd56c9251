"""Run an experiment: the flow (one configuration, all of them, or the baseline) over a labelled dataset, then the
evaluation flow over that run, and record runs, variant, prompt hashes, model, dataset hash and metrics.

    python evaluations/run_experiment.py --data smoke --config all
    python evaluations/run_experiment.py --data full --config default --flow-run <existing run>   # evaluate only
    python evaluations/run_experiment.py --azure --data full --model <Azure OpenAI deployment>   # in Azure ML

With --azure both runs go to the Azure ML workspace that AZURE_SUBSCRIPTION_ID, AZURE_RESOURCE_GROUP and
AZUREML_WORKSPACE name, on a serverless compute session (Azure ML picks the instance type), with the workspace
connection --connection. The record is the same as a local one.

This is the Prompt flow side of the evaluation; the scoring, judge, records, gate and comparison are in
news_reader.evaluation and do not depend on Prompt flow.
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from pathlib import Path

import click
from promptflow.client import PFClient
from promptflow.entities import OpenAIConnection

from news_reader.evaluation.judge import JUDGE_PROMPT
from news_reader.evaluation.records import (
    DatasetRef,
    ExperimentRecord,
    LineResult,
    count_lines,
    dataset_ref,
    read_jsonl,
    sha256_file,
)
from news_reader.evaluation.reference import ReferenceRequestFailed, measure_reference_ms, relative_latency
from news_reader.evaluation.scoring import JudgedReason, LineScore, empty_answer, line_result, run_metrics
from news_reader.extraction.prompting import DEFAULT_VARIANT, PROMPTS_DIR, template_file
from news_reader.extraction.steps import STEPS, parse_variant, variant_id
from news_reader.flow_dag import llm_nodes, read_dag
from news_reader.flow_nodes import settings_for
from news_reader.settings import LLMSettings

REPO = Path(__file__).resolve().parents[1]
STEP_FLOW = REPO / "flows" / "news_reader"
SINGLE_FLOW = REPO / "flows" / "news_reader_single"
EVAL_FLOW = REPO / "evaluations" / "news_reader_eval"
BASELINE = "single_prompt"
WORKSPACE_VARIABLES = ("AZURE_SUBSCRIPTION_ID", "AZURE_RESOURCE_GROUP", "AZUREML_WORKSPACE")
# pfazure stops streaming a run that shows no new log for this long (600 s by default), and a new compute session
# can install the flow's requirements quietly for longer than that.
WORKSPACE_STREAM_TIMEOUT_S = 3600
EVAL_COLUMNS = {
    "article": "${data.article}",
    "title_reference": "${data.title_reference}",
    "summary_reference": "${data.summary_reference}",
    "expected_is_about_business": "${data.is_about_business}",
    "expected_companies": "${data.companies}",
    **{k: f"${{run.outputs.{k}}}" for k in ("title", "summary", "is_about_business", "business_info", "usage",
                                             "errors")},
}


def configurations(choice: str) -> list[str]:
    """`all` is the default, every non-default variant (one step changed at a time) and the baseline."""
    known = ["default", *(f"{step.name}={variant}" for step in STEPS.values() if step.name != BASELINE
                          for variant in step.variants[1:]), BASELINE]
    if choice == "all":
        return known
    if choice not in known:
        raise click.BadParameter(f"{choice!r}; choose one of: all, {', '.join(known)}", param_hint="--config")
    return [choice]


def flow_and_variant(config: str) -> tuple[Path, str | None, dict[str, str]]:
    """The flow folder, Prompt flow's variant id, and the prompt variant of each step the configuration uses."""
    if config == BASELINE:
        return SINGLE_FLOW, None, {BASELINE: DEFAULT_VARIANT}
    steps = {step: DEFAULT_VARIANT for step in STEPS if step != BASELINE}
    if config == "default":
        return STEP_FLOW, None, steps
    step, variant = parse_variant(config)
    return STEP_FLOW, variant_id(step, variant), {**steps, step: variant}


def workspace_client() -> PFClient:
    """Prompt flow in the Azure ML workspace named by WORKSPACE_VARIABLES, signed in with DefaultAzureCredential (in
    GitHub Actions: the Azure CLI session of azure/login)."""
    missing = [name for name in WORKSPACE_VARIABLES if not os.environ.get(name)]
    if missing:
        raise click.UsageError(f"--azure needs {', '.join(missing)} in the environment")
    from azure.identity import DefaultAzureCredential
    from promptflow.azure import PFClient as WorkspacePFClient

    return WorkspacePFClient(
        credential=DefaultAzureCredential(), subscription_id=os.environ["AZURE_SUBSCRIPTION_ID"],
        resource_group_name=os.environ["AZURE_RESOURCE_GROUP"], workspace_name=os.environ["AZUREML_WORKSPACE"],
    )


def prompt_hashes(pf: PFClient, flow_run: str, eval_run: str | None, steps: dict[str, str]) -> dict[str, str]:
    """sha256 of every template the runs used (from their snapshots): the system prompt, each step's variant, and
    the judge's when the evaluation ran it."""
    package = PROMPTS_DIR.parents[1]
    names = ["system.jinja2", *(template_file(step, variant) for step, variant in steps.items())]
    templates = {PROMPTS_DIR / name: flow_run for name in names}
    if eval_run is not None:
        templates[JUDGE_PROMPT] = eval_run
    hashes = {}
    for template, run in templates.items():
        # A workspace run's snapshot is the upload of the local files, made by this command moments before.
        snapshot = template if _in_workspace(pf) else (
            Path(pf.runs.get(run)._output_path) / "snapshot" / "news_reader" / template.relative_to(package))
        hashes[template.name] = sha256_file(snapshot if snapshot.is_file() else template)
    return hashes


def check_reuse(pf: PFClient, flow_run: str, eval_run: str | None, flow: Path, variant: str | None,
                dataset: DatasetRef, judge: bool) -> None:
    """Refuse to record existing runs under a description they do not match."""
    run = pf.runs.get(flow_run)
    problems = []
    if Path(run.flow).resolve() != flow.resolve():
        problems.append(f"{flow_run} ran {run.flow}, not {flow}")
    if (run.variant or None) != variant:
        problems.append(f"{flow_run} ran variant {run.variant or 'default'}, not {variant or 'default'}")
    if not Path(run.data).is_file() or sha256_file(Path(run.data)) != dataset.sha256:
        problems.append(f"{flow_run} ran over {run.data}, whose content is not {dataset.path}'s")
    if eval_run is not None:
        evaluation = pf.runs.get(eval_run)
        if getattr(evaluation.run, "name", evaluation.run) != flow_run:
            problems.append(f"{eval_run} evaluated {getattr(evaluation.run, 'name', evaluation.run)}, not {flow_run}")
        if str(evaluation.column_mapping.get("judge")).lower() != str(judge).lower():
            problems.append(f"{eval_run} ran with judge={evaluation.column_mapping.get('judge')}: "
                            "pass --judge or --no-judge to match")
    if problems:
        raise click.UsageError("; ".join(problems))


def score_run(pf: PFClient, eval_run: str | None, labels: list[dict]) -> tuple[dict, list[LineResult]]:
    """The record's metrics and per-article scores over every dataset line; lines the evaluation has no score for
    (their flow or evaluation failed) count as empty answers."""
    scored: dict[int, LineScore] = {}
    judged: list[JudgedReason] = []
    if eval_run is not None:
        details = pf.get_details(eval_run, all_results=True)
        # Local details carry the dataset line as an input; a workspace's are indexed by it.
        line_numbers = details.get("inputs.line_number", details.index)
        for line, scores, verdicts in zip(line_numbers, details["outputs.scores"],
                                          details.get("outputs.judged", [None] * len(details)), strict=True):
            if isinstance(scores, dict):
                scored[int(line)] = LineScore.model_validate(scores)
                judged += [JudgedReason.model_validate(v) for v in verdicts or [] if isinstance(v, dict)]
    unscored = {n: empty_answer(label, label["article"]) for n, label in enumerate(labels) if n not in scored}
    metrics = run_metrics(list(scored.values()), list(unscored.values()), judged)
    lines = [line_result(n, scored[n]) if n in scored else line_result(n, unscored[n], scored=False)
             for n in range(len(labels))]
    return metrics, lines


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
@click.option("--azure", is_flag=True,
              help=f"Run in the Azure ML workspace named by {', '.join(WORKSPACE_VARIABLES)}; needs --model.")
def main(data_name, config_choice, flow_run, eval_run, judge, connection, model, judge_model, out, azure) -> None:
    """Run the flow and the evaluation, and write one record per configuration."""
    data = Path(data_name) if data_name.endswith(".jsonl") else REPO / "data" / "eval" / f"{data_name}.jsonl"
    if not data.is_file():
        raise click.BadParameter(f"no dataset at {data}", param_hint="--data")
    configs = configurations(config_choice)
    if flow_run and len(configs) != 1:
        raise click.UsageError("--flow-run evaluates one configuration: name it with --config")
    if eval_run and not flow_run:
        raise click.UsageError("--eval-run needs the --flow-run it evaluated")
    if azure and not model:
        raise click.UsageError("--azure needs --model: the Azure OpenAI deployment the connection serves")
    if azure and flow_run:
        raise click.UsageError("--flow-run records local runs only: a workspace run's flow and data cannot be "
                               "checked against this checkout")
    pf = workspace_client() if azure else PFClient()
    stamp = datetime.now(UTC).strftime("%Y%m%d_%H%M%S")
    dataset = dataset_ref(data, REPO)
    flow_model = model or _dag_model(STEP_FLOW)
    judge_model = judge_model or flow_model
    failed_configs = []
    labels = read_jsonl(data)
    for config in configs:
        flow, variant, steps = flow_and_variant(config)
        name = f"{data.stem}_{config.replace('=', '_')}_{stamp}"
        references: list[int] = []
        if flow_run is None:
            reference = None if azure else _reference_settings(pf, connection, flow_model)
            before = _measure_reference(reference)
            flow_run_name = _run(
                pf, flow=flow, data=data, column_mapping={"article": "${data.article}"}, variant=variant, name=name,
                connections={node: {"connection": connection, "model": flow_model} for node in _llm_nodes(flow)},
            )
            after = _measure_reference(reference)
            references = before + after if before and after else []
        else:
            check_reuse(pf, flow_run, eval_run, flow, variant, dataset, judge)
            flow_run_name = flow_run
        eval_run_name = eval_run
        if eval_run_name is None and _completed_lines(pf, flow_run_name):
            eval_run_name = _run(
                pf, flow=EVAL_FLOW, data=data, run=flow_run_name, column_mapping={**EVAL_COLUMNS, "judge": judge},
                connections={"judge": {"connection": connection, "model": judge_model}}, name=f"{name}_eval",
            )
        metrics, lines = score_run(pf, eval_run_name, labels)
        metrics.update(relative_latency(metrics, references))
        record = ExperimentRecord(
            name=name, created=datetime.now(UTC).isoformat(timespec="seconds"), config=config,
            flow=str(flow.relative_to(REPO)), variant=variant, flow_run=flow_run_name, eval_run=eval_run_name or "",
            model=flow_model, endpoint=_endpoint(pf, connection),
            prompt_sha256=prompt_hashes(pf, flow_run_name, eval_run_name if judge else None, steps),
            dataset=dataset, judge_model=judge_model if judge else None, reference_ms=references, metrics=metrics,
            lines=lines,
        )
        path = record.save(out)
        click.echo(f"{config}: {metrics['lines_failed']:.0f} of {dataset.lines} lines failed; record {path}")
        if metrics["lines_failed"] == dataset.lines:
            failed_configs.append(config)
    if failed_configs:
        click.echo(f"every line failed for: {', '.join(failed_configs)}", err=True)
        sys.exit(1)


def _reference_settings(pf: PFClient, connection: str, model: str) -> LLMSettings | None:
    """Where the reference request goes: the flow's own server, through its OpenAI-compatible connection. None for
    other connections, whose latency is the deployment's to bound (evaluations/thresholds.yaml)."""
    found = pf.connections.get(connection, with_secrets=True)
    return settings_for(found, model) if isinstance(found, OpenAIConnection) else None


def _measure_reference(settings: LLMSettings | None) -> list[int]:
    """The reference request's times on the flow's server; a failure is reported and leaves the record without."""
    if settings is None:
        return []
    try:
        return measure_reference_ms(settings)
    except ReferenceRequestFailed as error:
        click.echo(f"warning: no reference time, so no relative latency: {error}", err=True)
        return []


def _in_workspace(pf: PFClient) -> bool:
    """Whether `pf` is promptflow.azure's client, the one with an Azure ML client."""
    return hasattr(pf, "ml_client")


def _run(pf: PFClient, **run) -> str:
    """Submit a batch run, stream its log until it ends, and return its name."""
    if not _in_workspace(pf):
        return pf.run(**run, stream=True).name
    name = pf.run(**run).name
    pf.runs.stream(name, timeout=WORKSPACE_STREAM_TIMEOUT_S)
    return name


def _completed_lines(pf: PFClient, flow_run: str) -> int:
    """Lines of the flow run with an output: an evaluation of a run without any would fail on its column mapping."""
    if _in_workspace(pf):
        outputs = pf.get_details(flow_run, all_results=True).filter(like="outputs.")
        return int(outputs.notna().any(axis=1).sum())
    outputs = Path(pf.runs.get(flow_run)._output_path) / "flow_outputs" / "output.jsonl"
    return count_lines(outputs) if outputs.is_file() else 0


def _llm_nodes(flow: Path) -> list[str]:
    """Nodes that take a connection: the ones `--connection` and `--model` apply to."""
    return [node["name"] for node in llm_nodes(read_dag(flow))]


def _dag_model(flow: Path) -> str:
    return llm_nodes(read_dag(flow))[0]["inputs"]["model"]


def _endpoint(pf: PFClient, connection: str) -> str:
    """Where the model ran: the connection's base URL or Azure endpoint (never its key)."""
    found = (pf.ml_client if _in_workspace(pf) else pf).connections.get(connection)
    return getattr(found, "base_url", None) or getattr(found, "api_base", None) or connection


if __name__ == "__main__":
    main()
