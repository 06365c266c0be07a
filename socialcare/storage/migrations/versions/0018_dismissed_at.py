"""Case facts keep when a case standing dismissed was dismissed (a case dismissed
unanswered before its deadline is neither met nor missed), and the first answer is
the earliest by its time, not the first recorded.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from socialcare.storage.schema import UTCDateTime

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def _seconds(later: str, earlier: str, dialect: str) -> str:
    if dialect == "postgresql":
        return f"EXTRACT(EPOCH FROM {later} - {earlier})"
    return f"(julianday({later}) - julianday({earlier})) * 86400.0"


def upgrade() -> None:
    with op.batch_alter_table("case_facts") as facts:
        facts.add_column(sa.Column("dismissed_at", UTCDateTime()))
    dialect = op.get_bind().dialect.name
    op.execute(
        "UPDATE case_facts SET dismissed_at = (SELECT MAX(e.at) FROM events e "
        "WHERE e.case_id = case_facts.case_id AND e.kind = 'dismissed') "
        "WHERE standing = 'dismissed'")
    earliest = ("(SELECT e.{column} FROM events e WHERE e.case_id = case_facts.case_id "
                "AND e.kind = 'agent_message' ORDER BY e.at, e.id LIMIT 1)")
    op.execute(
        f"UPDATE case_facts SET first_answer_at = {earliest.format(column='at')}, "
        f"first_answer_by = {earliest.format(column='actor')} "
        "WHERE first_answer_at IS NOT NULL")
    op.execute("UPDATE case_facts SET reaction_seconds = "
               f"{_seconds('first_answer_at', 'published_at', dialect)} "
               "WHERE first_answer_at IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table("case_facts") as facts:
        facts.drop_column("dismissed_at")
