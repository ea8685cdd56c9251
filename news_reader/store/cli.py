"""`news-reader db` (schema migrations) and `news-reader feedback` (feedback as labelled data)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import click

from news_reader.settings import StoreSettings
from news_reader.store.records import EXPORT_RULES

# The store (SQLAlchemy, Alembic) is imported by the commands that use it, so that `news-reader --help` need not.


@click.group("db")
def database() -> None:
    """The database of analyses and feedback (NEWS_READER_DATABASE_URL; default: SQLite in .state/)."""


@database.command("upgrade")
def upgrade_command() -> None:
    """Migrate the database to the newest schema (the server does this when it starts)."""
    from news_reader.store.store import Store

    store = Store(StoreSettings().url)
    with _database_errors():
        click.echo(f"{store.display_url}: schema at revision {store.migrate()}")


@database.command("revision")
@click.option("-m", "--message", required=True, help="What the migration changes.")
def revision_command(message: str) -> None:
    """Write a new migration from the difference between news_reader/store/tables.py and the database (which must
    be at the newest revision). Review it before committing."""
    from alembic import command

    from news_reader.store.store import Store

    with _database_errors(), Store(StoreSettings().url).alembic() as config:
        command.revision(config, message=message, autogenerate=True)


@click.group("feedback")
def feedback() -> None:
    """User feedback on past analyses."""


@feedback.command("export", help=f"""Write the analyses that have feedback to OUT (.jsonl) as a labelled dataset in
the evaluation format, for `python evaluations/run_experiment.py --data OUT`.

\b
{EXPORT_RULES}""")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="The .jsonl file.")
def export_command(out: Path) -> None:
    if out.suffix != ".jsonl":
        raise click.BadParameter("the evaluation reads .jsonl files", param_hint="--out")
    from news_reader.store.store import Store

    store = Store(StoreSettings().url)
    with _database_errors():
        store.migrate()
        summary = store.export_dataset(out)
    click.echo(f"wrote {summary.examples} labelled examples to {out}; left out "
               f"{summary.left_out_thumbs_down_without_corrections} thumbs down without corrections and "
               f"{summary.left_out_failed_analyses} failed analyses")


@contextmanager
def _database_errors() -> Iterator[None]:
    """An unreachable database or an unwritable file is one line, not a traceback."""
    from sqlalchemy.exc import SQLAlchemyError

    try:
        yield
    except SQLAlchemyError as error:
        cause = getattr(error, "orig", None) or error
        _fail(f"database error: {str(cause).splitlines()[0]}")
    except OSError as error:
        _fail(f"{error.filename}: {error.strerror}")


def _fail(message: str) -> NoReturn:
    click.echo(f"news-reader: {message}", err=True)
    sys.exit(1)
