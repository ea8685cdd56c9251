"""The DAG flow files read as data: their LLM nodes, their prompt variants, the step graph their references draw, and
`node_variants` written from the prompt templates, so that a variant is one new template file."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import yaml

from news_reader.extraction.graph import ARTICLE
from news_reader.extraction.prompting import DEFAULT_VARIANT, template_file, variants

FLOW_FILE = "flow.dag.yaml"
_REFERENCE = re.compile(r"^\$\{(?P<source>inputs\.\w+|\w+)(?:\.output)?(?:\.(?P<field>\w+))?\}$")
_PROMPT_SUFFIX = "_prompt"


def read_dag(flow_dir: Path) -> dict:
    return yaml.safe_load((Path(flow_dir) / FLOW_FILE).read_text(encoding="utf-8"))


def nodes(dag: dict) -> list[dict]:
    """The nodes as they run by default: a node with variants is its default variant's definition."""
    resolved = []
    for node in dag["nodes"]:
        if node.get("use_variants"):
            spec = dag["node_variants"][node["name"]]
            node = {"name": node["name"], **spec["variants"][spec["default_variant_id"]]["node"]}
        resolved.append(node)
    return resolved


def llm_nodes(dag: dict) -> list[dict]:
    """The nodes that take a connection (and a model): the ones a run's connection and model apply to."""
    return [node for node in dag["nodes"] if "connection" in node.get("inputs", {})]


def default_variants(dag: dict) -> dict[str, str]:
    """The default variant of each step whose prompt node has variants."""
    return {name.removesuffix(_PROMPT_SUFFIX): spec["default_variant_id"]
            for name, spec in dag.get("node_variants", {}).items()}


def step_graph(dag: dict) -> dict[str, tuple[dict[str, str], str | None]]:
    """Each python node's reads (argument -> source node, or ARTICLE) and activation condition ("node.field"), as
    `graph.Node` declares them. A step's prompt node belongs to the step (the pipeline renders the prompt itself), and
    python nodes that only feed prompt nodes (the answer formats) are the prompts' helpers, not steps."""
    resolved = {node["name"]: node for node in nodes(dag)}
    prompt_nodes = set(step_prompt_nodes(dag))
    readers: dict[str, set[str]] = {}
    for name, node in resolved.items():
        for value in node.get("inputs", {}).values():
            if (match := _REFERENCE.match(str(value))) is not None:
                readers.setdefault(match["source"], set()).add(name)
    graph = {}
    for name, node in resolved.items():
        if name in prompt_nodes or (readers.get(name) and readers[name] <= prompt_nodes):
            continue
        reads = {}
        for argument, value in node.get("inputs", {}).items():
            match = _REFERENCE.match(str(value))
            if match is not None and match["source"] not in prompt_nodes:
                reads[argument] = ARTICLE if match["source"] == "inputs.article" else match["source"]
        graph[name] = (reads, _condition(node))
    return graph


def prompt_conditions(dag: dict) -> dict[str, tuple[str | None, str | None]]:
    """For each prompt node: its own activation condition and that of the step that sends its prompt."""
    resolved = {node["name"]: node for node in nodes(dag)}
    return {name: (_condition(resolved[name]), _condition(resolved.get(name.removesuffix(_PROMPT_SUFFIX), {})))
            for name in step_prompt_nodes(dag)}


def step_prompt_nodes(dag: dict) -> list[str]:
    """The steps' prompt nodes: prompt nodes, and python nodes named for a step's prompt (`<step>_prompt` beside
    `<step>`), which pass a template on to the step."""
    resolved = {node["name"]: node for node in nodes(dag)}
    return [name for name, node in resolved.items()
            if node["type"] == "prompt" or name.removesuffix(_PROMPT_SUFFIX) in resolved.keys() - {name}]


def template_path(node: dict) -> str:
    """The template a step's prompt node uses: a prompt node's source, or the `template` input of a python node
    that passes a template's text on."""
    return node["source"]["path"] if node["type"] == "prompt" else node["inputs"]["template"]


def _with_template(node: dict, path: str) -> dict:
    """A copy of a step's prompt node that uses the template at `path`."""
    node = copy.deepcopy(node)
    if node["type"] == "prompt":
        node["source"]["path"] = path
    else:
        node["inputs"]["template"] = path
    return node


def sync_variants(flow_dir: Path, write: bool = True) -> bool:
    """Write the flow's `node_variants` from the template files: one variant per `<step>__<variant>.jinja2` beside
    the step's variant_0 template, each a copy of variant_0's node with its own template. The block is the end of
    the file; what precedes it is left as written. True when the file changed (or, with write=False, would)."""
    path = Path(flow_dir) / FLOW_FILE
    text = path.read_text(encoding="utf-8")
    dag = yaml.safe_load(text)
    written = {}
    for name, spec in dag.get("node_variants", {}).items():
        step, base = name.removesuffix(_PROMPT_SUFFIX), spec["variants"][DEFAULT_VARIANT]["node"]
        folder = Path(template_path(base)).parent
        templates = _included(Path(flow_dir), dag, folder)
        found = {}
        for variant in variants(step, templates):
            template = folder / template_file(step, variant, templates)
            found[variant] = {"node": _with_template(base, template.as_posix())}
        default = spec["default_variant_id"] if spec["default_variant_id"] in found else DEFAULT_VARIANT
        written[name] = {"default_variant_id": default, "variants": found}
    head, marker, _ = text.partition("\nnode_variants:\n")
    if not marker:
        return False
    updated = f"{head}\n" + yaml.safe_dump({"node_variants": written}, sort_keys=False, allow_unicode=True, width=120)
    if write and updated != text:
        path.write_text(updated, encoding="utf-8")
    return updated != text


def _included(flow_dir: Path, dag: dict, folder: Path) -> Path:
    """Where a folder named relative to the flow is on disk: inside an `additional_includes` entry (copied in under
    its own name when Prompt flow runs the flow), or in the flow folder itself."""
    first, *rest = folder.parts
    for include in dag.get("additional_includes", []):
        if Path(include).name == first:
            return (flow_dir / include).resolve().joinpath(*rest)
    return flow_dir / folder


def _condition(node: dict) -> str | None:
    activate = node.get("activate")
    if not activate:
        return None
    match = _REFERENCE.match(str(activate["when"]))
    condition = f"{match['source']}.{match['field']}" if match else str(activate["when"])
    return condition if activate.get("is") is True else f"{condition} is {activate.get('is')!r}"
