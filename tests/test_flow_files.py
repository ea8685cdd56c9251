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


@pytest.mark.parametrize("flow", FLOWS, ids=lambda f: f.name)
def test_every_prompt_node_offers_exactly_the_variants_its_templates_give(flow):
    from news_reader.extraction.prompting import template_file
    from news_reader.extraction.steps import STEPS, prompt_node
    from news_reader.flow_dag import read_dag, step_prompt_nodes, template_path

    dag = read_dag(flow)
    offered = dict(dag.get("node_variants", {}))
    prompt_nodes = step_prompt_nodes(dag)
    assert prompt_nodes and all(node.get("use_variants") for node in dag["nodes"] if node["name"] in prompt_nodes)
    for name in prompt_nodes:
        step = STEPS[name.removesuffix("_prompt")]
        assert prompt_node(step.name) == name
        spec = offered.pop(name)
        assert spec["default_variant_id"] == step.variants[0]
        assert {variant: template_path(spec["variants"][variant]["node"]) for variant in spec["variants"]} == {
            variant: f"news_reader/extraction/prompts/{template_file(step.name, variant)}" for variant in step.variants}
    assert offered == {}, f"variants of nodes that are no step's prompt: {', '.join(offered)}"


@pytest.mark.parametrize("flow", FLOWS, ids=lambda f: f.name)
def test_the_committed_dag_is_what_news_reader_flows_sync_writes(flow):
    from news_reader.flow_dag import sync_variants

    assert sync_variants(flow, write=False) is False, "run `news-reader flows sync` and commit the DAG it writes"
