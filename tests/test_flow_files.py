"""What each flow folder carries for deployment stays in step with the project."""

from __future__ import annotations

import re

import pytest
import yaml

from tests.conftest import REPO

FLOWS = [REPO / "flows" / "news_reader", REPO / "flows" / "news_reader_single"]
EVAL_FLOW = REPO / "evaluations" / "news_reader_eval"
SAMPLE = (REPO / "flows" / "sample_article.txt").read_text().strip()


def pins(path) -> dict[str, str]:
    found = re.findall(r"^([A-Za-z0-9_.\-\[\]]+)==(\S+)", path.read_text(), flags=re.MULTILINE)
    return {name.lower().replace("_", "-"): version for name, version in found}


@pytest.mark.parametrize("flow", FLOWS, ids=lambda f: f.name)
def test_the_default_input_is_the_sample_article(flow):
    dag = yaml.safe_load((flow / "flow.dag.yaml").read_text())
    assert dag["inputs"]["article"]["default"].strip() == SAMPLE


@pytest.mark.parametrize("flow", [*FLOWS, EVAL_FLOW], ids=lambda f: f.name)
def test_flow_requirements_are_pinned_like_the_project(flow):
    flow_pins, project_pins = pins(flow / "requirements.txt"), pins(REPO / "constraints.txt")
    assert flow_pins and all(project_pins[name] == version for name, version in flow_pins.items())


def test_both_flows_carry_the_same_sample_data():
    assert (FLOWS[0] / "data.jsonl").read_text() == (FLOWS[1] / "data.jsonl").read_text()
