"""news_reader/settings.py declares every NEWS_READER_* variable; the README's tables list exactly those, with their
defaults, and nothing else reads one from the environment behind its back."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from pydantic import ValidationError
from pydantic_settings import BaseSettings

from news_reader import settings as settings_module
from news_reader.settings import AzureMLSettings, LLMSettings, env_name, setting_problems

REPO = Path(__file__).resolve().parents[1]
SETTINGS_CLASSES = [value for value in vars(settings_module).values()
                    if isinstance(value, type) and issubclass(value, BaseSettings) and value is not BaseSettings]
# A default that depends on the machine, which the README can only describe.
DESCRIBED_DEFAULTS = {"NEWS_READER_LOCAL_N_THREADS": "cores"}
SOURCE_FOLDERS = ("news_reader", "deployment", "evaluations", "flows", "benchmarks", "data")
_ENVIRONMENT_READS = {"os.environ.get", "os.getenv", "environ.get", "getenv", "os.environ.setdefault",
                      "os.environ.pop"}


def readme_defaults() -> dict[str, str]:
    """Every NEWS_READER_* variable of the README's `| variable | default | meaning |` tables, with its default as
    written (backticks removed). A row may name several variables, their defaults separated by ", "."""
    found: dict[str, str] = {}
    in_table = False
    for line in (REPO / "README.md").read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")] if line.startswith("|") else []
        if cells[:2] == ["variable", "default"]:
            in_table = True
        elif not cells:
            in_table = False
        elif in_table and not set(cells[0]) <= {"-", " "}:
            names = re.findall(r"`(NEWS_READER_\w+)`", cells[0])
            defaults = cells[1].split(", ") if len(names) > 1 else [cells[1]]
            assert len(defaults) == len(names), f"one default per variable: {line}"
            for name, default in zip(names, defaults, strict=True):
                assert name not in found, f"{name} is in the README's tables twice"
                found[name] = default.strip("`")
    return found


def as_written(value: object) -> str:
    """A default the way the README writes it: none, false, 60 (not 60.0), paths relative to the repository."""
    if value is None or value == ():
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).replace(f"{REPO}/", "")


def declared_defaults() -> dict[str, str]:
    declared: dict[str, str] = {}
    for cls in SETTINGS_CLASSES:
        for field, info in cls.model_fields.items():
            name = env_name(cls, field)
            assert name.startswith("NEWS_READER_") and name not in declared, f"{cls.__name__}.{field}: {name}"
            declared[name] = DESCRIBED_DEFAULTS.get(name) or as_written(info.default)
    return declared


def test_the_readme_tables_list_exactly_the_declared_variables_with_their_defaults():
    readme, declared = readme_defaults(), declared_defaults()
    assert set(declared) - set(readme) == set(), "declared in settings.py, missing from the README's tables"
    assert set(readme) - set(declared) == set(), "in the README's tables, not declared in settings.py"
    assert readme == declared


def test_the_readme_check_sees_every_table():
    """The tables of the CLI, the server, telemetry and the Azure ML CLI, including the rows naming several."""
    readme = readme_defaults()
    assert {"NEWS_READER_LLM_MODEL", "NEWS_READER_SERVING_API_KEY", "NEWS_READER_PRICES_FILE",
            "NEWS_READER_ENDPOINT"} <= set(readme)
    assert readme["NEWS_READER_LOCAL_PORT"] == "8077" and readme["NEWS_READER_LOCAL_N_THREADS"] == "cores"


def environment_reads(path: Path) -> list[str]:
    """The NEWS_READER_* variables `path` reads through os.environ or os.getenv."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Call) and ast.unparse(node.func) in _ENVIRONMENT_READS and node.args:
            key = node.args[0]
        elif isinstance(node, ast.Subscript) and ast.unparse(node.value) in {"os.environ", "environ"}:
            key = node.slice
        elif isinstance(node, ast.Compare) and ast.unparse(node.comparators[0]) in {"os.environ", "environ"}:
            key = node.left
        else:
            continue
        if isinstance(key, ast.Constant) and str(key.value).startswith("NEWS_READER_"):
            names.append(key.value)
    return names


def test_no_module_but_the_settings_reads_a_news_reader_variable_from_the_environment():
    sources = [path for folder in SOURCE_FOLDERS for path in (REPO / folder).rglob("*.py")]
    readers = {str(path.relative_to(REPO)): reads for path in sources
               if path != Path(settings_module.__file__) and (reads := environment_reads(path))}
    assert readers == {}


def test_the_environment_read_check_finds_each_way_of_reading(tmp_path):
    module = tmp_path / "reader.py"
    module.write_text('import os\nos.environ.get("NEWS_READER_A")\nos.getenv("NEWS_READER_B")\n'
                      'os.environ["NEWS_READER_C"]\n"NEWS_READER_D" in os.environ\nos.environ.get("HOME")\n')
    assert environment_reads(module) == ["NEWS_READER_A", "NEWS_READER_B", "NEWS_READER_C", "NEWS_READER_D"]


def test_log_content_keeps_its_variable_and_is_given_by_name(monkeypatch):
    assert LLMSettings(log_content=True).log_content
    monkeypatch.setenv("NEWS_READER_LOG_CONTENT", "true")
    assert LLMSettings().log_content and env_name(LLMSettings, "log_content") == "NEWS_READER_LOG_CONTENT"


def test_a_bad_setting_is_reported_under_its_variable(monkeypatch):
    monkeypatch.setenv("NEWS_READER_LOG_CONTENT", "maybe")
    monkeypatch.setenv("NEWS_READER_LLM_TIMEOUT_S", "soon")
    with pytest.raises(ValidationError) as error:
        LLMSettings()
    assert [problem.split(":")[0] for problem in setting_problems(LLMSettings, error.value).split("; ")] == [
        "NEWS_READER_LLM_TIMEOUT_S", "NEWS_READER_LOG_CONTENT"]


def test_the_azure_ml_variables_read_like_the_cli_read_them(monkeypatch):
    """Addresses separated by spaces; an empty variable (a GitHub variable nobody set) is unset."""
    monkeypatch.setenv("NEWS_READER_ALERT_EMAILS", "ops@example.com  oncall@example.com")
    monkeypatch.setenv("NEWS_READER_ENDPOINT", "")
    read = AzureMLSettings()
    assert read.alert_emails == ("ops@example.com", "oncall@example.com") and read.endpoint == "news-reader"
    assert "endpoint" not in read.model_fields_set
