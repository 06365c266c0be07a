"""Cases, their mentions and their events.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from socialcare.storage.schema import Id, Json, UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cases",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("brand", sa.String(200), nullable=False),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("platform", sa.String(64), nullable=False),
        sa.Column("tier", sa.String(16), nullable=False),
        sa.Column("priority", sa.String(16), nullable=False),
        sa.Column("thread_key", sa.String(512), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("published_at", UTCDateTime(), nullable=False),
        sa.Column("collected_at", UTCDateTime(), nullable=False),
        sa.Column("claimed_by", sa.String(128)),
        sa.Column("claimed_at", UTCDateTime()),
        sa.Column("first_response_at", UTCDateTime()),
        sa.Column("resolved_at", UTCDateTime()),
        sa.Column("response_cycle", sa.Integer, nullable=False),
        sa.Column("response_started_at", UTCDateTime()),
        sa.Column("response_due_at", UTCDateTime()),
        sa.Column("response_alerts", sa.Integer, nullable=False),
        sa.Column("resolve_due_at", UTCDateTime()),
        sa.Column("resolve_alerts", sa.Integer, nullable=False),
        sa.Column("next_alert_at", UTCDateTime()),
        sa.Column("version", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_cases"),
    )
    op.create_index("ix_cases_state_response_due_at", "cases", ["state", "response_due_at"])
    op.create_index("ix_cases_next_alert_at", "cases", ["next_alert_at"])

    op.create_table(
        "mentions",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("case_id", Id, nullable=False),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("external_id", sa.String(256), nullable=False),
        sa.Column("platform", sa.String(64), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("published_at", UTCDateTime(), nullable=False),
        sa.Column("collected_at", UTCDateTime(), nullable=False),
        sa.Column("thread_key", sa.String(512), nullable=False),
        sa.Column("parent_id", sa.String(256)),
        sa.Column("url", sa.Text),
        sa.Column("author_id", sa.String(256)),
        sa.Column("author_name", sa.String(512)),
        sa.Column("author_handle", sa.String(256)),
        sa.Column("author_url", sa.Text),
        sa.Column("from_brand", sa.Boolean, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_mentions"),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name="fk_mentions_case_id_cases"),
        sa.UniqueConstraint("source", "external_id", name="uq_mentions_source_external_id"),
    )
    op.create_index("ix_mentions_source_thread_key", "mentions", ["source", "thread_key"])
    op.create_index("ix_mentions_case_id", "mentions", ["case_id"])

    op.create_table(
        "events",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("case_id", Id, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(256), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("data", Json, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name="fk_events_case_id_cases"),
    )
    op.create_index("ix_events_case_id_id", "events", ["case_id", "id"])
    op.create_index("ix_events_kind_at", "events", ["kind", "at"])


def downgrade() -> None:
    op.drop_table("events")
    op.drop_table("mentions")
    op.drop_table("cases")
