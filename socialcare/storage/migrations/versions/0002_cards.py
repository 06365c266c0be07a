"""Cards: each case's message per channel and messenger, and how far it is in step.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from socialcare.storage.schema import Id, UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cards",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("case_id", Id, nullable=False),
        sa.Column("messenger", sa.String(16), nullable=False),
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("message_id", sa.String(64)),
        sa.Column("fingerprint", sa.String(64)),
        sa.Column("change_seq", sa.Integer, nullable=False),
        sa.Column("synced_seq", sa.Integer, nullable=False),
        sa.Column("due_at", UTCDateTime()),
        sa.Column("rank", sa.Integer, nullable=False),
        sa.Column("deadline", UTCDateTime()),
        sa.Column("posting_since", UTCDateTime()),
        sa.Column("post_attempts", sa.Integer, nullable=False),
        sa.Column("posted_at", UTCDateTime()),
        sa.Column("notified_event_id", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_cards"),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name="fk_cards_case_id_cases"),
        sa.UniqueConstraint("case_id", "messenger", "channel",
                            name="uq_cards_case_id_messenger_channel"),
    )
    op.create_index("ix_cards_due_at", "cards", ["due_at"])
    op.create_index("ix_cards_messenger_channel_message_id", "cards",
                    ["messenger", "channel", "message_id"])


def downgrade() -> None:
    op.drop_table("cards")
