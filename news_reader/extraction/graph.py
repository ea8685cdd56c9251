"""The extraction graph, declared once: which node reads which, and when a node runs. The plain-Python pipeline runs
it; a test reads the DAG flow's nodes and references and proves them equal to it."""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

ARTICLE = "inputs.article"


@dataclass(frozen=True)
class Node:
    """A node's function is called with keyword arguments: `reads` maps each to the node whose output it is (or to
    the flow's input, ARTICLE). With `when` = "node.field" the node runs only when that field of the node's answer
    (a dict) is true, and is otherwise bypassed (its output is None), like Prompt flow's `activate`."""

    name: str
    reads: Mapping[str, str]
    when: str | None = None


_ONLY_BUSINESS = "business_category.is_about_business"
GRAPH: tuple[Node, ...] = (
    Node("prepare_article", {"article": ARTICLE}),
    Node("general_info", {"article": "prepare_article"}),
    Node("business_category", {"article": "prepare_article"}),
    Node("businesses_involved", {"article": "prepare_article"}, when=_ONLY_BUSINESS),
    Node("business_analysis", {"article": "prepare_article", "businesses": "businesses_involved"},
         when=_ONLY_BUSINESS),
    Node("assemble", {"article": "prepare_article", "general_info": "general_info",
                      "business_category": "business_category", "businesses_involved": "businesses_involved",
                      "business_analysis": "business_analysis"}),
)
SINGLE_GRAPH: tuple[Node, ...] = (
    Node("prepare_article", {"article": ARTICLE}),
    Node("single_prompt", {"article": "prepare_article"}),
)


def run_graph(graph: tuple[Node, ...], functions: Mapping[str, Callable[..., object]], article: object) -> dict:
    """Call each node's function with the outputs it reads as soon as they exist, independent nodes at once. The
    first failure stops new nodes from starting and is raised once the running ones finish."""
    outputs: dict[str, object] = {ARTICLE: article}
    waiting, running = list(graph), {}
    with ThreadPoolExecutor(max_workers=len(graph)) as pool:
        while waiting or running:
            while ready := [n for n in waiting if _ready(n, outputs)]:
                for node in ready:
                    waiting.remove(node)
                    if node.when and not _field(outputs, node.when):
                        outputs[node.name] = None  # bypassed; what reads it may now be ready
                        continue
                    arguments = {argument: outputs[source] for argument, source in node.reads.items()}
                    future: Future = pool.submit(contextvars.copy_context().run, functions[node.name], **arguments)
                    running[future] = node.name
            if not running:
                if waiting:
                    raise ValueError(f"nodes that can never run: {', '.join(n.name for n in waiting)}")
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                outputs[running.pop(future)] = future.result()
    return outputs


def _ready(node: Node, outputs: dict[str, object]) -> bool:
    needed = [*node.reads.values(), *([node.when.split(".")[0]] if node.when else [])]
    return all(name in outputs for name in needed)


def _field(outputs: dict[str, object], reference: str) -> object:
    node, field = reference.split(".")
    output = outputs[node]
    return output.get(field) if isinstance(output, dict) else None
