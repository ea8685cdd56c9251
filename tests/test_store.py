"""The store of analyses and feedback, on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager
from datetime import UTC, datetime, timedelta, timezone

import pytest
from alembic import command
from pydantic import ValidationError
from sqlalchemy import create_engine, event, inspect
from sqlalchemy.exc import OperationalError

from news_reader.percentiles import percentile
from news_reader.settings import REPO_STATE_DIR, StoreSettings
from news_reader.store import (
    DuplicateTraceId,
    FeedbackRequest,
    IdempotencyKeyReused,
    InvalidFeedback,
    Store,
    UnknownTraceId,
    UnstorableData,
)
from news_reader.store.store import ANALYSIS_BUSY_TIMEOUT_MS, SQLITE_BUSY_TIMEOUT_MS
from news_reader.store.timeseries import bucket_start
from tests.postgres import fresh_database, postgres_server

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def answer(trace_id: str, *companies: tuple[str, str]) -> dict:
    """An ArticleInfo-shaped answer naming `companies` as (name, direction)."""
    return {"title": "Acme profits soar", "summary": "Acme's profits rose.", "is_about_business": bool(companies),
            "business_info": [{"business": name, "relevant_substring": "q", "reason": "r", "stock_price_change": d}
                              for name, d in companies],
            "trace_id": trace_id, "usage": [], "errors": []}


def record(store: Store, trace_id: str, *companies: tuple[str, str], **fields) -> None:
    fields = {"article": f"article {trace_id}", "model": "fake", "latency_ms": 100, **fields}
    store.record_analysis(trace_id=trace_id, result=answer(trace_id, *companies), **fields)


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    with postgres_server() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path) -> Iterator[Store]:
    url = f"sqlite:///{tmp_path / 'store.db'}" if request.param == "sqlite" else fresh_database(
        request.getfixturevalue("postgres"))
    store = Store(url)
    store.migrate()
    yield store
    store.close()


def test_an_analysis_is_stored_with_its_answer_tokens_latency_and_cost(store):
    record(store, "t1", ("Acme Corp", "increase"), prompt_tokens=500, completion_tokens=100, cached_tokens=300,
           cost_usd=0.0012, latency_ms=2345, variant="general_info=variant_1")
    stored = store.analysis("t1")
    assert stored.result == answer("t1", ("Acme Corp", "increase"))
    assert (stored.status, stored.error_kind, stored.article) == ("ok", None, "article t1")
    assert (stored.model, stored.variant, stored.latency_ms) == ("fake", "general_info=variant_1", 2345)
    assert (stored.prompt_tokens, stored.completion_tokens, stored.cached_tokens) == (500, 100, 300)
    assert stored.cost_usd == pytest.approx(0.0012)
    assert stored.feedback == []


def test_a_failed_analysis_is_stored_with_the_kind_of_failure(store):
    store.record_analysis(trace_id="t1", article="a", result=None, error_kind="llm_timeout", model="fake",
                          latency_ms=180_000)
    stored = store.analysis("t1")
    assert (stored.status, stored.error_kind, stored.result, stored.cost_usd) == ("error", "llm_timeout", None, None)


@pytest.mark.parametrize("outcome", [{"result": None}, {"result": answer("t1"), "error_kind": "llm_timeout"}],
                         ids=["neither", "both"])
def test_an_analysis_has_either_an_answer_or_a_failure(store, outcome):
    with pytest.raises(ValueError, match="either"):
        store.record_analysis(trace_id="t1", article="a", model="fake", latency_ms=1, **outcome)


def test_a_trace_id_is_recorded_once(store):
    record(store, "t1")
    with pytest.raises(DuplicateTraceId):
        record(store, "t1")


def test_an_analysis_whose_commit_went_through_before_its_connection_dropped_is_stored_once(store, monkeypatch):
    """The retry met its own row (IntegrityError): that is the analysis stored, not a duplicate trace id."""
    writing, dropped = store._writing, []

    @contextmanager
    def commit_then_lose_the_connection(*args):
        with writing(*args) as session:
            yield session
        if not dropped:
            dropped.append(True)
            raise OperationalError("COMMIT", {}, ConnectionError("server closed the connection unexpectedly"))

    monkeypatch.setattr(store, "_writing", commit_then_lose_the_connection)
    stored = store.record_analysis(trace_id="t1", article="a", result=answer("t1"), model="fake", latency_ms=1)
    assert dropped and store.analyses() == [stored]


def test_a_retry_that_finds_another_analysis_under_its_trace_id_is_a_duplicate(store):
    record(store, "t1", article="the first article")
    columns = dict(trace_id="t1", article="another article", result=answer("t1"), variant="default", model="fake",
                   status="ok", error_kind=None, latency_ms=1, prompt_tokens=0, completion_tokens=0,
                   cached_tokens=None, cost_usd=None)
    with pytest.raises(DuplicateTraceId):
        store._write_analysis(columns, retried=True)
    assert store.analysis("t1").article == "the first article"


def test_times_are_utc_whatever_zone_they_are_given_in(store):
    paris = timezone(timedelta(hours=1))
    record(store, "t1", created_at=datetime(2026, 11, 20, 10, 30, tzinfo=paris))
    record(store, "t2")
    assert store.analysis("t1").created_at == datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
    now = store.analysis("t2").created_at
    assert now.tzinfo == UTC and abs(datetime.now(UTC) - now) < timedelta(minutes=1)


def test_text_with_a_lone_surrogate_is_unstorable_data_and_nothing_is_stored(store):
    with pytest.raises(UnstorableData, match=r"'\\ud800' at character 5 \(surrogates not allowed\)"):
        record(store, "t1", article="text \ud800 more text")
    assert store.analyses() == []


def test_a_feedback_comment_with_a_lone_surrogate_is_unstorable_data(store):
    record(store, "t1")
    unchecked = FeedbackRequest.model_construct(rating="up", comment="\udfff", corrections=[])  # validation refuses it
    with pytest.raises(UnstorableData):
        store.record_feedback("t1", unchecked)
    assert store.analysis("t1").feedback == []


def test_nul_which_postgresql_text_cannot_hold_is_unstorable_data(postgres):
    store = Store(fresh_database(postgres))
    store.migrate()
    with pytest.raises(UnstorableData, match="NUL"):
        record(store, "t1", article="text \x00 more text")
    store.close()


def test_feedback_is_stored_with_the_variant_and_model_of_its_analysis(store):
    record(store, "t1", ("Acme Corp", "increase"), variant="default", model="gpt-4o-mini")
    stored, _ = store.record_feedback("t1", FeedbackRequest(rating="up", comment="  spot on  "))
    assert (stored.trace_id, stored.rating, stored.comment) == ("t1", "up", "spot on")
    assert (stored.variant, stored.model, stored.corrections) == ("default", "gpt-4o-mini", [])
    assert stored.created_at.tzinfo == UTC
    assert store.analysis("t1").feedback == [stored]


def test_corrections_name_companies_as_the_analysis_does(store):
    record(store, "t1", ("Acme Corp", "increase"), ("Globex", "decrease"))
    request = FeedbackRequest.model_validate(
        {"rating": "down", "corrections": [{"business": "globex", "stock_price_change": "none"}]})
    stored, _ = store.record_feedback("t1", request)
    assert [c.model_dump() for c in stored.corrections] == [{"business": "Globex", "stock_price_change": "none"}]


def test_feedback_on_an_unknown_trace_id_is_refused(store):
    with pytest.raises(UnknownTraceId, match="nope"):
        store.record_feedback("nope", FeedbackRequest(rating="up"))


def test_a_correction_of_a_company_the_analysis_does_not_name_is_refused_and_nothing_is_stored(store):
    record(store, "t1", ("Acme Corp", "increase"))
    request = FeedbackRequest.model_validate(
        {"rating": "down", "corrections": [{"business": "Initech", "stock_price_change": "none"}]})
    with pytest.raises(InvalidFeedback, match="Initech, but the analysis names Acme Corp"):
        store.record_feedback("t1", request)
    assert store.analysis("t1").feedback == []


def test_feedback_posted_again_with_its_idempotency_key_is_the_stored_feedback_not_a_new_one(store):
    record(store, "t1", ("Acme Corp", "increase"))
    request = FeedbackRequest.model_validate(
        {"rating": "down", "comment": "no", "corrections": [{"business": "Acme Corp", "stock_price_change": "none"}]})
    first, first_is_new = store.record_feedback("t1", request, idempotency_key="k-1")
    again, again_is_new = store.record_feedback("t1", request, idempotency_key="k-1")
    assert (first_is_new, again_is_new) == (True, False)
    assert again == first and store.analysis("t1").feedback == [first]


def test_the_same_feedback_spelt_differently_is_the_same_submission(store):
    record(store, "t1", ("Acme Corp", "increase"))

    def post(comment: str, company: str):
        return store.record_feedback("t1", FeedbackRequest.model_validate(
            {"rating": "up", "comment": comment, "corrections": [{"business": company, "stock_price_change": "none"}]}),
            idempotency_key="k-1")

    first, _ = post("fine", "Acme Corp")
    assert post(" fine ", "acme corp") == (first, False)


@pytest.mark.parametrize("other", [{"rating": "down"}, {"rating": "up", "comment": "changed my mind"}],
                         ids=["other rating", "other comment"])
def test_an_idempotency_key_used_again_for_other_feedback_on_its_analysis_is_refused(store, other):
    record(store, "t1")
    store.record_feedback("t1", FeedbackRequest(rating="up"), idempotency_key="k-1")
    with pytest.raises(IdempotencyKeyReused, match="'k-1' was used for other feedback") as refused:
        store.record_feedback("t1", FeedbackRequest.model_validate(other), idempotency_key="k-1")
    assert "t1" not in str(refused.value), "a key's refusal names no trace id"
    assert len(store.analysis("t1").feedback) == 1


def test_one_idempotency_key_on_two_analyses_is_two_submissions(store):
    """Keys are the client's, per submission: two analyses' feedback may share one, and neither sees the other."""
    record(store, "t1")
    record(store, "t2")
    assert store.record_feedback("t1", FeedbackRequest(rating="up"), idempotency_key="k-1")[1] is True
    assert store.record_feedback("t2", FeedbackRequest(rating="down"), idempotency_key="k-1")[1] is True
    assert [[f.rating for f in store.analysis(t).feedback] for t in ("t1", "t2")] == [["up"], ["down"]]


def test_concurrent_posts_with_one_idempotency_key_store_it_once(store):
    record(store, "t1")
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda _: store.record_feedback("t1", FeedbackRequest(rating="up"), "k-1"), range(8)))
    assert sorted(new for _, new in answers) == [False] * 7 + [True]
    assert len({feedback.id for feedback, _ in answers}) == 1
    assert len(store.analysis("t1").feedback) == 1


def test_feedback_without_an_idempotency_key_is_stored_each_time(store):
    record(store, "t1")
    for _ in range(2):
        assert store.record_feedback("t1", FeedbackRequest(rating="up"))[1] is True
    assert len(store.analysis("t1").feedback) == 2


def test_analyses_come_newest_first_with_their_feedback_in_pages(store):
    for i in range(5):
        record(store, f"t{i}", created_at=T0 + timedelta(minutes=i))
    store.record_feedback("t3", FeedbackRequest(rating="down"))
    store.record_feedback("t3", FeedbackRequest(rating="up", comment="on reflection"))
    assert [a.trace_id for a in store.analyses(limit=3)] == ["t4", "t3", "t2"]
    assert [a.trace_id for a in store.analyses(limit=3, offset=3)] == ["t1", "t0"]
    assert [f.rating for f in store.analyses(limit=1, offset=1)[0].feedback] == ["down", "up"]


def test_an_unknown_analysis_is_an_error(store):
    with pytest.raises(UnknownTraceId):
        store.analysis("nope")


def test_the_timeseries_counts_requests_failures_latency_tokens_cost_and_feedback_per_hour(store):
    start = bucket_start(datetime.now(UTC), "hour") - timedelta(hours=2)
    for i, latency in enumerate([100, 200, 300, 400]):
        record(store, f"ok{i}", latency_ms=latency, prompt_tokens=10, completion_tokens=2, cost_usd=0.5,
               created_at=start + timedelta(minutes=10 * i))
    store.record_analysis(trace_id="bad", article="a", result=None, error_kind="llm_timeout", model="fake",
                          latency_ms=1000, created_at=start + timedelta(minutes=50))
    store.record_feedback("ok0", FeedbackRequest(rating="up"))
    given, _ = store.record_feedback("ok1", FeedbackRequest(rating="down"))
    rows = store.timeseries("hour", since=start)
    first, gap, last = rows[0], rows[1], rows[-1]
    assert (first.bucket, gap.bucket, last.bucket) == (start, start + timedelta(hours=1),
                                                       bucket_start(given.created_at, "hour"))
    assert (first.requests, first.failures) == (5, {"llm_timeout": 1})
    assert (first.latency_ms_p50, first.latency_ms_p95) == (300, 1000)
    assert (first.prompt_tokens, first.completion_tokens, first.cost_usd) == (40, 8, pytest.approx(2.0))
    assert (gap.requests, gap.latency_ms_p50, gap.cost_usd, gap.feedback_up) == (0, None, None, 0)
    assert (sum(r.feedback_up for r in rows), sum(r.feedback_down for r in rows)) == (1, 1)


def test_the_timeseries_by_day_since_a_time(store):
    record(store, "old", created_at=T0 - timedelta(days=3))
    record(store, "a", created_at=T0)
    record(store, "b", created_at=T0 + timedelta(hours=5))
    rows = store.timeseries("day", since=T0 - timedelta(days=1))
    assert [(r.bucket, r.requests) for r in rows] == [(T0.replace(hour=0), 2)]
    assert store.timeseries("day", since=T0 + timedelta(days=1)) == []


def test_a_timeseries_bucket_is_an_hour_or_a_day(store):
    with pytest.raises(ValueError, match="hour or day"):
        store.timeseries("week")


@pytest.mark.parametrize(("values", "p", "expected"), [([5], 95, 5), ([1, 2, 3, 4], 50, 2), ([1, 2, 3, 4], 95, 4),
                                                        (list(range(1, 101)), 95, 95)])
def test_percentiles_are_nearest_rank(values, p, expected):
    assert percentile(values, p) == expected


@pytest.mark.parametrize(("body", "says"), [
    ({"rating": "meh"}, "rating"),
    ({"rating": "up", "comment": "x" * 2001}, "at most 2000"),
    ({"rating": "up", "stars": 5}, "Extra inputs"),
    ({"rating": "up", "corrections": [{"business": "Acme", "stock_price_change": "up"}]}, "stock_price_change"),
    ({"rating": "up", "corrections": [{"business": "", "stock_price_change": "none"}]}, "business"),
    ({"rating": "down", "corrections": [{"business": "Acme", "stock_price_change": "none"},
                                        {"business": "acme", "stock_price_change": "increase"}]}, "corrected once"),
], ids=["rating", "long comment", "extra field", "direction", "empty company", "company twice"])
def test_malformed_feedback_is_refused_with_the_reason(body, says):
    with pytest.raises(ValidationError, match=says):
        FeedbackRequest.model_validate(body)


def test_a_blank_comment_is_no_comment():
    assert FeedbackRequest(rating="up", comment=" \n ").comment is None


def test_migrating_an_empty_database_creates_the_schema_and_again_changes_nothing(tmp_path):
    url = f"sqlite:///{tmp_path / 'new' / 'store.db'}"
    store = Store(url)
    assert store.migrate() == store.migrate() == "0002"
    engine = create_engine(url)
    assert {"analyses", "feedback", "alembic_version"} <= set(inspect(engine).get_table_names())
    engine.dispose()
    store.close()


def test_the_tables_match_the_migrations(store):
    with store.alembic() as config:
        command.check(config)  # raises when autogenerate would write a migration


def test_sqlite_runs_in_wal_mode_and_waits_for_locks(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    store.migrate()
    with store._engine.connect() as connection:
        pragma = connection.exec_driver_sql
        assert pragma("PRAGMA journal_mode").scalar() == "wal"
        assert pragma("PRAGMA busy_timeout").scalar() == SQLITE_BUSY_TIMEOUT_MS
        assert pragma("PRAGMA foreign_keys").scalar() == 1
    store.close()
    assert sqlite3.connect(tmp_path / "store.db").execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_opening_a_new_sqlite_file_waits_while_another_process_holds_its_write_lock(tmp_path):
    """Switching a new file to WAL meets no busy handler in SQLite itself: it failed at once with 'database is
    locked' when several server workers started together on a fresh database."""
    with closing(sqlite3.connect(tmp_path / "store.db")) as other:  # a file in rollback mode, as another made it
        other.execute("CREATE TABLE other (a)")
    holder = hold_write_lock(tmp_path / "store.db", seconds=0.5)
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    assert store.migrate() == "0002"
    holder.close()
    store.close()
    assert sqlite3.connect(tmp_path / "store.db").execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_the_busy_timeout_comes_from_the_sqlite_urls_timeout(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'store.db'}?timeout=0.25")
    store.migrate()
    with store._engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 250
    store.close()


def hold_write_lock(path, seconds: float | None) -> sqlite3.Connection:
    """Another writer holding the SQLite file's write lock, for `seconds` (None: until closed)."""
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    if seconds is not None:
        threading.Timer(seconds, holder.execute, ["COMMIT"]).start()
    return holder


def test_an_analysis_write_that_meets_a_lock_past_the_busy_timeout_is_tried_again(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'store.db'}?timeout=0.2")
    store.migrate()
    holder = hold_write_lock(tmp_path / "store.db", seconds=0.5)
    record(store, "t1")
    holder.close()
    assert store.analysis("t1").trace_id == "t1"
    store.close()


def test_an_analysis_write_that_meets_a_lock_held_past_every_attempt_fails_within_seconds(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'store.db'}?timeout=0.2")
    store.migrate()
    holder = hold_write_lock(tmp_path / "store.db", seconds=None)
    started = time.monotonic()
    with pytest.raises(OperationalError, match="database is locked"):
        record(store, "t1")
    assert time.monotonic() - started < 3, "three attempts of 0.2 s, 0.1 to 0.5 s apart"
    holder.close()
    assert store.analyses() == []
    store.close()


@contextmanager
def counting_write_attempts(store: Store) -> Iterator[list[float]]:
    """When each write transaction of `store` was begun (whether or not it got the lock)."""
    began: list[float] = []

    def before_execute(_connection, _cursor, statement: str, *_) -> None:
        if statement == "BEGIN IMMEDIATE":
            began.append(time.monotonic())

    event.listen(store._engine, "before_cursor_execute", before_execute)
    yield began
    event.remove(store._engine, "before_cursor_execute", before_execute)


def test_with_the_default_busy_timeout_an_analysis_write_meeting_a_lock_is_tried_again(tmp_path):
    """The 30 s busy timeout let a first attempt wait past the whole retry window: there was never a second."""
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    store.migrate()
    holder = hold_write_lock(tmp_path / "store.db", seconds=ANALYSIS_BUSY_TIMEOUT_MS / 1000 + 1)
    with counting_write_attempts(store) as began:
        record(store, "t1")
    holder.close()
    assert len(began) == 2, "the first attempt gave up after the analysis busy timeout, the second was stored"
    assert store.analysis("t1").trace_id == "t1"
    store.close()


def test_with_the_default_busy_timeout_a_locked_database_delays_an_analysis_by_a_bounded_wait(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    store.migrate()
    holder = hold_write_lock(tmp_path / "store.db", seconds=None)
    started = time.monotonic()
    with counting_write_attempts(store) as began, pytest.raises(OperationalError, match="database is locked"):
        record(store, "t1")
    waited = time.monotonic() - started
    holder.close()
    assert len(began) == 3
    assert 3 * ANALYSIS_BUSY_TIMEOUT_MS / 1000 <= waited < 10.5, "three attempts of 3 s, 0.1 to 0.5 s apart"
    store.close()


def test_the_default_database_is_sqlite_in_the_repos_state_folder(monkeypatch):
    monkeypatch.delenv("NEWS_READER_DATABASE_URL", raising=False)
    assert StoreSettings().url == f"sqlite:///{REPO_STATE_DIR / 'news_reader.db'}"
    assert REPO_STATE_DIR.is_absolute()


def test_the_database_url_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("NEWS_READER_DATABASE_URL", "postgresql+psycopg://u:p@db.example/news")
    assert StoreSettings().url == "postgresql+psycopg://u:p@db.example/news"
    assert Store(StoreSettings().url).display_url == "postgresql+psycopg://u:***@db.example/news"


def test_a_postgresql_url_without_a_driver_uses_psycopg():
    assert Store("postgresql://u:p@db.example/news").display_url == "postgresql+psycopg://u:***@db.example/news"
