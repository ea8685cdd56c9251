"""Staging a flow folder for serving and for registering as an Azure ML model."""

from __future__ import annotations

import stat

import pytest
import yaml

from deployment.flow_package import find_flow, stage_flow
from tests.conftest import REPO

FLOW = REPO / "flows" / "news_reader"


def test_a_staged_flow_carries_its_additional_includes(tmp_path):
    staged = stage_flow(FLOW, tmp_path / "news_reader")
    dag = yaml.safe_load((staged / "flow.dag.yaml").read_text())
    assert "additional_includes" not in dag
    assert (staged / "news_reader" / "extraction" / "prompts" / "general_info.jinja2").is_file()
    assert (staged / "prepare_article.py").is_file() and (staged / "general_info.py").is_file()
    assert not list(staged.rglob("__pycache__")) and not (staged / ".promptflow").exists()


def test_staging_with_a_model_pins_it_on_every_llm_node_only(tmp_path):
    original = yaml.safe_load((FLOW / "flow.dag.yaml").read_text())
    staged = yaml.safe_load((stage_flow(FLOW, tmp_path / "f", model="gpt-4o-mini") / "flow.dag.yaml").read_text())
    models = {n["name"]: n["inputs"]["model"] for n in staged["nodes"] if "model" in n.get("inputs", {})}
    assert len(models) >= 4 and set(models.values()) == {"gpt-4o-mini"}
    others = [n for n in staged["nodes"] if n["name"] not in models]
    assert others == [n for n in original["nodes"] if n["name"] not in models]


def test_a_flow_staged_from_a_read_only_copy_is_writable_by_its_owner(tmp_path):
    source = stage_flow(FLOW, tmp_path / "mounted")
    for path in [source, *source.rglob("*")]:
        path.chmod(path.stat().st_mode & ~0o222)
    staged = stage_flow(source, tmp_path / "staged", model="gpt-4o-mini")
    assert all(path.stat().st_mode & stat.S_IWUSR for path in [staged, *staged.rglob("*")])
    for path in [source, *source.rglob("*")]:
        path.chmod(path.stat().st_mode | stat.S_IWUSR)


def test_a_missing_include_is_named(tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "flow.dag.yaml").write_text(yaml.safe_dump({"additional_includes": ["../nowhere.py"], "nodes": []}))
    with pytest.raises(FileNotFoundError, match="nowhere.py does not exist"):
        stage_flow(broken, tmp_path / "out")


def test_the_flow_is_found_in_the_folder_or_the_one_below_it(tmp_path):
    staged = stage_flow(FLOW, tmp_path / "model" / "news_reader")
    assert find_flow(staged) == staged
    assert find_flow(tmp_path / "model") == staged
    with pytest.raises(FileNotFoundError, match="found 0"):
        find_flow(tmp_path / "model" / "news_reader" / "news_reader")
