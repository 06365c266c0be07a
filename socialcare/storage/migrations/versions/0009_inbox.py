"""Inbox: mentions handed from collecting processes to the workers.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from socialcare.storage.schema import Id, Json, UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inbox",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("mention", Json, nullable=False),
        sa.Column("queued_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_inbox"),
    )
    op.create_index("ix_inbox_queued_at", "inbox", ["queued_at"])


def downgrade() -> None:
    op.drop_index("ix_inbox_queued_at", table_name="inbox")
    op.drop_table("inbox")
