"""The database tables. A change here needs a migration in migrations/versions (a test compares the two)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import JSON, CheckConstraint, DateTime, Float, ForeignKey, Index, Integer, MetaData, String, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from news_reader.store.feedback import IDEMPOTENCY_KEY_MAX_CHARS

# Stable constraint names, so that migrations can refer to them on every database.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes in and out; SQLite keeps them naive, PostgreSQL as timestamptz."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return _as_utc(value)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return _as_utc(value)


def _as_utc(value: datetime | None) -> datetime | None:
    """A naive datetime is taken to be UTC already."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


OUTCOME = ("(status = 'ok' AND result IS NOT NULL AND error_kind IS NULL) "
           "OR (status = 'error' AND result IS NULL AND error_kind IS NOT NULL)")


def utc_now() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Analysis(Base):
    """One request that reached the flow: its article, its answer or the kind of its failure, and its cost."""

    __tablename__ = "analyses"
    # An answer, or the kind of failure instead of one.
    __table_args__ = (CheckConstraint(OUTCOME, name="outcome"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trace_id: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now, index=True)
    article: Mapped[str] = mapped_column(Text)
    result: Mapped[dict | None] = mapped_column(JSON(none_as_null=True))
    variant: Mapped[str] = mapped_column(String(200))
    model: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(5))
    error_kind: Mapped[str | None] = mapped_column(String(100))
    latency_ms: Mapped[int] = mapped_column(Integer)
    prompt_tokens: Mapped[int] = mapped_column(Integer)
    completion_tokens: Mapped[int] = mapped_column(Integer)
    cached_tokens: Mapped[int | None] = mapped_column(Integer)
    cost_usd: Mapped[float | None] = mapped_column(Float)

    feedback: Mapped[list[Feedback]] = relationship(back_populates="analysis", order_by="Feedback.id")


class Feedback(Base):
    """A user's rating of one analysis, with the variant and model that produced it."""

    __tablename__ = "feedback"
    # The client's key for one submission (the Idempotency-Key header): a post it retries is stored once. Unique per
    # analysis, as a client's keys need not be unique across analyses. A unique index rather than a constraint, so
    # that SQLite adds it without copying the table.
    __table_args__ = (CheckConstraint("rating IN ('up', 'down')", name="rating"),
                      Index("ix_feedback_trace_id_idempotency_key", "trace_id", "idempotency_key", unique=True))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trace_id: Mapped[str] = mapped_column(ForeignKey("analyses.trace_id", ondelete="CASCADE"), index=True)
    rating: Mapped[str] = mapped_column(String(4))
    comment: Mapped[str | None] = mapped_column(Text)
    corrections: Mapped[list[dict]] = mapped_column(JSON)
    variant: Mapped[str] = mapped_column(String(200))
    model: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now, index=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(IDEMPOTENCY_KEY_MAX_CHARS))

    analysis: Mapped[Analysis] = relationship(back_populates="feedback")
