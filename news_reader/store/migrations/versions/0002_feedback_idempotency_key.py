"""Feedback's idempotency key, unique per analysis: a post the client retries is stored once.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A new nullable column and a unique index (a key is unique per analysis): SQLite adds both in place, without
    # copying the table.
    op.add_column("feedback", sa.Column("idempotency_key", sa.String(255), nullable=True))
    op.create_index(op.f("ix_feedback_trace_id_idempotency_key"), "feedback", ["trace_id", "idempotency_key"],
                    unique=True)


def downgrade() -> None:
    op.drop_index(op.f("ix_feedback_trace_id_idempotency_key"), "feedback")
    op.drop_column("feedback", "idempotency_key")
