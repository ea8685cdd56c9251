"""One graph: the DAG flows draw exactly the graph the plain-Python pipeline runs, and the runner runs it."""

from __future__ import annotations

import threading
import time

import pytest

from news_reader.extraction.graph import ARTICLE, GRAPH, SINGLE_GRAPH, Node, run_graph
from news_reader.flow_dag import prompt_conditions, read_dag, step_graph
from tests.conftest import REPO

FLOWS = {"news_reader": GRAPH, "news_reader_single": SINGLE_GRAPH}


def declared(graph: tuple[Node, ...]) -> dict:
    return {node.name: (dict(node.reads), node.when) for node in graph}


@pytest.mark.parametrize("flow", FLOWS)
def test_the_dag_has_the_declared_nodes_reads_and_conditions(flow):
    assert step_graph(read_dag(REPO / "flows" / flow)) == declared(FLOWS[flow])


@pytest.mark.parametrize("flow", FLOWS)
def test_a_prompt_node_runs_only_when_its_step_does(flow):
    for prompt, (own, step) in prompt_conditions(read_dag(REPO / "flows" / flow)).items():
        assert own in (None, step), prompt


def test_a_step_added_to_the_dag_alone_breaks_the_parity():
    dag = read_dag(REPO / "flows" / "news_reader")
    dag["nodes"].append({"name": "sentiment", "type": "python", "source": {"type": "code", "path": "s.py"},
                         "inputs": {"article": "${prepare_article.output}"}})
    assert step_graph(dag) != declared(GRAPH)


def test_a_changed_edge_in_the_dag_breaks_the_parity():
    dag = read_dag(REPO / "flows" / "news_reader")
    [analysis] = [node for node in dag["nodes"] if node["name"] == "business_analysis"]
    del analysis["activate"]
    assert step_graph(dag) != declared(GRAPH)


def test_nodes_that_read_nothing_of_each_other_run_at_once():
    both_running = threading.Barrier(2, timeout=5)
    graph = (Node("a", {"x": ARTICLE}), Node("b", {"x": ARTICLE}), Node("c", {"a": "a", "b": "b"}))
    functions = {"a": lambda x: both_running.wait(), "b": lambda x: both_running.wait(), "c": lambda a, b: "done"}
    assert run_graph(graph, functions, "text")["c"] == "done"


def test_a_node_whose_condition_is_false_is_bypassed_and_what_reads_it_gets_none():
    graph = (Node("gate", {"x": ARTICLE}), Node("skipped", {"x": ARTICLE}, when="gate.open"),
             Node("last", {"skipped": "skipped"}))
    functions = {"gate": lambda x: {"open": False}, "skipped": lambda x: pytest.fail("ran"),
                 "last": lambda skipped: skipped}
    assert run_graph(graph, functions, "text")["last"] is None


def test_the_first_failure_is_raised_and_no_later_node_starts():
    started = []

    def fail(x):
        raise RuntimeError("boom")

    def slow(x):
        time.sleep(0.2)
        return x

    graph = (Node("fails", {"x": ARTICLE}), Node("slow", {"x": ARTICLE}), Node("after", {"x": "slow"}))
    functions = {"fails": fail, "slow": slow, "after": lambda x: started.append(x)}
    with pytest.raises(RuntimeError, match="boom"):
        run_graph(graph, functions, "text")
    assert started == []


def test_a_node_that_reads_a_missing_node_is_an_error_not_a_hang():
    with pytest.raises(ValueError, match="never run: orphan"):
        run_graph((Node("orphan", {"x": "nowhere"}),), {"orphan": lambda x: x}, "text")
