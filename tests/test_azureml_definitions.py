"""The Azure ML definitions: every YAML loads with azure-ai-ml's own loader, a wrong field fails it, and the SDK
objects of a release build and serialise offline with the settings the serving container expects."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from azure.ai.ml import load_environment, load_model, load_online_deployment, load_online_endpoint
from azure.ai.ml.entities import Environment, ManagedOnlineDeployment, ManagedOnlineEndpoint, Model, MonitorSchedule
from azure.ai.ml.entities._load_functions import load_schedule
from marshmallow import ValidationError

from deployment.azureml import DEFINITIONS, REPO, objects
from deployment.azureml.objects import Serving, as_yaml, build_release, staged_flow
from news_reader.settings import LLMSettings

SERVING = Serving(endpoint="news-reader-dev", openai_endpoint="https://example.openai.azure.com/",
                  openai_deployment="gpt-4o-mini", commit="0123abc",
                  appinsights_connection_string="InstrumentationKey=00000000-0000-0000-0000-000000000000",
                  database_url="postgresql+psycopg://news:pw@db.example/news")
LOADERS = {"endpoint.yaml": (load_online_endpoint, ManagedOnlineEndpoint),
           "deployment.yaml": (load_online_deployment, ManagedOnlineDeployment),
           "model.yaml": (load_model, Model),
           "environment.yaml": (load_environment, Environment),
           "monitor.yaml": (load_schedule, MonitorSchedule)}


@pytest.fixture(scope="module")
def release():
    with staged_flow(SERVING.openai_deployment) as flow:
        yield build_release(SERVING, flow)


def test_every_yaml_beside_the_code_has_a_loader_test():
    assert {path.name for path in DEFINITIONS.glob("*.yaml")} == set(LOADERS)


@pytest.mark.parametrize("name", sorted(LOADERS))
def test_each_definition_loads_with_azure_ai_ml_loader(name):
    loader, entity_type = LOADERS[name]
    assert isinstance(loader(DEFINITIONS / name), entity_type)


def _set(path: str, value):
    def mutate(data: dict) -> None:
        *parents, last = path.split(".")
        for key in parents:
            data = data[key]
        data[last] = value
    return mutate


@pytest.mark.parametrize(("name", "mutation", "error"), [
    ("deployment.yaml", _set("instance_cuont", 1), "Unknown field"),
    ("deployment.yaml", _set("instance_count", "two"), "Not a valid integer"),
    ("deployment.yaml", _set("request_settings.request_timeout_ms", "three minutes"), "Not a valid integer"),
    ("deployment.yaml", _set("readiness_probe.inital_delay", 20), "Unknown field"),
    ("deployment.yaml", _set("data_collector.collections.model_inputs.enabled", "yes"), "not in set"),
    ("deployment.yaml", _set("data_collector.sampling_rate", 1.5), "Sampling rate"),
    ("endpoint.yaml", _set("auth_mode", "anonymous"), "not in set"),
    ("endpoint.yaml", _set("name", "news_reader!"), "does not match expected pattern"),
    ("model.yaml", _set("type", "flow"), "not in set"),
    ("model.yaml", _set("propertys", {}), "Unknown field"),
    ("environment.yaml", _set("inference_config.scoring_route.port", "http"), "Not a valid integer"),
    ("environment.yaml", _set("inference_config.readiness_route", None), "readiness_route"),
])
def test_a_wrong_field_makes_the_loader_fail(tmp_path, name, mutation, error):
    data = yaml.safe_load((DEFINITIONS / name).read_text(encoding="utf-8"))
    mutation(data)
    (tmp_path / name).write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(ValidationError, match=error):
        LOADERS[name][0](tmp_path / name)


def test_the_model_is_the_staged_flow_registered_as_a_prompt_flow(release):
    flow = Path(release.model.path)
    dag = yaml.safe_load((flow / "flow.dag.yaml").read_text(encoding="utf-8"))
    assert "additional_includes" not in dag and (flow / "news_reader" / "extraction" / "pipeline.py").is_file()
    assert {node["inputs"]["model"] for node in dag["nodes"] if "model" in node.get("inputs", {})} == {"gpt-4o-mini"}
    assert release.model.properties["azureml.promptflow.source_flow_id"] == "news_reader"
    assert release.model.tags["git_commit"] == "0123abc" and release.model.version is None  # next free version


def test_the_environment_builds_the_serving_dockerfile_from_the_repository_root(release):
    environment = release.environment
    assert Path(environment.path) == REPO and environment.build.dockerfile_path == "deployment/Dockerfile"
    routes = environment.inference_config
    assert {routes.liveness_route.path, routes.readiness_route.path} == {"/health"}
    assert routes.scoring_route.path == "/score"
    assert {route.port for route in (routes.liveness_route, routes.readiness_route, routes.scoring_route)} == {8080}


def test_a_missing_dockerfile_fails_before_anything_is_uploaded(tmp_path, monkeypatch):
    for definition in DEFINITIONS.glob("*.yaml"):
        shutil.copy(definition, tmp_path)
    environment = yaml.safe_load((tmp_path / "environment.yaml").read_text(encoding="utf-8"))
    environment["build"] = {"path": str(REPO), "dockerfile_path": "deployment/Dockerfile.missing"}
    (tmp_path / "environment.yaml").write_text(yaml.safe_dump(environment), encoding="utf-8")
    monkeypatch.setattr(objects, "DEFINITIONS", tmp_path)
    with staged_flow("gpt-4o-mini") as flow, pytest.raises(FileNotFoundError, match="Dockerfile.missing"):
        build_release(SERVING, flow)


@pytest.mark.parametrize("slot", objects.SLOTS)
def test_a_deployment_carries_the_slot_model_environment_and_azure_openai_settings(release, slot):
    deployment = release.deployment(slot)
    assert (deployment.name, deployment.endpoint_name) == (slot, "news-reader-dev")
    assert deployment.model is release.model and deployment.environment is release.environment
    assert deployment.environment_variables == {
        "NEWS_READER_SERVING_THREADS": "6", "NEWS_READER_SERVING_COLLECT_DATA": "true", "PF_DISABLE_TRACING": "false",
        "NEWS_READER_LLM_PROVIDER": "azure",
        "NEWS_READER_LLM_AZURE_AD_AUTH": "true", "NEWS_READER_LLM_TIMEOUT_S": "60", "NEWS_READER_LLM_MAX_RETRIES": "1",
        "NEWS_READER_LLM_MAX_RETRY_WAIT_S": "20", "NEWS_READER_LLM_DIRECTION_CALIBRATION": "",
        "NEWS_READER_LLM_BASE_URL": "https://example.openai.azure.com/", "NEWS_READER_LLM_MODEL": "gpt-4o-mini",
        "APPLICATIONINSIGHTS_CONNECTION_STRING": SERVING.appinsights_connection_string,
        "NEWS_READER_DATABASE_URL": SERVING.database_url}
    assert deployment.tags["git_commit"] == "0123abc"


def test_request_settings_allow_slow_llm_calls_within_the_platform_limit(release):
    settings = release.deployment("blue").request_settings
    assert settings.request_timeout_ms == 180_000  # the managed endpoint maximum
    # One LLM call, every retry and the longest waits between them fit inside one request.
    llm = LLMSettings(**{name.removeprefix("NEWS_READER_LLM_").lower(): value
                         for name, value in release.deployment("blue").environment_variables.items()
                         if name.startswith("NEWS_READER_LLM_")})
    budget_s = llm.timeout_s * (llm.max_retries + 1) + llm.max_retry_wait_s * llm.max_retries
    assert budget_s * 1000 < settings.request_timeout_ms
    assert settings.max_concurrent_requests_per_instance >= 1


def test_the_server_has_threads_left_for_the_probes_when_all_requests_are_busy(release):
    deployment = release.deployment("blue")
    threads = int(deployment.environment_variables["NEWS_READER_SERVING_THREADS"])
    assert threads > deployment.request_settings.max_concurrent_requests_per_instance


def test_probes_wait_for_the_flow_executor_to_start(release):
    deployment = release.deployment("blue")
    readiness, liveness = deployment.readiness_probe, deployment.liveness_probe
    assert readiness.initial_delay >= 20  # startup takes 10-20 s
    assert liveness.initial_delay + liveness.period * liveness.failure_threshold > readiness.initial_delay + 60


def test_inputs_outputs_and_traces_are_collected_with_app_insights_on(release):
    deployment = release.deployment("green")
    assert deployment.app_insights_enabled is True
    collections = deployment.data_collector.collections
    assert {name for name, collection in collections.items() if collection.enabled == "true"} == {
        "model_inputs", "model_outputs", "app_traces"}


def test_a_validated_deployment_still_serialises_to_the_rest_body(release):
    body = release.deployment("blue")._to_rest_object(location="westeurope").serialize()["properties"]
    assert body["instanceType"] == "Standard_DS3_v2" and body["appInsightsEnabled"] is True
    assert body["requestSettings"]["requestTimeout"] == "PT3M"
    assert body["readinessProbe"]["initialDelay"] == "PT20S"
    assert body["dataCollector"]["collections"]["model_outputs"] == {"dataCollectionMode": "enabled",
                                                                      "samplingRate": 1.0}


def test_the_endpoint_uses_key_auth_and_a_system_assigned_identity(release):
    body = release.endpoint._to_rest_online_endpoint(location="westeurope").serialize()
    assert body["properties"]["authMode"] == "Key" and body["identity"]["type"] == "SystemAssigned"
    assert release.endpoint.name == "news-reader-dev"


def test_an_instance_count_overrides_the_definition():
    with staged_flow("gpt-4o-mini") as flow:
        release = build_release(Serving(**{**SERVING.__dict__, "instance_count": 3}), flow)
        assert release.deployment("blue").instance_count == 3


def test_the_answer_fields_are_the_flow_outputs(release):
    assert release.output_fields == {"title", "summary", "is_about_business", "business_info", "trace_id", "usage",
                                     "errors"}


def test_printed_definitions_hide_the_app_insights_connection_string_and_the_database_url(release):
    printed = as_yaml(release.deployment("blue"))
    assert "InstrumentationKey" not in printed and "APPLICATIONINSIGHTS_CONNECTION_STRING: '***'" in printed
    assert "pw@db.example" not in printed and "NEWS_READER_DATABASE_URL: '***'" in printed
    assert release.deployment("blue").environment_variables["APPLICATIONINSIGHTS_CONNECTION_STRING"].startswith(
        "InstrumentationKey")
