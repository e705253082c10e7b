"""The UWS job table.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _time() -> sa.types.TypeEngine[datetime]:
    # MariaDB's DATETIME drops fractions of a second unless asked to keep them.
    return sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        "tap_uws_job",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("owner", sa.String(255), nullable=True),
        sa.Column("phase", sa.String(16), nullable=False),
        sa.Column("run_id", sa.String(255), nullable=True),
        sa.Column("parameters", sa.Text(), nullable=False),
        sa.Column("creation_time", _time(), nullable=False),
        sa.Column("start_time", _time(), nullable=True),
        sa.Column("end_time", _time(), nullable=True),
        sa.Column("execution_duration", sa.Integer(), nullable=False),
        sa.Column("destruction_time", _time(), nullable=True),
        sa.Column("quote", _time(), nullable=True),
        sa.Column("error_type", sa.String(16), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("results", sa.Text(), nullable=False),
        sa.Column("progress", sa.String(255), nullable=True),
        sa.Column("heartbeat", _time(), nullable=True),
    )
    op.create_index("tap_uws_job_phase", "tap_uws_job", ["phase"])
    op.create_index("tap_uws_job_creation", "tap_uws_job", ["creation_time"])
    op.create_index("tap_uws_job_destruction", "tap_uws_job", ["destruction_time"])


def downgrade() -> None:
    op.drop_table("tap_uws_job")
