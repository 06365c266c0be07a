"""Source states: each source's cursor and health.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from socialcare.storage.schema import Json, UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "source_states",
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("cursor", Json, nullable=False),
        sa.Column("last_success_at", UTCDateTime()),
        sa.Column("last_error_at", UTCDateTime()),
        sa.Column("last_error", sa.Text),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("items_found", sa.BigInteger, nullable=False),
        sa.Column("last_item_at", UTCDateTime()),
        sa.Column("lag_seconds", sa.Float),
        sa.Column("next_poll_at", UTCDateTime()),
        sa.Column("alert", sa.String(16), nullable=False),
        sa.Column("note", sa.Text),
        sa.Column("version", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_source_states"),
    )


def downgrade() -> None:
    op.drop_table("source_states")
