"""Alembic environment: runs on the connection ``storage.jobs.migrate`` hands over."""

from __future__ import annotations

from alembic import context

VERSION_TABLE = "tap_uws_alembic_version"

connection = context.config.attributes["connection"]
context.configure(connection=connection, version_table=VERSION_TABLE, target_metadata=None)
with context.begin_transaction():
    context.run_migrations()
