"""Alembic environment: always run with a connection handed over by ``storage.sql.migrate``."""

from __future__ import annotations

from alembic import context

from storage.sql.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - shiti never runs alembic without a connection
    raise RuntimeError("run migrations through `shiti db upgrade` (storage.sql.migrate), not the alembic CLI")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True,
                  compare_type=True)
with context.begin_transaction():
    context.run_migrations()
