"""Alembic's environment: migrations run on the connection Store hands over, in its transaction."""

from alembic import context

from news_reader.store.tables import Base

context.configure(connection=context.config.attributes["connection"], target_metadata=Base.metadata,
                  render_as_batch=True)  # SQLite alters tables by copying them: batch mode does that
with context.begin_transaction():
    context.run_migrations()
