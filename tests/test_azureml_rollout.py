"""Blue/green rollout, driven by a test double of the endpoint operations, and the CLI's dry run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from azure.ai.ml.entities import ManagedOnlineEndpoint
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError
from click.testing import CliRunner

from deployment.azureml import __main__ as cli
from deployment.azureml.ml_ops import MLClientOps
from deployment.azureml.objects import Serving, build_release, staged_flow
from deployment.azureml.rollout import RolloutFailed, Strategy, idle_slot, live_slot, roll_out, smoke_test

ARTICLE = "Acme profits soar\n\nAcme Corp said its profits rose by 40%."
ANSWER = {"title": "Acme profits soar", "summary": "Acme's profits rose.", "is_about_business": True,
          "business_info": [], "trace_id": "130c891b54d748568d9506cbc5cf77ae", "usage": [], "errors": []}
STRATEGY = Strategy(traffic_steps=(10, 50, 100), step_wait_s=30)
AZURE = ["--subscription-id", "00000000-0000-0000-0000-000000000000", "--resource-group", "rg-news-reader",
         "--workspace", "mlw-news-reader"]


class FakeOps:
    """Records every call; answers the smoke test with ANSWER unless told otherwise."""

    def __init__(self, traffic: dict[str, int] | None = None, answers=(), fail_deployment=False,
                 fail_traffic_call: int | None = None):
        self.endpoint = None if traffic is None else ManagedOnlineEndpoint(name="news-reader-dev", traffic=traffic)
        self.answers = list(answers)
        self.fail_deployment, self.fail_traffic_call = fail_deployment, fail_traffic_call
        self.calls: list[tuple] = []

    def get_endpoint(self, name):
        return self.endpoint

    def create_endpoint(self, endpoint):
        self.calls.append(("create endpoint", endpoint.name))
        self.endpoint = endpoint
        return endpoint

    def create_or_update_deployment(self, deployment):
        self.calls.append(("deploy", deployment.name))
        if self.fail_deployment:
            raise HttpResponseError("not enough quota for Standard_DS3_v2")

    def set_traffic(self, endpoint, traffic):
        self.calls.append(("traffic", traffic))
        if sum(call[0] == "traffic" for call in self.calls) == self.fail_traffic_call:
            raise HttpResponseError("endpoint update conflict")

    def invoke(self, endpoint, deployment, payload):
        self.calls.append(("invoke", deployment, payload["article"][:4]))
        answer = self.answers.pop(0) if self.answers else ANSWER
        if isinstance(answer, Exception):
            raise answer
        return json.dumps(answer)

    def delete_deployment(self, endpoint, deployment):
        self.calls.append(("delete", deployment))


@pytest.fixture(scope="module")
def release():
    serving = Serving(endpoint="news-reader-dev", openai_endpoint="https://example.openai.azure.com/",
                      openai_deployment="gpt-4o-mini")
    with staged_flow(serving.openai_deployment) as flow:
        yield build_release(serving, flow)


def run(ops: FakeOps, release, strategy: Strategy = STRATEGY) -> tuple[str, list[float]]:
    waits: list[float] = []
    return roll_out(ops, release, ARTICLE, strategy, log=lambda line: None, sleep=waits.append), waits


def test_first_deployment_creates_the_endpoint_then_blue_then_gives_it_all_traffic(release):
    ops = FakeOps(traffic=None)
    live, waits = run(ops, release)
    assert live == "blue" and waits == []
    assert ops.calls == [("create endpoint", "news-reader-dev"), ("deploy", "blue"), ("invoke", "blue", "Acme"),
                         ("traffic", {"blue": 100})]


def test_blue_to_green_shifts_traffic_in_steps_checking_green_after_each_then_deletes_blue(release):
    ops = FakeOps(traffic={"blue": 100})
    live, waits = run(ops, release)
    assert live == "green" and waits == [30, 30, 30]
    assert ops.calls == [("deploy", "green"), ("invoke", "green", "Acme"),
                         ("traffic", {"green": 10, "blue": 90}), ("invoke", "green", "Acme"),
                         ("traffic", {"green": 50, "blue": 50}), ("invoke", "green", "Acme"),
                         ("traffic", {"green": 100, "blue": 0}), ("invoke", "green", "Acme"),
                         ("delete", "blue")]


def test_green_live_deploys_to_blue(release):
    ops = FakeOps(traffic={"blue": 0, "green": 100})
    assert run(ops, release, Strategy(traffic_steps=(100,), step_wait_s=0))[0] == "blue"
    assert ops.calls[0] == ("deploy", "blue") and ops.calls[-1] == ("delete", "green")


@pytest.mark.parametrize("traffic", [{"blue": 50, "green": 50}, {"green": 50, "blue": 50}, {"blue": 10, "green": 90}])
def test_split_traffic_from_an_interrupted_rollout_is_refused_untouched(release, traffic):
    ops = FakeOps(traffic=traffic)
    with pytest.raises(RolloutFailed, match="is split .*blue .*green .*Give one slot all traffic"):
        run(ops, release)
    assert ops.calls == []


def test_keep_previous_leaves_the_old_slot_in_place(release):
    ops = FakeOps(traffic={"blue": 100})
    run(ops, release, Strategy(keep_previous=True, step_wait_s=0))
    assert not [call for call in ops.calls if call[0] == "delete"]


def test_failed_smoke_test_rolls_back_and_keeps_the_new_slot_for_inspection(release):
    ops = FakeOps(traffic={"blue": 100}, answers=[{**ANSWER, "trace_id": None}])
    with pytest.raises(RolloutFailed, match="rolled back: blue takes all traffic") as failure:
        run(ops, release)
    assert "trace_id None" in str(failure.value) and "get-logs -e news-reader-dev -n green" in str(failure.value)
    assert ops.calls == [("deploy", "green"), ("invoke", "green", "Acme"), ("traffic", {"blue": 100, "green": 0})]


def test_an_answer_missing_an_output_field_fails_the_smoke_test(release):
    answer = {key: value for key, value in ANSWER.items() if key != "business_info"}
    with pytest.raises(RolloutFailed, match="lacks business_info"):
        smoke_test(FakeOps(answers=[answer]), "news-reader-dev", "green", ARTICLE, release.output_fields)


def test_an_error_answer_fails_the_smoke_test(release):
    ops = FakeOps(traffic={"blue": 100}, answers=[HttpResponseError("(503) upstream connect error")])
    with pytest.raises(RolloutFailed, match="smoke test of green failed: .*503"):
        run(ops, release)
    assert ops.calls[-1] == ("traffic", {"blue": 100, "green": 0})


def test_a_smoke_test_failing_mid_shift_rolls_back(release):
    ops = FakeOps(traffic={"blue": 100}, answers=[ANSWER, ANSWER, {"error": "upstream timeout"}])
    with pytest.raises(RolloutFailed, match="rolled back"):
        run(ops, release)
    traffic = [call[1] for call in ops.calls if call[0] == "traffic"]
    assert traffic == [{"green": 10, "blue": 90}, {"green": 50, "blue": 50}, {"blue": 100, "green": 0}]


def test_a_traffic_update_failing_mid_shift_rolls_back(release):
    ops = FakeOps(traffic={"blue": 100}, fail_traffic_call=2)
    with pytest.raises(RolloutFailed, match="endpoint update conflict; rolled back"):
        run(ops, release)
    assert ops.calls[-1] == ("traffic", {"blue": 100, "green": 0})
    assert ("delete", "blue") not in ops.calls


def test_a_failed_rollback_says_how_to_restore_the_traffic_by_hand(release):
    ops = FakeOps(traffic={"blue": 100}, answers=[ANSWER, {"error": "boom"}], fail_traffic_call=2)
    with pytest.raises(RolloutFailed, match="ROLLBACK FAILED .* --traffic 'blue=100 green=0'"):
        run(ops, release)


def test_a_failed_deployment_leaves_the_traffic_untouched(release):
    ops = FakeOps(traffic={"blue": 100}, fail_deployment=True)
    with pytest.raises(RolloutFailed, match="deployment green failed, traffic unchanged: not enough quota"):
        run(ops, release)
    assert ops.calls == [("deploy", "green")]


def test_a_first_deployment_failing_its_smoke_test_gets_no_traffic(release):
    ops = FakeOps(traffic=None, answers=[{"error": "401 from Azure OpenAI"}])
    with pytest.raises(RolloutFailed, match="nothing was live, blue has no traffic"):
        run(ops, release)
    assert not [call for call in ops.calls if call[0] == "traffic"]


def test_a_failed_delete_of_the_old_slot_does_not_fail_the_rollout(release):
    class StickyOps(FakeOps):
        def delete_deployment(self, endpoint, deployment):
            raise HttpResponseError("deployment is busy")

    logged: list[str] = []
    live = roll_out(StickyOps(traffic={"blue": 100}), release, ARTICLE, Strategy(step_wait_s=0), log=logged.append,
                    sleep=lambda seconds: None)
    assert live == "green" and "could not delete blue (deployment is busy)" in logged[-1]


@pytest.mark.parametrize(("traffic", "live"), [({}, None), ({"blue": 0}, None), ({"blue": 100}, "blue"),
                                               ({"blue": 10, "green": 90}, "green")])
def test_the_live_slot_takes_the_most_traffic(traffic, live):
    assert live_slot(traffic) == live


def test_the_idle_slot_is_the_other_one():
    assert (idle_slot(None), idle_slot("blue"), idle_slot("green")) == ("blue", "green", "blue")


def test_dry_run_builds_everything_offline_and_prints_the_plan_and_objects(monkeypatch):
    monkeypatch.setattr(cli, "ml_client", lambda workspace: pytest.fail("a dry run must not reach Azure"))
    result = CliRunner().invoke(cli.main, ["rollout", "--dry-run", *AZURE, "--endpoint", "news-reader-dev",
                                           "--openai-endpoint", "https://example.openai.azure.com/",
                                           "--openai-deployment", "gpt-4o-mini", "--commit", "0123abc"])
    assert result.exit_code == 0, result.output
    assert "nothing contacted Azure" in result.output
    assert "green 10% / blue 90%, green 50% / blue 50%, green 100% / blue 0%" in result.output
    for heading in ("# endpoint", "# model", "# environment", "# deployment blue"):
        assert heading in result.output
    assert "request_timeout_ms: 180000" in result.output and "NEWS_READER_LLM_MODEL: gpt-4o-mini" in result.output


def test_dry_run_reports_an_invalid_definition_on_one_line():
    result = CliRunner().invoke(cli.main, ["rollout", "--dry-run", *AZURE, "--endpoint", "news_reader!",
                                           "--openai-endpoint", "https://example.openai.azure.com/",
                                           "--openai-deployment", "gpt-4o-mini"])
    assert result.exit_code == 1
    assert result.output.startswith("deployment.azureml: invalid definition:") and "name" in result.output


@pytest.mark.parametrize("steps", ["10,50", "50,10,100", "0,100", "ten,100"])
def test_traffic_steps_must_rise_to_100(steps):
    result = CliRunner().invoke(cli.main, ["rollout", "--dry-run", *AZURE, "--traffic-steps", steps,
                                           "--openai-endpoint", "https://example.openai.azure.com/",
                                           "--openai-deployment", "gpt-4o-mini"])
    assert result.exit_code == 2 and "--traffic-steps" in result.output


def test_a_failed_rollout_exits_non_zero_with_the_reason(monkeypatch):
    ops = FakeOps(traffic={"blue": 100}, answers=[{"error": "boom"}])
    monkeypatch.setattr(cli, "ml_client", lambda workspace: None)
    monkeypatch.setattr(cli, "MLClientOps", lambda client: ops)
    result = CliRunner().invoke(cli.main, ["rollout", *AZURE, "--endpoint", "news-reader-dev", "--step-wait", "0",
                                           "--openai-endpoint", "https://example.openai.azure.com/",
                                           "--openai-deployment", "gpt-4o-mini"])
    assert result.exit_code == 1
    assert "deployment.azureml: rollout of green failed" in result.output and "rolled back" in result.output
    assert ops.calls[0] == ("deploy", "green")


class SignedOutOps(FakeOps):
    def get_endpoint(self, name):
        raise ClientAuthenticationError("DefaultAzureCredential failed\nto retrieve a token")


def test_an_azure_error_outside_the_rollout_steps_exits_with_one_line(monkeypatch):
    ops = SignedOutOps()
    monkeypatch.setattr(cli, "ml_client", lambda workspace: None)
    monkeypatch.setattr(cli, "MLClientOps", lambda client: ops)
    result = CliRunner().invoke(cli.main, ["rollout", *AZURE, "--openai-endpoint", "https://example.openai.azure.com/",
                                           "--openai-deployment", "gpt-4o-mini"])
    assert result.exit_code == 1
    assert result.output == "deployment.azureml: DefaultAzureCredential failed to retrieve a token\n"


class _Poller:
    def __init__(self, value=None):
        self.value = value

    def result(self):
        return self.value


class _FakeMLClient:
    """The parts of azure-ai-ml's MLClient that MLClientOps uses."""

    def __init__(self, endpoint: ManagedOnlineEndpoint | None):
        self.online_endpoints, self.online_deployments = self, self
        self.endpoint, self.sent, self.requests = endpoint, [], []

    def get(self, name):
        if self.endpoint is None:
            raise ResourceNotFoundError("not found")
        return self.endpoint

    def begin_create_or_update(self, entity):
        self.sent.append(entity)
        return _Poller(entity)

    def invoke(self, endpoint_name, deployment_name, request_file):
        self.requests.append((endpoint_name, deployment_name, json.loads(Path(request_file).read_text())))
        return json.dumps(ANSWER)


def test_ml_client_ops_maps_a_missing_endpoint_to_none():
    assert MLClientOps(_FakeMLClient(endpoint=None)).get_endpoint("news-reader-dev") is None


def test_ml_client_ops_sets_traffic_on_the_current_endpoint():
    client = _FakeMLClient(ManagedOnlineEndpoint(name="news-reader-dev", traffic={"blue": 100}))
    MLClientOps(client).set_traffic("news-reader-dev", {"green": 10, "blue": 90})
    assert client.sent[-1].name == "news-reader-dev" and client.sent[-1].traffic == {"green": 10, "blue": 90}


def test_ml_client_ops_invokes_one_deployment_with_the_article_as_json():
    client = _FakeMLClient(ManagedOnlineEndpoint(name="news-reader-dev"))
    answer = MLClientOps(client).invoke("news-reader-dev", "green", {"article": ARTICLE})
    assert json.loads(answer) == ANSWER
    assert client.requests == [("news-reader-dev", "green", {"article": ARTICLE})]
