"""The serving image's recipe (no Docker engine here): pinned base, pinned installs, and nothing missing from it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from fnmatch import fnmatch
from importlib.metadata import distribution, distributions
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import REPO

DOCKERFILE = REPO / "deployment" / "Dockerfile"
SERVING_REQUIREMENTS = REPO / "deployment" / "requirements-serving.txt"


def _instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    return [tuple(line.split(None, 1)) for line in text.splitlines() if line.strip() and not line.startswith("#")]


def _pins(path: Path) -> dict[str, str]:
    """name -> version of a requirements file, following its -r includes."""
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line.startswith("-r "):
            pins |= _pins(path.parent / line[3:])
        elif line and not line.startswith("-c "):
            requirement = Requirement(line)
            (spec,) = requirement.specifier
            assert spec.operator == "==", f"{path.name}: {line!r} is not pinned with =="
            pins[canonicalize_name(requirement.name)] = spec.version
    return pins


def _dockerignore_keeps(path: str) -> bool:
    """Docker's rule: the last .dockerignore pattern matching the path or one of its parents decides."""
    keep = True
    parts = Path(path).parts
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    for pattern in (REPO / ".dockerignore").read_text().splitlines():
        pattern = pattern.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/").removeprefix("**/")
        if any(fnmatch(p, pattern) or fnmatch(Path(p).name, pattern) for p in prefixes):
            keep = negate
    return keep


def test_the_base_image_is_pinned_by_digest():
    bases = [arg for op, arg in _instructions() if op == "FROM"]
    assert bases and all(re.fullmatch(r"\S+:\S+@sha256:[0-9a-f]{64}", b) for b in bases)


def test_pip_installs_only_exact_pins_from_requirement_files():
    installs = [arg for op, arg in _instructions() if op == "RUN" and "pip install" in arg]
    assert installs
    for command in installs:
        args = command.split("pip install", 1)[1].split("&&")[0].split()
        assert all(a.startswith("-") or prev == "-r" for prev, a in zip(["", *args], args, strict=False)), command
    pins = _pins(SERVING_REQUIREMENTS)
    constraints = _pins(REPO / "constraints.txt")
    assert {name: constraints.get(name) for name in pins} == pins


def test_every_copied_path_exists_and_is_in_the_build_context():
    sources = [src for op, arg in _instructions() if op == "COPY" for src in arg.split()[:-1]]
    assert sources
    for source in sources:
        assert (REPO / source).exists(), source
        assert _dockerignore_keeps(source.rstrip("/")), f"{source} is excluded by .dockerignore"


# Not installed from requirements-serving.txt but present in the image: the project itself (copied) and the base
# image's own packaging tools.
_IN_IMAGE_ANYWAY = {"news-reader", "pip", "setuptools", "wheel"}
_WITHOUT_OTHER_PACKAGES = """
import importlib.abc, json, os, sys
blocked = set(json.load(open(sys.argv[1])))

class WithoutOtherPackages(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        for finder in sys.meta_path[1:]:
            spec = getattr(finder, "find_spec", lambda *a: None)(name, path, target)
            if spec is not None:
                if spec.origin and os.path.realpath(spec.origin) in blocked:
                    raise ModuleNotFoundError(f"{name} is not in the serving image", name=name)
                return None
        return None

sys.meta_path.insert(0, WithoutOtherPackages())
from pathlib import Path
from deployment.serving.app import create_app
create_app(Path("flows/news_reader"))
sys.path[:0] = ["flows/news_reader", "flows/common"]
import general_info, business_category, business_analysis, businesses_involved, assemble, prepare_article
"""


def test_azure_ml_uploads_the_same_build_context_as_docker_uses():
    def patterns(name: str) -> list[str]:
        return [line for line in (REPO / name).read_text().splitlines() if line and not line.startswith("#")]

    assert patterns(".amlignore") == patterns(".dockerignore")


def test_azure_ml_uploads_what_the_image_copies_and_nothing_else():
    """The upload azure-ai-ml itself would make of the build context (the repository root and its .amlignore)."""
    from azure.ai.ml._utils._asset_utils import get_ignore_file, get_upload_files_from_folder

    uploaded = {Path(name) for _, name in get_upload_files_from_folder(REPO, ignore_file=get_ignore_file(REPO))}
    sources = [Path(src) for op, arg in _instructions() if op == "COPY" for src in arg.split()[:-1]]
    assert all(any(p == s or s in p.parents for p in uploaded) for s in sources)
    context = {"constraints.txt", "news_reader", "flows", "deployment"}
    assert {p.parts[0] for p in uploaded} == context
    assert not [p for p in uploaded if "__pycache__" in p.parts or p.name == "data.jsonl"]


def test_the_server_and_the_flow_load_with_only_the_images_packages(tmp_path):
    """Create the served app and import every node with all packages outside the image's pins made unimportable."""
    allowed = _closure(_pins(SERVING_REQUIREMENTS)) | _IN_IMAGE_ANYWAY
    blocked = [os.path.realpath(d.locate_file(f)) for d in distributions()
               if canonicalize_name(d.metadata["Name"]) not in allowed for f in d.files or [] if f.suffix == ".py"]
    assert blocked, "this environment has packages beyond the image's; otherwise the test proves nothing"
    (tmp_path / "blocked.json").write_text(json.dumps(blocked))
    result = subprocess.run([sys.executable, "-c", _WITHOUT_OTHER_PACKAGES, str(tmp_path / "blocked.json")],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]


def _closure(pins: dict[str, str]) -> set[str]:
    """The pinned packages and everything they require on this platform."""
    seen, todo = set(), list(pins)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for spec in distribution(name).requires or []:
            requirement = Requirement(spec)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(canonicalize_name(requirement.name))
    return seen
