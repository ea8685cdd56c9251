"""The `news-reader` command, run as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from news_reader.extraction.schemas import ArticleInfo
from tests.conftest import ARTICLE, free_port
from tests.fake_llm import not_a_completion

CLI = str(Path(sys.executable).parent / "news-reader")


@pytest.fixture
def run(tmp_path):
    """Run the CLI with its local-model state in a temporary folder and a free port (no server there)."""
    port = str(free_port())

    def _run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
        env = {**os.environ, "NEWS_READER_LOCAL_STATE_DIR": str(tmp_path / "state"),
               "NEWS_READER_LOCAL_PORT": port, "NEWS_READER_LLM_MAX_RETRY_WAIT_S": "1"}
        return subprocess.run([CLI, *args], input=stdin, capture_output=True, env=env, timeout=60)

    return _run


@pytest.fixture
def article_file(tmp_path) -> Path:
    path = tmp_path / "acme.txt"
    path.write_text(ARTICLE)
    return path


def test_analyze_prints_one_json_result_per_article(run, business_script, article_file):
    done = run("analyze", "--json", "--endpoint", business_script.base_url, str(article_file))
    assert done.returncode == 0, done.stderr
    info = ArticleInfo.model_validate_json(done.stdout)
    assert [b.business for b in info.business_info] == ["Acme Corp", "Globex"]


def test_analyze_reads_standard_input(run, business_script):
    done = run("analyze", "--json", "--endpoint", business_script.base_url, "-", stdin=ARTICLE.encode())
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["title"] == "Acme profits soar as Globex deal collapses"


def test_the_human_format_shows_directions_quotes_and_cost(run, business_script, article_file):
    done = run("analyze", "--endpoint", business_script.base_url, str(article_file))
    assert "Acme Corp: increase (up)" in done.stdout.decode()
    assert "tokens: 700 prompt, 140 completion" in done.stdout.decode()  # 7 calls, the salience questions too


def test_a_bad_file_is_reported_and_the_good_ones_still_analysed(run, business_script, article_file, tmp_path):
    empty, binary = tmp_path / "empty.txt", tmp_path / "image.png"
    empty.write_text("  \n")
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    done = run("analyze", "--json", "--endpoint", business_script.base_url,
               str(empty), str(binary), str(tmp_path / "missing.txt"), str(article_file))
    assert done.returncode == 1
    assert len(done.stdout.decode().splitlines()) == 1
    assert done.stderr.decode().splitlines() == [
        f"news-reader: {empty}: article is empty",
        f"news-reader: {binary}: input is binary, not text (it contains NUL bytes)",
        f"news-reader: {tmp_path / 'missing.txt'}: cannot read file: No such file or directory",
    ]


def test_a_stopped_local_model_is_one_clear_line(run, article_file):
    done = run("analyze", str(article_file))
    assert done.returncode == 1
    expected = "news-reader: local LLM is not running (start it with `news-reader llm start`)"
    assert done.stderr.decode().startswith(expected)


def test_an_unreachable_endpoint_is_one_clear_line(run, article_file):
    url = f"http://127.0.0.1:{free_port()}/v1"
    done = run("analyze", "--endpoint", url, str(article_file))
    assert done.returncode == 1
    assert done.stderr.decode().strip().splitlines() == [
        f"news-reader: {article_file}: cannot reach the LLM at {url}/: [Errno 111] Connection refused"
    ]


def test_an_llm_answer_that_is_not_a_chat_completion_is_one_clear_line(run, business_script, article_file,
                                                                      monkeypatch):
    monkeypatch.setenv("NEWS_READER_LLM_MAX_RETRIES", "1")
    business_script.script("GeneralInfo", not_a_completion({"error": {"message": "upstream overloaded"}}))
    done = run("analyze", "--endpoint", business_script.base_url, str(article_file))
    assert done.returncode == 1
    assert done.stderr.decode().strip().splitlines() == [
        f"news-reader: {article_file}: the LLM's answer is not a chat completion: choices: Field required; it starts "
        """'{"error": {"message": "upstream overloaded"}}'"""
    ]


def test_an_unknown_variant_is_a_usage_error(run, article_file):
    done = run("analyze", "--variant", "general_info=variant_7", str(article_file))
    assert done.returncode == 2
    assert "'general_info' has variants variant_0, variant_1, not 'variant_7'" in done.stderr.decode()


def test_variants_take_the_prompt_flow_syntax_too(run, business_script, article_file):
    done = run("analyze", "--json", "--endpoint", business_script.base_url,
               "--variant", "${general_info_prompt.variant_1}", str(article_file))
    assert done.returncode == 0, done.stderr
    [general] = [s for s in business_script.seen if s.key == "GeneralInfo"]
    assert "at most 10 words" in general.body["messages"][1]["content"]


def test_a_bad_setting_is_one_line_naming_the_variable(run, article_file, monkeypatch):
    monkeypatch.setenv("NEWS_READER_LLM_TIMEOUT_S", "soon")
    done = run("analyze", str(article_file))
    assert done.returncode == 1
    assert done.stderr.decode().startswith("news-reader: invalid setting: NEWS_READER_LLM_TIMEOUT_S: Input should be")


def test_an_oversized_input_is_refused_without_reading_it_all(run, business_script):
    huge = b"word " * 100_000
    done = run("analyze", "--endpoint", business_script.base_url, "-", stdin=huge)
    assert done.returncode == 1
    assert "input is over 80,000 bytes" in done.stderr.decode()
    assert business_script.seen == []


def test_an_unknown_step_in_a_variant_is_a_usage_error(run, article_file):
    done = run("analyze", "--variant", "headline=variant_1", str(article_file))
    assert done.returncode == 2
    assert "no step 'headline'" in done.stderr.decode()


def test_llm_status_says_how_to_start_a_stopped_model(run):
    done = run("llm", "status")
    assert done.returncode == 1
    assert "not running (start it with `news-reader llm start`)" in done.stdout.decode()


def test_llm_start_without_the_model_file_says_how_to_install_it(run):
    done = run("llm", "start")
    assert done.returncode == 1
    assert "run `news-reader llm install`" in done.stderr.decode()


def test_llm_with_does_not_run_the_command_when_the_server_cannot_start(run, tmp_path):
    marker = tmp_path / "ran"
    done = run("llm", "with", "touch", str(marker))
    assert done.returncode == 1
    assert "run `news-reader llm install`" in done.stderr.decode()
    assert not marker.exists()



def test_llm_url_follows_the_port_setting():
    env = {**os.environ, "NEWS_READER_LOCAL_PORT": "9123"}
    done = subprocess.run([CLI, "llm", "url"], capture_output=True, env=env, timeout=60)
    assert done.stdout.decode() == "http://127.0.0.1:9123/v1\n"


# What a command that calls no LLM and opens no database must not import: each costs a large share of a second.
HEAVY_MODULES = ("openai", "sqlalchemy", "alembic", "matplotlib", "numpy", "promptflow", "azure", "jinja2")


@pytest.mark.parametrize("args", [["--help"], ["llm", "status"], ["llm", "url"], ["eval", "--help"],
                                  ["feedback", "export", "--help"]])
def test_commands_that_need_no_llm_answer_without_heavy_imports(args):
    script = ("import sys\nfrom news_reader.cli import main\n"
              f"try:\n    main({args!r})\nexcept SystemExit:\n    pass\n"
              f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY_MODULES!r})), file=sys.stderr)")
    env = {**os.environ, "NEWS_READER_LOCAL_PORT": str(free_port())}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60)
    assert done.stderr.strip().splitlines()[-1] == "[]"
