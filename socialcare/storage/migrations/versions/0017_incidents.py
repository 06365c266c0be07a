"""Incidents: a surge of one topic (in one place), its cases and its timeline.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from socialcare.storage.schema import Id, Json, UTCDateTime

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "incidents",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("topic", sa.String(64), nullable=False),
        sa.Column("place", sa.String(64)),
        sa.Column("open_key", sa.String(140)),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("explanation", Json, nullable=False),
        sa.Column("first_mention_at", UTCDateTime(), nullable=False),
        sa.Column("detected_at", UTCDateTime(), nullable=False),
        sa.Column("acknowledged_at", UTCDateTime()),
        sa.Column("answered_at", UTCDateTime()),
        sa.Column("answer", sa.Text()),
        sa.Column("answered_by", sa.String(128)),
        sa.Column("announcement_id", Id),
        sa.Column("resolved_at", UTCDateTime()),
        sa.Column("resolved_by", sa.String(128)),
        sa.Column("follow_up", sa.Text()),
        sa.Column("escalation_id", Id),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_incidents"),
        sa.UniqueConstraint("open_key", name="uq_incidents_open_key"),
    )
    op.create_index("ix_incidents_state_detected_at", "incidents", ["state", "detected_at"])
    op.create_table(
        "incident_cases",
        sa.Column("incident_id", Id, nullable=False),
        sa.Column("case_id", Id, nullable=False),
        sa.Column("joined_at", UTCDateTime(), nullable=False),
        sa.Column("joined_by", sa.String(128), nullable=False),
        sa.Column("removed_at", UTCDateTime()),
        sa.Column("reply", sa.String(16)),
        sa.Column("replied_at", UTCDateTime()),
        sa.Column("closed_at", UTCDateTime()),
        sa.PrimaryKeyConstraint("incident_id", "case_id", name="pk_incident_cases"),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"],
                                name="fk_incident_cases_incident_id_incidents"),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"],
                                name="fk_incident_cases_case_id_cases"),
    )
    op.create_index("ix_incident_cases_case_id", "incident_cases", ["case_id"])
    op.create_table(
        "incident_events",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("incident_id", Id, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(256), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("data", Json, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_incident_events"),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"],
                                name="fk_incident_events_incident_id_incidents"),
    )
    op.create_index("ix_incident_events_incident_id_id", "incident_events",
                    ["incident_id", "id"])


def downgrade() -> None:
    op.drop_table("incident_events")
    op.drop_table("incident_cases")
    op.drop_table("incidents")
