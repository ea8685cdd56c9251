"""Alembic migrations of the store (news_reader.store.Store.migrate)."""
