"""Incident replies survive a stopped process, and the follow-up is tracked per case:
`incident_cases` gets `follow_up`, `follow_up_at` and `sending_at` (the send's lease).
Incident detection counts cases by when their customers published: `case_topics` and
`case_places` keep the case's publication time instead of its collection time.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from socialcare.storage.schema import UTCDateTime

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

_LABELS = (("case_topics", "topic"), ("case_places", "place"))


def upgrade() -> None:
    with op.batch_alter_table("incident_cases") as linked:
        linked.add_column(sa.Column("follow_up", sa.String(16)))
        linked.add_column(sa.Column("follow_up_at", UTCDateTime()))
        linked.add_column(sa.Column("sending_at", UTCDateTime()))
    # A send left `sending` by an older version may have reached the platform (it was
    # marked just before the call): it is publishing, its lease run out, and the
    # recovery decides from the case's record whether it went out.
    op.execute("UPDATE incident_cases SET reply = 'publishing', sending_at = joined_at "
               "WHERE reply = 'sending'")
    for table, label in _LABELS:
        op.drop_index(f"ix_{table}_{label}_collected_at", table_name=table)
        with op.batch_alter_table(table) as batch:
            batch.alter_column("collected_at", new_column_name="published_at")
        op.execute(f"UPDATE {table} SET published_at = (SELECT c.published_at FROM cases c "
                   f"WHERE c.id = {table}.case_id)")
        op.create_index(f"ix_{table}_{label}_published_at", table, [label, "published_at"])


def downgrade() -> None:
    for table, label in _LABELS:
        op.drop_index(f"ix_{table}_{label}_published_at", table_name=table)
        with op.batch_alter_table(table) as batch:
            batch.alter_column("published_at", new_column_name="collected_at")
        op.execute(f"UPDATE {table} SET collected_at = (SELECT c.collected_at FROM cases c "
                   f"WHERE c.id = {table}.case_id)")
        op.create_index(f"ix_{table}_{label}_collected_at", table, [label, "collected_at"])
    with op.batch_alter_table("incident_cases") as linked:
        linked.drop_column("sending_at")
        linked.drop_column("follow_up_at")
        linked.drop_column("follow_up")
