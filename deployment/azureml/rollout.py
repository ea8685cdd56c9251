"""Blue/green rollout: deploy the idle slot, smoke-test it, shift traffic in steps, roll back on any failure.

The steps talk to Azure through `EndpointOps`, so that tests can drive them with a test double; `ml_ops.MLClientOps`
is the real one. A failed deployment is left in place with no traffic, for its logs; the next rollout overwrites
it, as the slots alternate only on success.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from azure.ai.ml.entities import ManagedOnlineDeployment, ManagedOnlineEndpoint

from deployment.azureml.objects import SLOTS, Release

_TRACE_ID = re.compile(r"[0-9a-f]{32}")


class EndpointOps(Protocol):
    """The endpoint operations a rollout needs; each call blocks until Azure has finished."""

    def get_endpoint(self, name: str) -> ManagedOnlineEndpoint | None: ...

    def create_endpoint(self, endpoint: ManagedOnlineEndpoint) -> ManagedOnlineEndpoint: ...

    def create_or_update_deployment(self, deployment: ManagedOnlineDeployment) -> None: ...

    def set_traffic(self, endpoint: str, traffic: dict[str, int]) -> None: ...

    def invoke(self, endpoint: str, deployment: str, payload: dict) -> str: ...

    def delete_deployment(self, endpoint: str, deployment: str) -> None: ...


class RolloutFailed(Exception):
    """The rollout stopped; the message says what failed and where the traffic is now."""


@dataclass(frozen=True)
class Strategy:
    traffic_steps: tuple[int, ...] = (10, 50, 100)  # the new slot's share after each step; the last is 100
    step_wait_s: float = 60.0  # real traffic on the new slot before it is smoke-tested again
    keep_previous: bool = False  # keep the old slot (with no traffic, still billed) for a manual switch back


def live_slot(traffic: dict[str, int]) -> str | None:
    """The deployment taking the most traffic, or None when nothing takes any."""
    serving = {name: share for name, share in (traffic or {}).items() if share > 0}
    return max(serving, key=serving.get) if serving else None


def idle_slot(live: str | None) -> str:
    return SLOTS[1] if live == SLOTS[0] else SLOTS[0]


def plan(live: str | None, strategy: Strategy) -> list[str]:
    """What a rollout does, given the slot that is live now (None: no endpoint yet, or no traffic)."""
    new = idle_slot(live)
    steps = (100,) if live is None else strategy.traffic_steps
    shift = ", ".join(f"{new} {step}%" + (f" / {live} {100 - step}%" if live else "") for step in steps)
    lines = [f"create or update deployment {new} (model and environment registered with it)",
             f"smoke-test {new} with flows/sample_article.txt",
             f"shift traffic: {shift}" + (f", smoke-testing {new} after each step" if live else "")]
    if live:
        lines.append(f"on any failure: traffic back to {live} 100%, {new} kept with no traffic for its logs")
        lines.append(f"keep {live} with no traffic" if strategy.keep_previous else f"delete {live}")
    return lines


def smoke_test(ops: EndpointOps, endpoint: str, deployment: str, article: str, output_fields: frozenset[str]) -> None:
    """Score `article` on `deployment` alone; the answer must carry every flow output and a trace id."""
    try:
        answer = json.loads(ops.invoke(endpoint, deployment, {"article": article}))
    except Exception as error:
        raise RolloutFailed(f"smoke test of {deployment} failed: {error}") from error
    missing = sorted(output_fields - set(answer)) if isinstance(answer, dict) else sorted(output_fields)
    if missing:
        raise RolloutFailed(f"smoke test of {deployment}: the answer lacks {', '.join(missing)}")
    if not _TRACE_ID.fullmatch(str(answer["trace_id"])):
        raise RolloutFailed(f"smoke test of {deployment}: trace_id {answer['trace_id']!r} is not a 32-hex trace id")


def roll_out(ops: EndpointOps, release: Release, article: str, strategy: Strategy,
             log: Callable[[str], None] = print, sleep: Callable[[float], None] = time.sleep) -> str:
    """Deploy `release` to the idle slot and move all traffic to it; returns the slot now live."""
    name = release.serving.endpoint
    endpoint = ops.get_endpoint(name)
    if endpoint is None:
        log(f"endpoint {name} does not exist: creating it")
        ops.create_endpoint(release.endpoint)
    serving = {slot: share for slot, share in (endpoint.traffic or {}).items() if share > 0} if endpoint else {}
    if len(serving) > 1:
        shares = ", ".join(f"{slot} {share}%" for slot, share in sorted(serving.items()))
        raise RolloutFailed(f"traffic on {name} is split ({shares}): an earlier rollout stopped half-way, and which "
                            f"slot passed its checks is unknown. Give one slot all traffic (`az ml online-endpoint "
                            f"update -n {name} --traffic 'blue=100 green=0'`, or the reverse), then roll out again")
    live = live_slot(endpoint.traffic) if endpoint else None
    new = idle_slot(live)
    log(f"endpoint {name}: live slot {live or 'none'}; plan:")
    for line in plan(live, strategy):
        log(f"  - {line}")
    try:
        ops.create_or_update_deployment(release.deployment(new))
    except Exception as error:
        raise RolloutFailed(f"deployment {new} failed, traffic unchanged: {error}") from error
    try:
        smoke_test(ops, name, new, article, release.output_fields)
        for step in (100,) if live is None else strategy.traffic_steps:
            traffic = {new: step, **({live: 100 - step} if live else {})}
            log(f"traffic: {traffic}")
            ops.set_traffic(name, traffic)
            if live:
                sleep(strategy.step_wait_s)
                smoke_test(ops, name, new, article, release.output_fields)
    except Exception as error:
        raise RolloutFailed(_roll_back(ops, name, live, new, error)) from error
    log(f"rollout done: {new} takes all traffic")
    if live and not strategy.keep_previous:
        log(f"deleting {live}")
        try:
            ops.delete_deployment(name, live)
        except Exception as error:  # the release is live; the old slot only costs money until deleted by hand
            log(f"could not delete {live} ({error}): `az ml online-deployment delete -e {name} -n {live} --yes`")
    return new


def _roll_back(ops: EndpointOps, endpoint: str, live: str | None, new: str, error: Exception) -> str:
    """Put the traffic back where it was; the message for the operator."""
    inspect = f"`az ml online-deployment get-logs -e {endpoint} -n {new}`"
    if live is None:
        return f"rollout of {new} failed: {error}; nothing was live, {new} has no traffic; logs: {inspect}"
    try:
        ops.set_traffic(endpoint, {live: 100, new: 0})
    except Exception as rollback_error:
        return (f"rollout of {new} failed: {error}; ROLLBACK FAILED too ({rollback_error}): set the traffic by "
                f"hand: `az ml online-endpoint update -n {endpoint} --traffic '{live}=100 {new}=0'`")
    return f"rollout of {new} failed: {error}; rolled back: {live} takes all traffic, {new} none; logs: {inspect}"
