"""The store of analyses and their feedback: SQLite (WAL) by default, PostgreSQL by URL; Alembic migrations."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, event, select, text
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from sqlalchemy.orm import Session, selectinload, sessionmaker
from tenacity import (
    Retrying,
    retry_if_exception,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_random,
)

from news_reader.extraction.errors import NewsReaderError
from news_reader.store.export import write_dataset
from news_reader.store.feedback import FeedbackRequest
from news_reader.store.records import ExportSummary, StoredAnalysis, StoredFeedback, TimeseriesRow
from news_reader.store.tables import Analysis, Feedback
from news_reader.store.timeseries import Bucket, timeseries

MIGRATIONS = Path(__file__).with_name("migrations")
# How long an SQLite write waits for another writer's lock, unless the URL says otherwise (`?timeout=<seconds>`, as
# SQLAlchemy's SQLite driver reads it).
SQLITE_BUSY_TIMEOUT_MS = 30_000
# How long each attempt of an analysis write waits for the lock (or the busy timeout, if shorter): its answer and a
# server thread wait for it, and one wait of the full busy timeout would leave no time to try again.
ANALYSIS_BUSY_TIMEOUT_MS = 3_000
# An analysis whose write failed for the database's sake (SQLite's lock not granted within its wait, a lost
# connection) is written again, in 3 attempts at most: a locked SQLite file delays its answer by at most 3 waits of
# ANALYSIS_BUSY_TIMEOUT_MS and 2 pauses of 0.1 to 0.5 s, about 10 s.
ANALYSIS_WRITE_ATTEMPTS = 3
# Any constant: concurrent PostgreSQL migrations (several workers starting at once) queue on this advisory lock.
_PG_MIGRATION_LOCK = 0x6E657773


class UnknownTraceId(NewsReaderError):
    kind = "not_found"


class InvalidFeedback(NewsReaderError):
    kind = "invalid_field"


class DuplicateTraceId(NewsReaderError):
    kind = "duplicate_trace_id"


class UnstorableData(NewsReaderError):
    """A value the database refuses, such as text with a lone surrogate: trying again cannot help."""

    kind = "invalid_field"


class IdempotencyKeyReused(NewsReaderError):
    """A post with the idempotency key of an earlier one, but other feedback: a client's mistake, not a retry."""

    kind = "invalid_field"


class Store:
    """Analyses and feedback in the database at `url` (a SQLAlchemy URL)."""

    def __init__(self, url: str):
        parsed = make_url(url)
        if parsed.drivername == "postgresql":  # SQLAlchemy's default driver for it, psycopg2, is not installed
            parsed = parsed.set(drivername="postgresql+psycopg")
        sqlite = parsed.get_backend_name() == "sqlite"
        if sqlite and parsed.database:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # Hidden parameters: a database error in a log must not carry the article's text.
        self._engine = create_engine(parsed, pool_pre_ping=not sqlite, hide_parameters=True)
        busy_timeout_ms = round(_busy_timeout_s(parsed) * 1000)
        if sqlite:
            _use_wal_and_wait_for_locks(self._engine, busy_timeout_ms)
        # Writes take SQLite's write lock when they begin, so a read-then-write transaction never meets a newer
        # snapshot (SQLITE_BUSY_SNAPSHOT, which no busy timeout waits out); the options mean nothing elsewhere.
        self._writer = self._engine.execution_options(sqlite_immediate=True)
        analysis_writer = self._engine.execution_options(
            sqlite_immediate=True, sqlite_busy_timeout_ms=min(busy_timeout_ms, ANALYSIS_BUSY_TIMEOUT_MS))
        self._read = sessionmaker(self._engine, expire_on_commit=False)
        self._write = sessionmaker(self._writer, expire_on_commit=False)
        self._write_analysis_row = sessionmaker(analysis_writer, expire_on_commit=False)

    @property
    def display_url(self) -> str:
        """The database URL without its password."""
        return self._engine.url.render_as_string(hide_password=True)

    def migrate(self) -> str:
        """Bring the schema to the newest migration and return its revision; safe to run from several processes at
        once."""
        with self.alembic() as config:
            command.upgrade(config, "head")
            return ScriptDirectory.from_config(config).get_current_head()

    @contextmanager
    def alembic(self) -> Iterator[Config]:
        """Alembic's configuration for this package's migrations, on one connection to this database in one
        transaction, which waits for any other process doing the same."""
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with self._writer.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
            config.attributes["connection"] = connection
            yield config

    def close(self) -> None:
        self._engine.dispose()

    def record_analysis(
        self, *, trace_id: str, article: str, result: dict | None, model: str, variant: str = "default",
        error_kind: str | None = None, latency_ms: int, prompt_tokens: int = 0, completion_tokens: int = 0,
        cached_tokens: int | None = None, cost_usd: float | None = None, created_at: datetime | None = None,
    ) -> StoredAnalysis:
        """Store one request that reached the flow: its answer (`result`), or the kind of its failure. A failed
        write is tried again (ANALYSIS_WRITE_ATTEMPTS): its answer is already given, and feedback needs the record."""
        if (result is None) == (error_kind is None):
            raise ValueError("give either the result of an analysis or the kind of its failure")
        return self._insert_analysis(dict(
            trace_id=trace_id, article=article, result=result, variant=variant, model=model,
            status="ok" if error_kind is None else "error", error_kind=error_kind, latency_ms=latency_ms,
            prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, cached_tokens=cached_tokens,
            cost_usd=cost_usd, **({"created_at": created_at} if created_at else {}),
        ))

    def _insert_analysis(self, columns: dict) -> StoredAnalysis:
        for attempt in Retrying(retry=retry_if_exception_type(OperationalError),
                                stop=stop_after_attempt(ANALYSIS_WRITE_ATTEMPTS), wait=wait_random(0.1, 0.5),
                                reraise=True):
            with attempt:
                return self._write_analysis(columns, retried=attempt.retry_state.attempt_number > 1)
        raise AssertionError("unreachable: the last attempt's error is raised")

    def _write_analysis(self, columns: dict, retried: bool) -> StoredAnalysis:
        """One attempt. Trace ids are unique per request, so a retry that meets this very analysis under its trace id
        met an earlier attempt whose commit went through before its connection was lost: that is the stored one."""
        analysis = Analysis(**columns, feedback=[])  # a new row per attempt: a failed one is not reused
        try:
            with self._writing(self._write_analysis_row) as session:
                session.add(analysis)
        except IntegrityError as error:
            found = self._find(analysis.trace_id)
            if found is None:
                raise
            if retried and _is_the_analysis(found, columns):
                return found
            raise DuplicateTraceId(f"trace {analysis.trace_id} is already recorded") from error
        return StoredAnalysis.model_validate(analysis)

    def record_feedback(self, trace_id: str, request: FeedbackRequest, idempotency_key: str | None = None
                        ) -> tuple[StoredFeedback, bool]:
        """Store feedback on the analysis `trace_id`; corrections must name companies of that analysis. Returns the
        feedback and whether it is new: a post with the key of an earlier one is that one again, answered with the
        earlier feedback if it is the same feedback, refused (IdempotencyKeyReused) if not."""
        try:
            with self._writing() as session:
                return self._add_feedback(session, trace_id, request, idempotency_key)
        except IntegrityError:
            # The same key committed meanwhile by a concurrent post (PostgreSQL; SQLite's writers take turns).
            with self._read() as session:
                earlier = _feedback_with_key(session, trace_id, idempotency_key)
                if earlier is None:
                    raise
                return _replay(earlier, request), False

    @contextmanager
    def _writing(self, sessions: sessionmaker | None = None) -> Iterator[Session]:
        """A write transaction (of `sessions`, by default the store's writer), in which a value the database refuses
        is UnstorableData: a lone surrogate, which no UTF-8 database takes (the driver's UnicodeEncodeError), or NUL
        in PostgreSQL's text (DataError)."""
        try:
            with (sessions or self._write).begin() as session:
                yield session
        except UnicodeEncodeError as error:
            raise UnstorableData(f"text the database cannot store: {error.object[error.start:error.end]!r} at "
                                 f"character {error.start} ({error.reason})") from error
        except DataError as error:
            raise UnstorableData(f"a value the database cannot store: {str(error.orig).splitlines()[0]}") from error

    def _add_feedback(self, session: Session, trace_id: str, request: FeedbackRequest, idempotency_key: str | None
                      ) -> tuple[StoredFeedback, bool]:
        earlier = _feedback_with_key(session, trace_id, idempotency_key)
        if earlier is not None:
            return _replay(earlier, request), False
        analysis = session.scalar(select(Analysis).where(Analysis.trace_id == trace_id))
        if analysis is None:
            raise UnknownTraceId(f"no analysis has trace id {trace_id!r}")
        feedback = Feedback(trace_id=trace_id, rating=request.rating, comment=request.comment,
                            corrections=_corrections_of(analysis, request), variant=analysis.variant,
                            model=analysis.model, idempotency_key=idempotency_key)
        session.add(feedback)
        session.flush()  # its id and time
        return StoredFeedback.model_validate(feedback), True

    def analyses(self, limit: int = 25, offset: int = 0) -> list[StoredAnalysis]:
        """Analyses with their feedback, newest first."""
        query = (select(Analysis).options(selectinload(Analysis.feedback))
                 .order_by(Analysis.created_at.desc(), Analysis.id.desc()).limit(limit).offset(offset))
        with self._read() as session:
            return [StoredAnalysis.model_validate(a) for a in session.scalars(query)]

    def analysis(self, trace_id: str) -> StoredAnalysis:
        found = self._find(trace_id)
        if found is None:
            raise UnknownTraceId(f"no analysis has trace id {trace_id!r}")
        return found

    def timeseries(self, bucket: Bucket, since: datetime | None = None) -> list[TimeseriesRow]:
        """Per hour or day since `since` (or the first record): requests, failures by kind, latency p50/p95, tokens,
        cost and feedback. Buckets without activity between the first and last are included, empty."""
        with self._read() as session:
            return timeseries(session, bucket, since)

    def export_dataset(self, path: Path) -> ExportSummary:
        """Write the analyses with feedback as a labelled dataset in the evaluation format (see `export`)."""
        with self._read() as session:
            return write_dataset(session, Path(path))

    def _find(self, trace_id: str) -> StoredAnalysis | None:
        query = select(Analysis).options(selectinload(Analysis.feedback)).where(Analysis.trace_id == trace_id)
        with self._read() as session:
            found = session.scalar(query)
            return StoredAnalysis.model_validate(found) if found else None


def _is_the_analysis(found: StoredAnalysis, columns: dict) -> bool:
    return (found.article, found.result, found.error_kind) == (columns["article"], columns["result"],
                                                                columns["error_kind"])


def _feedback_with_key(session: Session, trace_id: str, idempotency_key: str | None) -> Feedback | None:
    """The feedback on `trace_id` posted with `idempotency_key`: a key is unique per analysis."""
    if idempotency_key is None:
        return None
    return session.scalar(select(Feedback).where(Feedback.trace_id == trace_id,
                                                 Feedback.idempotency_key == idempotency_key))


def _replay(earlier: Feedback, request: FeedbackRequest) -> StoredFeedback:
    """The earlier feedback on the same analysis, if the request repeats it: same rating, comment and corrections."""
    def corrections(items: list) -> list[tuple[str, str]]:
        return sorted((c["business"].casefold(), c["stock_price_change"]) for c in items)

    same = ((earlier.rating, earlier.comment, corrections(earlier.corrections))
            == (request.rating, request.comment, corrections(request.model_dump()["corrections"])))
    if not same:
        raise IdempotencyKeyReused(f"idempotency key {earlier.idempotency_key!r} was used for other feedback on this "
                                   "analysis; send new feedback with a new key")
    return StoredFeedback.model_validate(earlier)


def _corrections_of(analysis: Analysis, request: FeedbackRequest) -> list[dict]:
    """The corrections with each company named as the analysis names it; InvalidFeedback for any other name."""
    companies = {entry["business"].casefold(): entry["business"] for entry in (analysis.result or {}).get(
        "business_info", [])}
    unknown = [c.business for c in request.corrections if c.business.casefold() not in companies]
    if unknown:
        named = ", ".join(companies.values()) or "no company"
        raise InvalidFeedback(f"corrections name {', '.join(unknown)}, but the analysis names {named}")
    return [{"business": companies[c.business.casefold()], "stock_price_change": c.stock_price_change}
            for c in request.corrections]


def _busy_timeout_s(url: URL) -> float:
    """The SQLite URL's `timeout` in seconds (SQLAlchemy has checked it is a number), or the default."""
    return float(url.query.get("timeout", SQLITE_BUSY_TIMEOUT_MS / 1000))


def _use_wal_and_wait_for_locks(engine: Engine, busy_timeout_ms: int) -> None:
    """WAL (readers never block the writer), a busy timeout instead of instant 'database is locked', foreign keys
    on, and transactions begun by SQLAlchemy (IMMEDIATE for writes) rather than by the driver. A transaction waits
    for the lock as long as its `sqlite_busy_timeout_ms` execution option says, by default `busy_timeout_ms`."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, record) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {busy_timeout_ms}")
        record.info["busy_timeout_ms"] = busy_timeout_ms
        _switch_to_wal(cursor, busy_timeout_ms / 1000)
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        options = connection.get_execution_options()
        wait_ms = options.get("sqlite_busy_timeout_ms", busy_timeout_ms)
        if connection.info.get("busy_timeout_ms") != wait_ms:  # the pooled connection's, as it was last set
            connection.exec_driver_sql(f"PRAGMA busy_timeout = {wait_ms}")
            connection.info["busy_timeout_ms"] = wait_ms
        connection.exec_driver_sql("BEGIN IMMEDIATE" if options.get("sqlite_immediate") else "BEGIN")


def _switch_to_wal(cursor: sqlite3.Cursor, busy_timeout_s: float) -> None:
    """WAL mode for the database file. Switching a new file takes a lock SQLite does not wait for (no busy handler,
    to avoid deadlock) while another process switches or migrates it, so this waits here, up to the busy timeout."""
    locked = retry_if_exception(lambda e: isinstance(e, sqlite3.OperationalError) and "locked" in str(e))
    for attempt in Retrying(retry=locked, stop=stop_after_delay(busy_timeout_s), wait=wait_random(0.01, 0.1),
                            reraise=True):
        with attempt:
            cursor.execute("PRAGMA journal_mode = WAL")
