"""Nothing lost, nothing doubled: the inbox counts failed tries and keeps rows of a
source a worker does not know; rows that cannot be stored go to a dead-letter table;
cards count post attempts whose answer was lost.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from socialcare.storage.schema import Id, Json, UTCDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("inbox") as batch:
        batch.add_column(sa.Column("tries", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("last_error", sa.Text()))
        batch.add_column(sa.Column("unknown_source_since", UTCDateTime()))
    op.create_table(
        "inbox_dead_letters",
        sa.Column("id", Id, autoincrement=False, nullable=False),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("mention", Json, nullable=False),
        sa.Column("queued_at", UTCDateTime(), nullable=False),
        sa.Column("tries", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("set_aside_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_inbox_dead_letters"),
    )
    with op.batch_alter_table("cards") as batch:
        batch.add_column(sa.Column("unsure_posts", sa.Integer(), nullable=False,
                                   server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("cards") as batch:
        batch.drop_column("unsure_posts")
    op.drop_table("inbox_dead_letters")
    with op.batch_alter_table("inbox") as batch:
        batch.drop_column("unknown_source_since")
        batch.drop_column("last_error")
        batch.drop_column("tries")
