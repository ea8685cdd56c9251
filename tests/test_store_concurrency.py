"""Several server workers (processes) writing to one database at once lose nothing."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text

from news_reader.store import FeedbackRequest, Store
from tests.postgres import fresh_database, postgres_server

WORKERS, WRITES = 4, 25


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    with postgres_server() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return fresh_database(request.getfixturevalue("postgres"))


def _write(url: str, worker: int, start: multiprocessing.Barrier) -> None:
    """One worker: migrate as a starting server does, then record analyses and feedback on each."""
    store = Store(url)
    start.wait()
    store.migrate()
    for i in range(WRITES):
        trace_id = f"w{worker}-{i}"
        answer = {"title": "t", "summary": "s", "is_about_business": True, "trace_id": trace_id, "usage": [],
                  "errors": [], "business_info": [{"business": "Acme", "relevant_substring": "q", "reason": "r",
                                                   "stock_price_change": "increase"}]}
        store.record_analysis(trace_id=trace_id, article="a", result=answer, model="fake", latency_ms=i)
        store.record_feedback(trace_id, FeedbackRequest.model_validate(
            {"rating": "down", "corrections": [{"business": "Acme", "stock_price_change": "none"}]}))
    store.close()


def _run_workers(url: str) -> list[int]:
    context = multiprocessing.get_context("spawn")  # a fresh interpreter, as a server worker is
    start = context.Barrier(WORKERS)
    workers = [context.Process(target=_write, args=(url, w, start)) for w in range(WORKERS)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    return [worker.exitcode for worker in workers]


def test_concurrent_workers_migrate_and_write_without_losing_anything(database_url):
    assert _run_workers(database_url) == [0] * WORKERS
    engine = create_engine(database_url)
    with engine.connect() as connection:
        count = connection.execute(text("SELECT (SELECT count(*) FROM analyses), (SELECT count(*) FROM feedback), "
                                        "(SELECT count(DISTINCT trace_id) FROM feedback)")).one()
        revisions = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    engine.dispose()
    assert tuple(count) == (WORKERS * WRITES,) * 3
    store = Store(database_url)
    assert revisions == [store.migrate()]  # the newest migration, once
    store.close()
