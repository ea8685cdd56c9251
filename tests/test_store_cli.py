"""`news-reader db`: migrations of the configured database from the command line."""

from __future__ import annotations

import shutil

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from click.testing import CliRunner

from news_reader.cli import main
from news_reader.store import store as store_module


@pytest.fixture
def database(tmp_path, monkeypatch) -> str:
    url = f"sqlite:///{tmp_path / 'state' / 'news_reader.db'}"
    monkeypatch.setenv("NEWS_READER_DATABASE_URL", url)
    return url


def test_db_upgrade_migrates_the_configured_database(database, tmp_path):
    result = CliRunner().invoke(main, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"{database}: schema at revision 0002"
    assert (tmp_path / "state" / "news_reader.db").is_file()


def test_db_revision_writes_a_migration_after_the_newest(database, tmp_path, monkeypatch):
    migrations = tmp_path / "migrations"
    shutil.copytree(store_module.MIGRATIONS, migrations, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(store_module, "MIGRATIONS", migrations)
    assert CliRunner().invoke(main, ["db", "upgrade"]).exit_code == 0
    result = CliRunner().invoke(main, ["db", "revision", "-m", "add a column"])
    assert result.exit_code == 0, result.output
    config = Config()
    config.set_main_option("script_location", str(migrations))
    scripts = ScriptDirectory.from_config(config)
    [head] = scripts.get_heads()
    written = scripts.get_revision(head)
    assert (written.doc, written.down_revision) == ("add a column", "0002")


def test_an_unreachable_database_is_one_line(monkeypatch):
    monkeypatch.setenv("NEWS_READER_DATABASE_URL", "postgresql+psycopg://u:secret@127.0.0.1:1/news")
    result = CliRunner().invoke(main, ["db", "upgrade"])
    assert result.exit_code == 1
    assert result.output.startswith("news-reader: database error: connection failed")
    assert "secret" not in result.output and "Traceback" not in result.output
