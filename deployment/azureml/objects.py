"""The endpoint, model, environment and deployment as azure-ai-ml objects: the YAML definitions beside this file,
completed with the release's settings and validated by azure-ai-ml's own loaders (offline, no credential)."""

from __future__ import annotations

import copy
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml
from azure.ai.ml import load_environment, load_model, load_online_deployment, load_online_endpoint
from azure.ai.ml.entities import Environment, ManagedOnlineDeployment, ManagedOnlineEndpoint, Model

from deployment.azureml import DEFINITIONS, REPO
from deployment.flow_package import stage_flow
from news_reader.flow_dag import FLOW_FILE, read_dag

FLOW_DIR = REPO / "flows" / "news_reader"
SLOTS = ("blue", "green")
# Shown as *** in printed definitions: CD logs are readable by everyone with access to the repository.
_MASKED_VARIABLES = {"APPLICATIONINSIGHTS_CONNECTION_STRING", "NEWS_READER_DATABASE_URL"}
# azure-ai-ml runs its checks while converting to the REST body, and the conversion may change the entity (the data
# collector drops its sampling_rate): validation converts a copy. The location is the workspace's; any value checks.
_ANY_LOCATION = "workspace-location"


@dataclass(frozen=True)
class Workspace:
    subscription_id: str
    resource_group: str
    name: str

    @property
    def id(self) -> str:
        return (f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
                f"/providers/Microsoft.MachineLearningServices/workspaces/{self.name}")

    def endpoint_id(self, endpoint: str) -> str:
        return f"{self.id}/onlineEndpoints/{endpoint}"


@dataclass(frozen=True)
class Serving:
    """What a deployment runs: the endpoint it belongs to and the Azure OpenAI deployment the flow calls."""

    endpoint: str
    openai_endpoint: str
    openai_deployment: str
    openai_api_version: str | None = None
    appinsights_connection_string: str | None = None
    # PostgreSQL for the analyses and feedback, shared by instances and kept across rollouts.
    database_url: str | None = None
    instance_count: int | None = None
    commit: str | None = None

    def environment_variables(self) -> dict[str, str]:
        """The container's settings on top of deployment.yaml's (see news_reader/settings.py)."""
        optional = {"NEWS_READER_LLM_API_VERSION": self.openai_api_version,
                    "APPLICATIONINSIGHTS_CONNECTION_STRING": self.appinsights_connection_string,
                    "NEWS_READER_DATABASE_URL": self.database_url}
        return {"NEWS_READER_LLM_BASE_URL": self.openai_endpoint, "NEWS_READER_LLM_MODEL": self.openai_deployment,
                **{name: value for name, value in optional.items() if value}}


@dataclass(frozen=True)
class Release:
    """Everything a rollout creates, built and validated before anything contacts Azure."""

    serving: Serving
    endpoint: ManagedOnlineEndpoint
    model: Model
    environment: Environment
    output_fields: frozenset[str]

    def deployment(self, slot: str) -> ManagedOnlineDeployment:
        """The deployment for `slot` (blue or green), validated."""
        overrides = {"name": slot, "endpoint_name": self.serving.endpoint, **_tag(self.serving.commit),
                     **{f"environment_variables.{name}": value
                        for name, value in self.serving.environment_variables().items()}}
        if self.serving.instance_count is not None:
            overrides["instance_count"] = self.serving.instance_count
        deployment = load_online_deployment(DEFINITIONS / "deployment.yaml", params_override=[overrides])
        deployment.model, deployment.environment = self.model, self.environment
        copy.deepcopy(deployment)._to_rest_object(location=_ANY_LOCATION)
        return deployment


@contextmanager
def staged_flow(openai_deployment: str) -> Iterator[Path]:
    """The flow made self-contained in a temporary folder, every LLM node calling `openai_deployment`."""
    with tempfile.TemporaryDirectory(prefix="news-reader-model-") as tmp:
        yield stage_flow(FLOW_DIR, Path(tmp) / FLOW_DIR.name, model=openai_deployment)


def build_release(serving: Serving, flow_dir: Path) -> Release:
    """Load every definition with `serving`'s settings and validate it; `flow_dir` is the staged flow."""
    release = Release(serving=serving, endpoint=load_endpoint(serving.endpoint), model=_load_model(flow_dir, serving),
                      environment=_load_environment(serving), output_fields=flow_outputs(flow_dir))
    for slot in SLOTS:
        release.deployment(slot)
    return release


def load_endpoint(name: str) -> ManagedOnlineEndpoint:
    endpoint = load_online_endpoint(DEFINITIONS / "endpoint.yaml", params_override=[{"name": name}])
    copy.deepcopy(endpoint)._to_rest_online_endpoint(location=_ANY_LOCATION)
    return endpoint


def flow_outputs(flow_dir: Path) -> frozenset[str]:
    """The flow's output names: the fields every answer of /score must carry."""
    return frozenset(read_dag(flow_dir)["outputs"])


def as_yaml(entity: ManagedOnlineEndpoint | ManagedOnlineDeployment | Model | Environment) -> str:
    """The entity as azure-ai-ml writes it, with secrets masked."""
    data = entity._to_dict()
    for name in _MASKED_VARIABLES & set(data.get("environment_variables") or {}):
        data["environment_variables"][name] = "***"
    return to_yaml(data)


def to_yaml(data: dict) -> str:
    return yaml.safe_dump(_plain(data), sort_keys=False, allow_unicode=True)


def _load_model(flow_dir: Path, serving: Serving) -> Model:
    if not (flow_dir / FLOW_FILE).is_file():
        raise FileNotFoundError(f"{flow_dir} holds no {FLOW_FILE}")
    model = load_model(DEFINITIONS / "model.yaml", params_override=[{"path": str(flow_dir), **_tag(serving.commit)}])
    copy.deepcopy(model)._to_rest_object()
    return model


def _load_environment(serving: Serving) -> Environment:
    environment = load_environment(DEFINITIONS / "environment.yaml", params_override=[_tag(serving.commit)])
    environment.validate()
    copy.deepcopy(environment)._to_rest_object()
    dockerfile = Path(environment.path) / environment.build.dockerfile_path
    if not dockerfile.is_file():
        raise FileNotFoundError(f"environment.yaml: {dockerfile} does not exist")
    return environment


def _tag(commit: str | None) -> dict[str, str]:
    return {"tags.git_commit": commit} if commit else {}


def _plain(value):
    """Nested OrderedDicts and tuples as plain dicts and lists, for safe_dump."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value
