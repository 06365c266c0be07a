"""Announcements: their copies per place, Got it receipts, cases answered with them.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from socialcare.storage.schema import Id, Json, UTCDateTime

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "announcements",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("author", sa.String(128), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("until", UTCDateTime()),
        sa.Column("audiences", Json, nullable=False),
        sa.Column("keywords", Json, nullable=False),
        sa.Column("topics", Json, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("corrected_at", UTCDateTime()),
        sa.Column("ended_at", UTCDateTime()),
        sa.Column("ended_by", sa.String(128)),
        sa.Column("reminded_at", UTCDateTime()),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_announcements"),
    )
    op.create_index("ix_announcements_state_until", "announcements", ["state", "until"])
    op.create_index("ix_announcements_created_at", "announcements", ["created_at"])
    op.create_table(
        "announcement_copies",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("announcement_id", Id, nullable=False),
        sa.Column("audience", sa.String(64), nullable=False),
        sa.Column("outlet", sa.String(16), nullable=False),
        sa.Column("address", sa.String(512), nullable=False),
        sa.Column("message_id", sa.String(64)),
        sa.Column("pinned", sa.Boolean(), nullable=False),
        sa.Column("revision_sent", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text()),
        sa.Column("delivered_at", UTCDateTime()),
        sa.Column("gave_up_at", UTCDateTime()),
        sa.Column("posting_since", UTCDateTime()),
        sa.Column("leased_until", UTCDateTime()),
        sa.Column("next_try_at", UTCDateTime()),
        sa.Column("changes", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_announcement_copies"),
        sa.ForeignKeyConstraint(["announcement_id"], ["announcements.id"],
                                name="fk_announcement_copies_announcement_id_announcements"),
        sa.UniqueConstraint("announcement_id", "outlet", "address",
                            name="uq_announcement_copies_announcement_id_outlet_address"),
    )
    op.create_index("ix_announcement_copies_next_try_at", "announcement_copies",
                    ["next_try_at"])
    op.create_table(
        "announcement_receipts",
        sa.Column("announcement_id", Id, nullable=False),
        sa.Column("messenger", sa.String(16), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("announcement_id", "messenger", "user_id",
                                name="pk_announcement_receipts"),
        sa.ForeignKeyConstraint(["announcement_id"], ["announcements.id"],
                                name="fk_announcement_receipts_announcement_id_announcements"),
    )
    op.create_table(
        "announcement_answers",
        sa.Column("announcement_id", Id, nullable=False),
        sa.Column("case_id", Id, nullable=False),
        sa.Column("by", sa.String(128), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("announcement_id", "case_id", name="pk_announcement_answers"),
        sa.ForeignKeyConstraint(["announcement_id"], ["announcements.id"],
                                name="fk_announcement_answers_announcement_id_announcements"),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"],
                                name="fk_announcement_answers_case_id_cases"),
    )
    op.create_table(
        "announcement_events",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("announcement_id", Id, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(256), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("data", Json, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_announcement_events"),
        sa.ForeignKeyConstraint(["announcement_id"], ["announcements.id"],
                                name="fk_announcement_events_announcement_id_announcements"),
    )
    op.create_index("ix_announcement_events_announcement_id_id", "announcement_events",
                    ["announcement_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_announcement_events_announcement_id_id", table_name="announcement_events")
    op.drop_table("announcement_events")
    op.drop_table("announcement_answers")
    op.drop_table("announcement_receipts")
    op.drop_index("ix_announcement_copies_next_try_at", table_name="announcement_copies")
    op.drop_table("announcement_copies")
    op.drop_index("ix_announcements_created_at", table_name="announcements")
    op.drop_index("ix_announcements_state_until", table_name="announcements")
    op.drop_table("announcements")
