"""`python -m deployment.azureml`: create the endpoint, roll out a release blue/green, set up monitoring.

Every option can come from the environment variable shown in --help; News Reader's own (NEWS_READER_*) are read
through news_reader/settings.py, once per command. `--dry-run` builds and validates every object offline and prints
the plan and the objects; it uses no credential and contacts nothing.
"""

from __future__ import annotations

import logging
import os
import sys
from itertools import pairwise

import click
import pydantic
from azure.ai.ml.exceptions import MlException
from azure.core.exceptions import AzureError
from marshmallow import ValidationError
from pydantic_settings import BaseSettings

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
from news_reader.settings import AzureMLSettings, StoreSettings, env_name, setting_problems

SAMPLE_ARTICLE = REPO / "flows" / "sample_article.txt"
# Raised by the loaders and our own checks when a definition is wrong.
_INVALID_DEFINITION = (ValidationError, MlException, ValueError, FileNotFoundError)
# azure-ai-ml announces each experimental class it builds (the data collector, the monitor) on the logger.
logging.getLogger("azure.ai.ml._utils._experimental").setLevel(logging.ERROR)
# msrest warns that the endpoint identity's read-only ids (filled in by Azure) are not sent, on every conversion.
logging.getLogger("msrest.serialization").setLevel(logging.ERROR)


class _Setting(click.Option):
    """An option whose variable is the settings field `field` of `settings`, read through that class once per
    command rather than by click; --help still shows it. `fallback`: other tools' variables, for when it is unset."""

    def __init__(self, *args, field: str, settings: type[BaseSettings] = AzureMLSettings,
                 fallback: tuple[str, ...] = (), **kwargs):
        self.settings, self.field, self.fallback = settings, field, fallback
        if (default := settings.model_fields[field].default) is not None:  # an explicit None would satisfy required
            kwargs.setdefault("default", default)
        super().__init__(*args, envvar=[env_name(settings, field), *fallback], show_envvar=True, **kwargs)

    def value_from_envvar(self, ctx: click.Context):
        settings = _settings(ctx, self.settings)
        if self.field in settings.model_fields_set:
            return getattr(settings, self.field)
        return next((os.environ[name] for name in self.fallback if os.environ.get(name)), None)


def _settings(ctx: click.Context, cls: type[BaseSettings]) -> BaseSettings:
    """`cls` from the environment, read once per command; a bad value is a usage error naming its variable."""
    read = ctx.meta.setdefault("news_reader.settings", {})
    if cls not in read:
        try:
            read[cls] = cls()
        except pydantic.ValidationError as error:
            raise click.UsageError(f"invalid setting: {setting_problems(cls, error)}") from None
    return read[cls]


def _workspace_options(command):
    options = [
        click.option("--subscription-id", envvar="AZURE_SUBSCRIPTION_ID", required=True, show_envvar=True),
        click.option("--resource-group", envvar="AZURE_RESOURCE_GROUP", required=True, show_envvar=True),
        click.option("--workspace", envvar="AZUREML_WORKSPACE", required=True, show_envvar=True,
                     help="Azure ML workspace name."),
        click.option("--endpoint", cls=_Setting, field="endpoint", show_default=True,
                     help="Online endpoint name (unique in the Azure region)."),
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
@click.option("--appinsights-connection-string", cls=_Setting, field="appinsights_connection_string",
              help="Application Insights for the container's traces [default: none].")
# The app's own database setting, passed on to the deployment; unset here means none (not the app's local SQLite).
@click.option("--database-url", cls=_Setting, settings=StoreSettings, field="url", default=None,
              help="PostgreSQL for analyses and feedback, postgresql+psycopg://... (a secret) [default: none: each "
                   "instance keeps its own SQLite file, lost at the next rollout].")
@click.option("--instance-count", cls=_Setting, field="instance_count", type=click.IntRange(min=1),
              help="Instances per deployment [default: deployment.yaml's].")
@click.option("--traffic-steps", cls=_Setting, field="traffic_steps", show_default=True, callback=_traffic_steps,
              help="The new slot's traffic share after each step.")
@click.option("--step-wait", cls=_Setting, field="step_wait_s", type=click.FloatRange(min=0), show_default=True,
              help="Seconds of real traffic before each re-check.")
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
@click.option("--deployment", cls=_Setting, field="deployment",
              help="Deployment to monitor [default: the live one; blue in a dry run].")
@click.option("--openai-connection", envvar="AZUREML_OPENAI_CONNECTION", required=True, show_envvar=True,
              help="Workspace connection to Azure OpenAI that the quality judge uses.")
@click.option("--judge-deployment", cls=_Setting, field="judge_deployment", fallback=("AZURE_OPENAI_DEPLOYMENT",),
              required=True, help="Azure OpenAI deployment that judges quality (GPT-4 class).")
@click.option("--alert-email", "alert_emails", cls=_Setting, field="alert_emails", multiple=True,
              help="Who gets the alerts (repeat; in the variable, separated by spaces).")
@click.option("--action-group-id", cls=_Setting, field="action_group_id",
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
