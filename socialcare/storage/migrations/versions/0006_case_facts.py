"""Case facts: the read model the reports aggregate, filled from the existing events.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from socialcare.bot.model import Event, EventKind
from socialcare.storage.facts import rows_for
from socialcare.storage.schema import Id, UTCDateTime, case_facts, events

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None
BATCH = 2000


def upgrade() -> None:
    op.create_table(
        "case_facts",
        sa.Column("case_id", Id, nullable=False),
        sa.Column("tier", sa.String(16), nullable=False),
        sa.Column("platform", sa.String(64), nullable=False),
        sa.Column("brand", sa.String(200), nullable=False),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("published_at", UTCDateTime(), nullable=False),
        sa.Column("collected_at", UTCDateTime(), nullable=False),
        sa.Column("response_due_at", UTCDateTime(), nullable=False),
        sa.Column("standing", sa.String(16), nullable=False),
        sa.Column("first_answer_at", UTCDateTime()),
        sa.Column("first_answer_by", sa.String(256)),
        sa.Column("resolved_at", UTCDateTime()),
        sa.Column("messages_to_resolve", sa.Integer),
        sa.Column("second_line_seconds", sa.Float, nullable=False),
        sa.Column("with_second_line_since", UTCDateTime()),
        sa.PrimaryKeyConstraint("case_id", name="pk_case_facts"),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name="fk_case_facts_case_id_cases"),
    )
    op.create_index("ix_case_facts_published_at", "case_facts", ["published_at"])
    _backfill()


def _backfill() -> None:
    """Establish the facts of the cases stored before this table existed."""
    bind = op.get_bind()
    histories: dict[int, list[Event]] = {}
    for row in bind.execute(sa.select(events).order_by(events.c.case_id, events.c.id)):
        if histories and row.case_id not in histories and len(histories) >= BATCH:
            bind.execute(sa.insert(case_facts), rows_for(histories))
            histories = {}
        histories.setdefault(row.case_id, []).append(Event(
            case_id=row.case_id, kind=EventKind(row.kind), actor=row.actor, at=row.at,
            data=row.data, id=row.id))
    if histories:
        bind.execute(sa.insert(case_facts), rows_for(histories))


def downgrade() -> None:
    op.drop_table("case_facts")
