"""Alembic migrations of our own tables (the UWS job store); run by ``storage.jobs.migrate``."""
