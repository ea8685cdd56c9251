"""The README describes the tree as it is: the layout table names every module, and the graph drawn is the graph
declared."""

from __future__ import annotations

import re

from news_reader.extraction.graph import ARTICLE, GRAPH
from tests.conftest import REPO

README = (REPO / "README.md").read_text()
LAYOUT = README.split("## Layout\n", 1)[1].split("\n### ", 1)[0]
ROWS = dict(re.findall(r"^\| `([^`]+)` \| (.+) \|$", LAYOUT, flags=re.MULTILINE))


def test_every_path_in_the_layout_table_exists():
    assert ROWS and [path for path in ROWS if not (REPO / path).exists()] == []


def test_the_layout_table_names_every_module_in_the_row_of_its_folder():
    modules = [path for folder in ("news_reader", "flows", "deployment", "evaluations", "benchmarks")
               for path in (REPO / folder).rglob("*.py")
               if path.name != "__init__.py" and "versions" not in path.parts and ".promptflow" not in path.parts]
    unnamed = []
    for module in modules:
        relative = module.relative_to(REPO).as_posix()
        row = max((folder for folder in ROWS if relative.startswith(folder.rstrip("/") + "/")), key=len, default=None)
        if row is None or f"`{module.name}`" not in ROWS[row] and module.parent.name not in ROWS[row]:
            unnamed.append(relative)
    assert unnamed == []


def test_the_graph_drawn_is_the_graph_declared():
    lines = []
    for node in GRAPH:
        lines += [f"  {'article' if source == ARTICLE else source} --> {node.name}"
                  for source in dict.fromkeys(node.reads.values())]
        if node.when:
            source, field = node.when.split(".")
            lines.append(f"  {source} -. {field} .-> {node.name}")
    assert "```mermaid\nflowchart LR\n" + "\n".join(lines) + "\n```" in README


def test_every_module_opens_with_a_docstring():
    modules = [path for folder in ("news_reader", "flows", "deployment", "evaluations", "benchmarks", "data")
               for path in (REPO / folder).rglob("*.py") if "versions" not in path.parts]
    missing = [path.relative_to(REPO).as_posix() for path in modules
               if path.stat().st_size and not path.read_text().lstrip().startswith('"""')]
    assert missing == []
