"""A flow folder made self-contained for serving and for registering as an Azure ML model.

Prompt flow resolves a flow's `additional_includes` only inside its own commands; a served or registered folder must
carry the included files itself. Staging copies them in, and can pin the model every LLM node calls (the Azure
OpenAI deployment name), so the staged `flow.dag.yaml` states exactly what runs.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path

import yaml

from news_reader.flow_dag import FLOW_FILE, llm_nodes, read_dag

# Local test and run artifacts, never part of what is served.
_SKIP = shutil.ignore_patterns(".promptflow", "__pycache__", "*.pyc", ".runs")
# Temporary folders of staged copies are named `<prefix><pid>-<random>` for the process that serves them.
_STAGE_PREFIX = "news-reader-flow-"


def stage_flow(flow_dir: Path, dest: Path, *, model: str | None = None) -> Path:
    """Copy `flow_dir` into `dest` (which must not exist) with its additional includes resolved; with `model`, set
    the `model` input of every node that has one."""
    flow_dir = Path(flow_dir).resolve()
    dag = read_dag(flow_dir)
    _copy(flow_dir, Path(dest))
    for include in dag.pop("additional_includes", []):
        source = (flow_dir / include).resolve()
        if not source.exists():
            raise FileNotFoundError(f"{flow_dir / FLOW_FILE}: additional include {include} does not exist")
        _copy(source, Path(dest) / source.name)
    if model is not None:
        for node in llm_nodes(dag):
            node["inputs"]["model"] = model
    (Path(dest) / FLOW_FILE).write_text(yaml.safe_dump(dag, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return Path(dest)


def _copy(source: Path, target: Path) -> None:
    """Copy a file or a tree, writable by its owner whatever the source's modes (Azure ML mounts models read-only)."""
    if source.is_dir():
        shutil.copytree(source, target, ignore=_SKIP, copy_function=shutil.copyfile)
        for path in [target, *target.rglob("*")]:
            path.chmod(path.stat().st_mode | stat.S_IWUSR)
    else:
        shutil.copyfile(source, target)


def find_flow(root: Path) -> Path:
    """The folder holding `flow.dag.yaml`: `root` itself or its single descendant that has one (Azure ML mounts a
    registered model under `AZUREML_MODEL_DIR/<model folder>`)."""
    if (root / FLOW_FILE).is_file():
        return root
    found = sorted(p.parent for p in root.rglob(FLOW_FILE))
    if len(found) != 1:
        raise FileNotFoundError(f"expected one {FLOW_FILE} under {root}, found {len(found)}")
    return found[0]


def temporary_stage_folder() -> Path:
    """A new temporary folder for this process's staged copy, after removing the copies of processes that are gone
    (killed before they could remove their own)."""
    _remove_orphaned_stages(Path(tempfile.gettempdir()))
    return Path(tempfile.mkdtemp(prefix=f"{_STAGE_PREFIX}{os.getpid()}-"))


def _remove_orphaned_stages(folder: Path) -> None:
    """Remove the staged copies in `folder` whose process no longer runs; those of running servers stay."""
    for path in folder.glob(f"{_STAGE_PREFIX}*-*"):
        pid = path.name.removeprefix(_STAGE_PREFIX).partition("-")[0]
        if pid.isdigit() and not _running(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def _running(pid: int) -> bool:
    """Whether process `pid` exists: signal 0 sends nothing, and another user's process refuses it."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True
