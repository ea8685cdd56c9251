"""`python -m deployment.azureml`: create the endpoint, roll out a release blue/green, set up monitoring.

Every option can come from the environment variable shown in --help. `--dry-run` builds and validates every object
offline and prints the plan and the objects; it uses no credential and contacts nothing.
"""

from __future__ import annotations

import logging
import sys
from itertools import pairwise

import click
from azure.ai.ml.exceptions import MlException
from azure.core.exceptions import AzureError
from marshmallow import ValidationError

from deployment.azureml import REPO, monitoring
from deployment.azureml.ml_ops import MLClientOps, ml_client, monitor_client
from deployment.azureml.objects import (
    SLOTS,
    Serving,
    Workspace,
    as_yaml,
    build_release,
    load_endpoint,
    staged_flow,
    to_yaml,
)
from deployment.azureml.rollout import RolloutFailed, Strategy, live_slot, plan, roll_out

SAMPLE_ARTICLE = REPO / "flows" / "sample_article.txt"
# Raised by the loaders and our own checks when a definition is wrong.
_INVALID_DEFINITION = (ValidationError, MlException, ValueError, FileNotFoundError)
# azure-ai-ml announces each experimental class it builds (the data collector, the monitor) on the logger.
logging.getLogger("azure.ai.ml._utils._experimental").setLevel(logging.ERROR)
# msrest warns that the endpoint identity's read-only ids (filled in by Azure) are not sent, on every conversion.
logging.getLogger("msrest.serialization").setLevel(logging.ERROR)


def _workspace_options(command):
    options = [
        click.option("--subscription-id", envvar="AZURE_SUBSCRIPTION_ID", required=True, show_envvar=True),
        click.option("--resource-group", envvar="AZURE_RESOURCE_GROUP", required=True, show_envvar=True),
        click.option("--workspace", envvar="AZUREML_WORKSPACE", required=True, show_envvar=True,
                     help="Azure ML workspace name."),
        click.option("--endpoint", envvar="NEWS_READER_ENDPOINT", default="news-reader", show_default=True,
                     show_envvar=True, help="Online endpoint name (unique in the Azure region)."),
        click.option("--dry-run", is_flag=True, help="Build and validate everything offline, print it, stop."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _traffic_steps(ctx, param, value: str) -> tuple[int, ...]:
    try:
        steps = tuple(int(step) for step in value.split(","))
    except ValueError:
        raise click.BadParameter(f"{value!r}: expected percentages like 10,50,100") from None
    if steps[0] <= 0 or steps[-1] != 100 or any(a >= b for a, b in pairwise(steps)):
        raise click.BadParameter(f"{value!r}: increasing percentages above 0, ending with 100")
    return steps


@click.group()
def main() -> None:
    """News Reader on an Azure ML managed online endpoint."""


@main.command()
@_workspace_options
def endpoint(subscription_id, resource_group, workspace, endpoint, dry_run) -> None:
    """Create the endpoint if it does not exist, and print its identity for the Azure OpenAI role assignment."""
    definition = _valid(lambda: load_endpoint(endpoint))
    if dry_run:
        click.echo(f"Dry run: would create endpoint {endpoint} unless it exists.\n\n# endpoint\n{as_yaml(definition)}")
        return
    ops = MLClientOps(ml_client(Workspace(subscription_id, resource_group, workspace)))
    created = _on_azure(lambda: ops.get_endpoint(endpoint) or ops.create_endpoint(definition))
    principal = created.identity.principal_id
    click.echo(f"endpoint {endpoint}: scoring URI {created.scoring_uri}\nidentity (principal id): {principal}\n"
               f"grant it Azure OpenAI: az role assignment create --assignee-object-id {principal} "
               f"--assignee-principal-type ServicePrincipal --role 'Cognitive Services OpenAI User' "
               f"--scope <Azure OpenAI resource id>")


@main.command()
@_workspace_options
@click.option("--openai-endpoint", envvar="AZURE_OPENAI_ENDPOINT", required=True, show_envvar=True,
              help="Azure OpenAI resource endpoint, https://<resource>.openai.azure.com/.")
@click.option("--openai-deployment", envvar="AZURE_OPENAI_DEPLOYMENT", required=True, show_envvar=True,
              help="Azure OpenAI deployment every LLM node calls.")
@click.option("--openai-api-version", envvar="AZURE_OPENAI_API_VERSION", show_envvar=True,
              help="Azure OpenAI API version [default: the app's].")
@click.option("--appinsights-connection-string", envvar="NEWS_READER_APPINSIGHTS_CONNECTION_STRING",
              show_envvar=True, help="Application Insights for the container's traces [default: none].")
@click.option("--database-url", envvar="NEWS_READER_DATABASE_URL", show_envvar=True,
              help="PostgreSQL for analyses and feedback, postgresql+psycopg://... (a secret) [default: none: each "
                   "instance keeps its own SQLite file, lost at the next rollout].")
@click.option("--instance-count", envvar="NEWS_READER_INSTANCE_COUNT", type=click.IntRange(min=1), show_envvar=True,
              help="Instances per deployment [default: deployment.yaml's].")
@click.option("--traffic-steps", envvar="NEWS_READER_TRAFFIC_STEPS", default="10,50,100", show_default=True,
              show_envvar=True, callback=_traffic_steps, help="The new slot's traffic share after each step.")
@click.option("--step-wait", envvar="NEWS_READER_STEP_WAIT_S", type=click.FloatRange(min=0), default=60.0,
              show_default=True, show_envvar=True, help="Seconds of real traffic before each re-check.")
@click.option("--keep-previous", is_flag=True, help="Keep the old slot, with no traffic, instead of deleting it.")
@click.option("--commit", envvar="GITHUB_SHA", show_envvar=True, help="Git commit, tagged on what is registered.")
def rollout(subscription_id, resource_group, workspace, endpoint, dry_run, openai_endpoint, openai_deployment,
            openai_api_version, appinsights_connection_string, database_url, instance_count, traffic_steps,
            step_wait, keep_previous, commit) -> None:
    """Deploy the flow to the idle slot (blue or green), smoke-test it, shift traffic, roll back on failure."""
    serving = Serving(endpoint=endpoint, openai_endpoint=openai_endpoint, openai_deployment=openai_deployment,
                      openai_api_version=openai_api_version, instance_count=instance_count, commit=commit,
                      appinsights_connection_string=appinsights_connection_string, database_url=database_url)
    strategy = Strategy(traffic_steps=traffic_steps, step_wait_s=step_wait, keep_previous=keep_previous)
    with staged_flow(openai_deployment) as flow:
        release = _valid(lambda: build_release(serving, flow))
        if dry_run:
            click.echo(_dry_run_plan(endpoint, strategy))
            for title, entity in [("endpoint", release.endpoint), ("model", release.model),
                                  ("environment", release.environment),
                                  (f"deployment {SLOTS[0]} ({SLOTS[1]} differs in its name only)",
                                   release.deployment(SLOTS[0]))]:
                click.echo(f"# {title}\n{as_yaml(entity)}")
            return
        ops = MLClientOps(ml_client(Workspace(subscription_id, resource_group, workspace)))
        _on_azure(lambda: roll_out(ops, release, SAMPLE_ARTICLE.read_text(encoding="utf-8"), strategy,
                                   log=click.echo))


@main.command()
@_workspace_options
@click.option("--deployment", envvar="NEWS_READER_DEPLOYMENT", show_envvar=True,
              help="Deployment to monitor [default: the live one; blue in a dry run].")
@click.option("--openai-connection", envvar="AZUREML_OPENAI_CONNECTION", required=True, show_envvar=True,
              help="Workspace connection to Azure OpenAI that the quality judge uses.")
@click.option("--judge-deployment", envvar=["NEWS_READER_JUDGE_DEPLOYMENT", "AZURE_OPENAI_DEPLOYMENT"],
              required=True, show_envvar=True, help="Azure OpenAI deployment that judges quality (GPT-4 class).")
@click.option("--alert-email", "alert_emails", multiple=True, envvar="NEWS_READER_ALERT_EMAILS", show_envvar=True,
              help="Who gets the alerts (repeat; in the variable, separated by spaces).")
@click.option("--action-group-id", envvar="NEWS_READER_ACTION_GROUP_ID", show_envvar=True,
              help="Existing action group for the metric alerts, instead of one mailing --alert-email.")
def monitor(subscription_id, resource_group, workspace, endpoint, dry_run, deployment, openai_connection,
            judge_deployment, alert_emails, action_group_id) -> None:
    """Model monitor (generation quality, token statistics) and metric alerts (5xx, p95 latency) for the endpoint."""
    if not (alert_emails or action_group_id):
        raise click.UsageError("give --alert-email or --action-group-id: alerts need somebody to tell")
    target = Workspace(subscription_id, resource_group, workspace)
    deployment = deployment or (SLOTS[0] if dry_run else _live_deployment(target, endpoint))
    setup = _valid(lambda: monitoring.monitoring_setup(target, endpoint, deployment, openai_connection,
                                                       judge_deployment, alert_emails, action_group_id))
    if dry_run:
        click.echo(_monitoring_dry_run(setup, endpoint, deployment))
        return
    _on_azure(lambda: monitoring.apply(setup, ml_client(target).schedules, monitor_client(target), resource_group))
    click.echo(f"monitoring of {endpoint}:{deployment} created or updated: {setup.schedule.name}, "
               + ", ".join(setup.alerts))


def _live_deployment(workspace: Workspace, endpoint: str) -> str:
    found = _on_azure(lambda: MLClientOps(ml_client(workspace)).get_endpoint(endpoint))
    live = live_slot(found.traffic) if found else None
    if live is None:
        _fail(f"endpoint {endpoint} has no live deployment to monitor; run the rollout first")
    return live


def _monitoring_dry_run(setup: monitoring.MonitoringSetup, endpoint: str, deployment: str) -> str:
    resources = [("metric alert", name, rule) for name, rule in setup.alerts.items()]
    if setup.action_group is not None:
        resources.insert(0, ("action group", setup.action_group_name, setup.action_group))
    lines = ["Dry run: built and validated offline, nothing contacted Azure. Would create or update:",
             f"  - model monitor {setup.schedule.name} on {endpoint}:{deployment}",
             *(f"  - {kind} {name}" for kind, name, _ in resources),
             "", f"# model monitor\n{to_yaml(setup.schedule._to_dict())}"]
    lines += [f"# {kind} {name} (Azure Monitor request body)\n{to_yaml(resource.serialize())}"
              for kind, name, resource in resources]
    return "\n".join(lines)


def _dry_run_plan(endpoint: str, strategy: Strategy) -> str:
    first = "\n".join(f"    - {line}" for line in [f"create endpoint {endpoint}", *plan(None, strategy)])
    later = "\n".join(f"    - {line}" for line in plan(SLOTS[0], strategy))
    return (f"Dry run: every object below was built and validated offline; nothing contacted Azure.\n\n"
            f"Plan for endpoint {endpoint}:\n  when it does not exist yet, or nothing takes traffic:\n{first}\n"
            f"  when {SLOTS[0]} is live ({SLOTS[1]} alike, slots swapped):\n{later}\n")


def _valid(build):
    """`build()`, or exit with the definition error on one line."""
    try:
        return build()
    except _INVALID_DEFINITION as error:
        _fail(f"invalid definition: {' '.join(str(error).split())}")


def _on_azure(action):
    """`action()`, or exit with what went wrong in Azure (a failed rollout, sign-in, permissions) on one line."""
    try:
        return action()
    except (RolloutFailed, AzureError) as error:
        _fail(" ".join(str(error).split()))


def _fail(message: str) -> None:
    click.echo(f"deployment.azureml: {message}", err=True)
    sys.exit(1)


if __name__ == "__main__":
    main()
