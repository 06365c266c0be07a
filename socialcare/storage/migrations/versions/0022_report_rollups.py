"""Speed at scale: `/report` from roll-ups kept by triggers, not a month's sorts.

The tables and their SQL are described in `socialcare.storage.rollups`. On PostgreSQL
statement triggers on case_facts append the rows of changes (over the transition
tables, once a statement); the facts' durations get indexes, for the exact values of a
percentile's neighbouring ranks, and the worst breaches two partial ones. SQLite gets
the (unused) tables and indexes only: it aggregates in Python.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from socialcare.storage import rollups
from socialcare.storage.schema import Id

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

_TRIGGERS = {
    "INSERT": "REFERENCING NEW TABLE AS new_rows",
    "UPDATE": "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows",
    "DELETE": "REFERENCING OLD TABLE AS old_rows",
}
_DURATIONS = ("reaction_seconds", "lag_seconds", "resolution_seconds")
_FRESH = sa.text("NOT folded")
# The worst breaches, read from their worst end: answered late, by the lateness; not
# answered (nor dismissed in time), by the deadline.
_WORST = (
    ("ix_case_facts_late", [sa.text("(first_answer_at - response_due_at) DESC"), "case_id"],
     "first_answer_at > response_due_at"),
    ("ix_case_facts_unanswered", ["response_due_at", "case_id"],
     "first_answer_at IS NULL AND (dismissed_at IS NULL OR dismissed_at > response_due_at)"),
)


def _name(event: str) -> str:
    return f"report_rollups_{event.lower()}"


def upgrade() -> None:
    def keys() -> list[sa.Column[str]]:
        return [sa.Column("dimension", sa.String(16), nullable=False),
                sa.Column("key", sa.String(256), nullable=False)]

    def folded() -> sa.Column[bool]:
        return sa.Column("folded", sa.Boolean, nullable=False, server_default=sa.false())

    op.create_table(
        "report_counts",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("quarter", sa.BigInteger, nullable=False), *keys(),
        *(sa.Column(name, sa.Integer, nullable=False) for name in rollups.COUNTS),
        folded(),
    )
    op.create_table(
        "report_durations",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("hour", sa.BigInteger, nullable=False), *keys(),
        sa.Column("measure", sa.String(16), nullable=False),
        sa.Column("bucket", sa.Integer, nullable=False),
        sa.Column("n", sa.Integer, nullable=False), folded(),
        sa.Column("span", sa.Integer, nullable=False),
    )
    for table, unit in (("report_counts", "quarter"), ("report_durations", "hour")):
        op.create_index(f"ix_{table}_{unit}", table, [unit])
        op.create_index(f"ix_{table}_fresh", table, ["id"], postgresql_where=_FRESH,
                        sqlite_where=_FRESH)
    for column in _DURATIONS:
        op.create_index(f"ix_case_facts_{column}", "case_facts", [column])
    for name, columns, where in _WORST:
        op.create_index(name, "case_facts", columns, postgresql_where=sa.text(where),
                        sqlite_where=sa.text(where))
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(rollups.count_changes("case_facts", ""))
    op.execute(rollups.duration_changes("case_facts", ""))
    for event, body in rollups.trigger_bodies().items():
        op.execute(f"CREATE FUNCTION {_name(event)}() RETURNS trigger LANGUAGE plpgsql AS "
                   f"$$ BEGIN {body}; RETURN NULL; END $$")
        op.execute(f"CREATE TRIGGER {_name(event)} AFTER {event} ON case_facts "
                   f"{_TRIGGERS[event]} FOR EACH STATEMENT EXECUTE FUNCTION {_name(event)}()")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for event in _TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {_name(event)} ON case_facts")
            op.execute(f"DROP FUNCTION IF EXISTS {_name(event)}()")
    for column in _DURATIONS:
        op.drop_index(f"ix_case_facts_{column}", table_name="case_facts")
    for name, _, _ in _WORST:
        op.drop_index(name, table_name="case_facts")
    op.drop_table("report_durations")
    op.drop_table("report_counts")
