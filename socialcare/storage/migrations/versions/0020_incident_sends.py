"""Incident replies survive a stopped process, and the follow-up is tracked per case:
`incident_cases` gets `follow_up`, `follow_up_at` and `sending_at` (the send's lease).

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


def downgrade() -> None:
    with op.batch_alter_table("incident_cases") as linked:
        linked.drop_column("sending_at")
        linked.drop_column("follow_up_at")
        linked.drop_column("follow_up")
