"""Case facts keep the durations reports sort: reaction, collector lag, resolution.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def _seconds(later: str, earlier: str, dialect: str) -> str:
    if dialect == "postgresql":
        return f"EXTRACT(EPOCH FROM {later} - {earlier})"
    return f"(julianday({later}) - julianday({earlier})) * 86400.0"


def upgrade() -> None:
    with op.batch_alter_table("case_facts") as facts:
        facts.add_column(sa.Column("reaction_seconds", sa.Float))
        facts.add_column(sa.Column("lag_seconds", sa.Float))
        facts.add_column(sa.Column("resolution_seconds", sa.Float))
    dialect = op.get_bind().dialect.name
    op.execute(
        "UPDATE case_facts SET "
        f"reaction_seconds = {_seconds('first_answer_at', 'published_at', dialect)}, "
        f"lag_seconds = MAX(0, {_seconds('collected_at', 'published_at', dialect)}), "
        f"resolution_seconds = {_seconds('resolved_at', 'published_at', dialect)}"
        if dialect == "sqlite" else
        "UPDATE case_facts SET "
        f"reaction_seconds = {_seconds('first_answer_at', 'published_at', dialect)}, "
        f"lag_seconds = GREATEST(0, {_seconds('collected_at', 'published_at', dialect)}), "
        f"resolution_seconds = {_seconds('resolved_at', 'published_at', dialect)}"
    )


def downgrade() -> None:
    with op.batch_alter_table("case_facts") as facts:
        facts.drop_column("resolution_seconds")
        facts.drop_column("lag_seconds")
        facts.drop_column("reaction_seconds")
