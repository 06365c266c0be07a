"""Speed at scale: the wallboard from index reads and kept counts, not today's report.

The queue's first rows per state and priority in deadline order, and today's SLA counts
of the facts, each read from an index that holds what it needs. On SQLite the counts
are also kept as they change — open cases per tier, and the facts' first answers per
15 minutes of publication and of first-response deadline — by triggers
(`wallboard_open`, `wallboard_sla`): SQLite
steps through a hundred thousand index entries in tens of milliseconds, and its single
writer makes a counter row no bottleneck. PostgreSQL counts from the indexes (fast
there), and keeps no counter rows, which every concurrent transaction would queue on.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

# The facts of cases still waiting for a first answer (not dismissed).
_WAITING_ROWS = "first_answer_at IS NULL AND dismissed_at IS NULL"
_OPEN = "('new', 'claimed', 'answered', 'reopened')"
# A facts row's quarter hour of publication and its first-answer class.
_QUARTER = "CAST(strftime('%s', {r}.published_at) AS INTEGER) / 900"
_DUE_QUARTER = "CAST(strftime('%s', {r}.response_due_at) AS INTEGER) / 900"
_MET = "({r}.first_answer_at IS NOT NULL AND {r}.first_answer_at <= {r}.response_due_at)"
_LATE = "({r}.first_answer_at IS NOT NULL AND {r}.first_answer_at > {r}.response_due_at)"
_WAITING = "({r}.first_answer_at IS NULL AND {r}.dismissed_at IS NULL)"
_DISMISSED_LATE = ("({r}.first_answer_at IS NULL AND {r}.dismissed_at IS NOT NULL "
                   "AND {r}.dismissed_at > {r}.response_due_at)")


def _open(r: str, sign: str) -> str:
    return (f"INSERT INTO wallboard_open (tier, open) SELECT {r}.tier, {sign}1 "
            f"WHERE {r}.state IN {_OPEN} ON CONFLICT (tier) DO UPDATE SET "
            f"open = open + excluded.open;")


def _sla(r: str, sign: str) -> str:
    values = ", ".join(f"{sign}({c.format(r=r)})"
                       for c in (_MET, _LATE, _WAITING, _DISMISSED_LATE))
    return (f"INSERT INTO wallboard_sla (quarter, due_quarter, met, late, waiting, "
            f"dismissed_late) VALUES ({_QUARTER.format(r=r)}, {_DUE_QUARTER.format(r=r)}, "
            f"{values}) ON CONFLICT (quarter, due_quarter) DO UPDATE SET "
            f"met = met + excluded.met, late = late + excluded.late, "
            f"waiting = waiting + excluded.waiting, "
            f"dismissed_late = dismissed_late + excluded.dismissed_late;")


_TRIGGERS = {
    "wallboard_open_insert": f"AFTER INSERT ON cases BEGIN {_open('NEW', '+')} END",
    "wallboard_open_update": (f"AFTER UPDATE OF state, tier ON cases BEGIN {_open('OLD', '-')} "
                              f"{_open('NEW', '+')} END"),
    "wallboard_open_delete": f"AFTER DELETE ON cases BEGIN {_open('OLD', '-')} END",
    "wallboard_sla_insert": f"AFTER INSERT ON case_facts BEGIN {_sla('NEW', '+')} END",
    "wallboard_sla_update": (f"AFTER UPDATE ON case_facts BEGIN {_sla('OLD', '-')} "
                             f"{_sla('NEW', '+')} END"),
    "wallboard_sla_delete": f"AFTER DELETE ON case_facts BEGIN {_sla('OLD', '-')} END",
}


def upgrade() -> None:
    op.create_index("ix_cases_queue", "cases", ["state", "priority", "response_due_at", "id"])
    op.create_index("ix_cases_state_tier", "cases", ["state", "tier"])
    op.create_index("ix_case_facts_sla", "case_facts",
                    ["published_at", "first_answer_at", "response_due_at", "dismissed_at"])
    op.create_index("ix_case_facts_waiting", "case_facts", ["response_due_at", "published_at"],
                    postgresql_where=sa.text(_WAITING_ROWS), sqlite_where=sa.text(_WAITING_ROWS))
    op.create_table(
        "wallboard_open",
        sa.Column("tier", sa.String(16), primary_key=True),
        sa.Column("open", sa.Integer, nullable=False),
    )
    op.create_table(
        "wallboard_sla",
        sa.Column("quarter", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("due_quarter", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("met", sa.Integer, nullable=False),
        sa.Column("late", sa.Integer, nullable=False),
        sa.Column("waiting", sa.Integer, nullable=False),
        sa.Column("dismissed_late", sa.Integer, nullable=False),
    )
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute(f"INSERT INTO wallboard_open (tier, open) SELECT tier, count(*) FROM cases "
               f"WHERE state IN {_OPEN} GROUP BY tier")
    classes = ", ".join(f"sum({c.format(r='f')})"
                        for c in (_MET, _LATE, _WAITING, _DISMISSED_LATE))
    op.execute(f"INSERT INTO wallboard_sla (quarter, due_quarter, met, late, waiting, "
               f"dismissed_late) SELECT {_QUARTER.format(r='f')} AS q, "
               f"{_DUE_QUARTER.format(r='f')} AS d, {classes} FROM case_facts AS f "
               f"GROUP BY q, d")
    for name, body in _TRIGGERS.items():
        op.execute(f"CREATE TRIGGER {name} {body}")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in _TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.drop_table("wallboard_sla")
    op.drop_table("wallboard_open")
    op.drop_index("ix_case_facts_waiting", table_name="case_facts")
    op.drop_index("ix_case_facts_sla", table_name="case_facts")
    op.drop_index("ix_cases_state_tier", table_name="cases")
    op.drop_index("ix_cases_queue", table_name="cases")
