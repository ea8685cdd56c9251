"""The Azure side: azure-ai-ml's MLClient as the rollout's `EndpointOps`, and the Azure Monitor client, both signed
in with DefaultAzureCredential (in GitHub Actions, the OIDC login of azure/login; locally, `az login`)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from azure.ai.ml import MLClient
from azure.ai.ml.entities import ManagedOnlineDeployment, ManagedOnlineEndpoint
from azure.core.exceptions import ResourceNotFoundError
from azure.identity import DefaultAzureCredential
from azure.mgmt.monitor import MonitorManagementClient

from deployment.azureml.objects import Workspace


def ml_client(workspace: Workspace) -> MLClient:
    return MLClient(DefaultAzureCredential(), workspace.subscription_id, workspace.resource_group, workspace.name)


def monitor_client(workspace: Workspace) -> MonitorManagementClient:
    return MonitorManagementClient(DefaultAzureCredential(), workspace.subscription_id)


class MLClientOps:
    """`rollout.EndpointOps` on a workspace; every call waits for the long-running operation to finish."""

    def __init__(self, client: MLClient):
        self._client = client

    def get_endpoint(self, name: str) -> ManagedOnlineEndpoint | None:
        try:
            return self._client.online_endpoints.get(name)
        except ResourceNotFoundError:
            return None

    def create_endpoint(self, endpoint: ManagedOnlineEndpoint) -> ManagedOnlineEndpoint:
        return self._client.online_endpoints.begin_create_or_update(endpoint).result()

    def create_or_update_deployment(self, deployment: ManagedOnlineDeployment) -> None:
        self._client.online_deployments.begin_create_or_update(deployment).result()

    def set_traffic(self, endpoint: str, traffic: dict[str, int]) -> None:
        current = self._client.online_endpoints.get(endpoint)
        current.traffic = traffic
        self._client.online_endpoints.begin_create_or_update(current).result()

    def invoke(self, endpoint: str, deployment: str, payload: dict) -> str:
        with tempfile.TemporaryDirectory(prefix="news-reader-request-") as tmp:  # invoke reads the body from a file
            request = Path(tmp) / "request.json"
            request.write_text(json.dumps(payload), encoding="utf-8")
            return self._client.online_endpoints.invoke(endpoint_name=endpoint, deployment_name=deployment,
                                                        request_file=str(request))

    def delete_deployment(self, endpoint: str, deployment: str) -> None:
        self._client.online_deployments.begin_delete(name=deployment, endpoint_name=endpoint).result()
