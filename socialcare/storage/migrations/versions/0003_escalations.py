"""Escalations, their cases and events; notices; cards that show an escalation.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from socialcare.storage.schema import Id, Json, UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "escalations",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("category", sa.String(16), nullable=False),
        sa.Column("problem", sa.Text, nullable=False),
        sa.Column("options", Json, nullable=False),
        sa.Column("director", sa.String(128), nullable=False),
        sa.Column("raised_by", sa.String(128), nullable=False),
        sa.Column("raised_at", UTCDateTime(), nullable=False),
        sa.Column("assigned_at", UTCDateTime(), nullable=False),
        sa.Column("area", sa.String(128)),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("acknowledged_at", UTCDateTime()),
        sa.Column("decided_at", UTCDateTime()),
        sa.Column("decided_by", sa.String(128)),
        sa.Column("decision", sa.Text),
        sa.Column("closed_at", UTCDateTime()),
        sa.Column("next_ping_at", UTCDateTime()),
        sa.Column("pings", sa.Integer, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_escalations"),
    )
    op.create_index("ix_escalations_next_ping_at", "escalations", ["next_ping_at"])
    op.create_index("ix_escalations_raised_at", "escalations", ["raised_at"])
    op.create_table(
        "escalation_cases",
        sa.Column("escalation_id", Id, nullable=False),
        sa.Column("case_id", Id, nullable=False),
        sa.PrimaryKeyConstraint("escalation_id", "case_id", name="pk_escalation_cases"),
        sa.ForeignKeyConstraint(["escalation_id"], ["escalations.id"],
                                name="fk_escalation_cases_escalation_id_escalations"),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"],
                                name="fk_escalation_cases_case_id_cases"),
    )
    op.create_index("ix_escalation_cases_case_id", "escalation_cases", ["case_id"])
    op.create_table(
        "escalation_events",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("escalation_id", Id, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(256), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("data", Json, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_escalation_events"),
        sa.ForeignKeyConstraint(["escalation_id"], ["escalations.id"],
                                name="fk_escalation_events_escalation_id_escalations"),
    )
    op.create_index("ix_escalation_events_escalation_id_id", "escalation_events",
                    ["escalation_id", "id"])
    op.create_table(
        "notices",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("messenger", sa.String(16), nullable=False),
        sa.Column("recipient", sa.String(64), nullable=False),
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("params", Json, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("claimed_at", UTCDateTime()),
        sa.Column("sent_at", UTCDateTime()),
        sa.PrimaryKeyConstraint("id", name="pk_notices"),
    )
    op.create_index("ix_notices_sent_at_claimed_at", "notices", ["sent_at", "claimed_at"])
    with op.batch_alter_table("cards") as cards:
        cards.alter_column("case_id", existing_type=Id, nullable=True)
        cards.add_column(sa.Column("escalation_id", Id))
        cards.create_foreign_key("fk_cards_escalation_id_escalations", "escalations",
                                 ["escalation_id"], ["id"])
        cards.create_unique_constraint("uq_cards_escalation_id_messenger_channel",
                                       ["escalation_id", "messenger", "channel"])


def downgrade() -> None:
    with op.batch_alter_table("cards") as cards:
        cards.drop_constraint("uq_cards_escalation_id_messenger_channel", type_="unique")
        cards.drop_constraint("fk_cards_escalation_id_escalations", type_="foreignkey")
        cards.drop_column("escalation_id")
        cards.alter_column("case_id", existing_type=Id, nullable=False)
    op.drop_table("notices")
    op.drop_table("escalation_events")
    op.drop_table("escalation_cases")
    op.drop_table("escalations")
