"""Alembic environment: migrations run on a connection the store hands over (sync side of an async engine)."""

from __future__ import annotations

from alembic import context

from server.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - the store always passes its connection
    raise RuntimeError("run migrations through server.store.Store.open(), which passes a connection")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
