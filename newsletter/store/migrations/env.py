"""Alembic environment: always given a connection by newsletter.store.migrate."""

from alembic import context

from newsletter.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
