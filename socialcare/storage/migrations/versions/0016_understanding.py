"""Understanding: each case's language, topics and places; the facts' language and
topics; case_topics and case_places for breakdowns and incident detection.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from socialcare.storage.schema import Id, UTCDateTime

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def _labels(table: str, column: str, indexes: list[list[str]]) -> None:
    op.create_table(
        table,
        sa.Column("case_id", Id, nullable=False),
        sa.Column(column, sa.String(64), nullable=False),
        sa.Column("collected_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("case_id", column, name=f"pk_{table}"),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=f"fk_{table}_case_id_cases"),
    )
    for columns in indexes:
        op.create_index(f"ix_{table}_{'_'.join(columns)}", table, columns)


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("language", sa.String(8)))
        batch.add_column(sa.Column("topics", sa.String(1000), nullable=False,
                                   server_default=""))
        batch.add_column(sa.Column("places", sa.String(1000), nullable=False,
                                   server_default=""))
    with op.batch_alter_table("case_facts") as batch:
        batch.add_column(sa.Column("language", sa.String(8)))
        batch.add_column(sa.Column("topics", sa.String(1000), nullable=False,
                                   server_default=""))
    _labels("case_topics", "topic", [["topic", "collected_at"]])
    _labels("case_places", "place", [["place", "collected_at"]])


def downgrade() -> None:
    op.drop_table("case_places")
    op.drop_table("case_topics")
    with op.batch_alter_table("case_facts") as batch:
        batch.drop_column("topics")
        batch.drop_column("language")
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("places")
        batch.drop_column("topics")
        batch.drop_column("language")
