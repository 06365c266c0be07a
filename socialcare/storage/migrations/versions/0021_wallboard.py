"""Speed at scale: the wallboard from kept counts and index reads, not today's report.

The queue's head is read per state and priority in deadline order (`ix_cases_queue`).
The counts — open cases per tier; the facts' first answers per quarter hour of
publication and minute of first-response deadline — are kept by triggers as rows of changes
(+1 here, −1 there), appended, never updated: no transaction waits for another on a
counter row. Reading sums them; `socialcare.storage.wallboard` folds them into one row
per key now and then.

PostgreSQL's triggers run once a statement over its transition tables (a batch of a
hundred cases is one insert of changes); SQLite's once a row.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

# The facts of cases still waiting for a first answer (not dismissed).
_WAITING_ROWS = "first_answer_at IS NULL AND dismissed_at IS NULL"
_OPEN = "('new', 'claimed', 'answered', 'reopened')"
# A facts row's first-answer classes.
_CLASSES = (
    "({r}.first_answer_at IS NOT NULL AND {r}.first_answer_at <= {r}.response_due_at)",
    "({r}.first_answer_at IS NOT NULL AND {r}.first_answer_at > {r}.response_due_at)",
    "({r}.first_answer_at IS NULL AND {r}.dismissed_at IS NULL)",
    "({r}.first_answer_at IS NULL AND {r}.dismissed_at IS NOT NULL "
    "AND {r}.dismissed_at > {r}.response_due_at)",
)
_SLA_COLUMNS = "quarter, due_minute, met, late, waiting, dismissed_late"


def _quarters(dialect: str, r: str) -> tuple[str, str]:
    """The quarter hour of publication and the minute of the deadline, from the epoch."""
    if dialect == "sqlite":
        epoch = "CAST(strftime('%s', {r}.{c}) AS INTEGER) / {n}"
    else:
        epoch = "CAST(floor(date_part('epoch', {r}.{c}) / {n}) AS bigint)"
    return (epoch.format(r=r, c="published_at", n=900),
            epoch.format(r=r, c="response_due_at", n=60))


def _sla_changes(dialect: str, r: str, sign: str) -> str:
    """SELECT the changes of the facts rows `r` (`sign` +1 or -1), one row each."""
    quarter, due = _quarters(dialect, r)
    cast = "CAST({} AS integer)" if dialect == "postgresql" else "({})"
    classes = ", ".join(f"{sign}{cast.format(c.format(r=r))}" for c in _CLASSES)
    return f"SELECT {quarter}, {due}, {classes}"


# SQLite: a trigger a row; an update that changes no count appends nothing.
_SQLITE_OPEN_WHEN = f"(OLD.state IN {_OPEN}) <> (NEW.state IN {_OPEN}) OR OLD.tier <> NEW.tier"


def _sqlite_triggers() -> dict[str, str]:
    def opened(r: str, sign: str) -> str:
        return (f"INSERT INTO wallboard_open (tier, open) SELECT {r}.tier, {sign}1 "
                f"WHERE {r}.state IN {_OPEN};")

    def sla(r: str, sign: str) -> str:
        return f"INSERT INTO wallboard_sla ({_SLA_COLUMNS}) {_sla_changes('sqlite', r, sign)};"

    same = " AND ".join(f"{c.format(r='OLD')} IS {c.format(r='NEW')}" for c in _CLASSES)
    quarter_old, due_old = _quarters("sqlite", "OLD")
    quarter_new, due_new = _quarters("sqlite", "NEW")
    unchanged = f"{same} AND {quarter_old} = {quarter_new} AND {due_old} = {due_new}"
    return {
        "wallboard_open_insert": f"AFTER INSERT ON cases BEGIN {opened('NEW', '+')} END",
        "wallboard_open_update": (f"AFTER UPDATE OF state, tier ON cases WHEN "
                                  f"{_SQLITE_OPEN_WHEN} BEGIN {opened('OLD', '-')} "
                                  f"{opened('NEW', '+')} END"),
        "wallboard_open_delete": f"AFTER DELETE ON cases BEGIN {opened('OLD', '-')} END",
        "wallboard_sla_insert": f"AFTER INSERT ON case_facts BEGIN {sla('NEW', '+')} END",
        "wallboard_sla_update": (f"AFTER UPDATE ON case_facts WHEN NOT ({unchanged}) "
                                 f"BEGIN {sla('OLD', '-')} {sla('NEW', '+')} END"),
        "wallboard_sla_delete": f"AFTER DELETE ON case_facts BEGIN {sla('OLD', '-')} END",
    }


def _postgresql_functions() -> dict[str, str]:
    """Statement triggers' functions over the transition tables `old_rows`/`new_rows`."""
    def opened(rows: str, sign: str) -> str:
        return (f"INSERT INTO wallboard_open (tier, open) SELECT r.tier, {sign}count(*) "
                f"FROM {rows} AS r WHERE r.state IN {_OPEN} GROUP BY r.tier;")

    def sla(rows: str, sign: str) -> str:
        quarter, due = _quarters("postgresql", "r")
        sums = ", ".join(f"{sign}count(*) FILTER (WHERE {c.format(r='r')})" for c in _CLASSES)
        return (f"INSERT INTO wallboard_sla ({_SLA_COLUMNS}) SELECT {quarter}, {due}, {sums} "
                f"FROM {rows} AS r GROUP BY 1, 2;")

    def function(body: str) -> str:
        return (f"RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN {body} RETURN NULL; END $$")

    # A case updated but still open (or still closed) in the same tier — a claim, a
    # release, an SLA point — changes no count.
    moved = (f"INSERT INTO wallboard_open (tier, open) SELECT tier, sum(d) FROM ("
             f"SELECT o.tier, -1 AS d FROM old_rows o JOIN new_rows n ON n.id = o.id "
             f"WHERE o.state IN {_OPEN} AND NOT (n.state IN {_OPEN} AND n.tier = o.tier) "
             f"UNION ALL SELECT n.tier, 1 FROM old_rows o JOIN new_rows n ON n.id = o.id "
             f"WHERE n.state IN {_OPEN} AND NOT (o.state IN {_OPEN} AND o.tier = n.tier)"
             f") AS x GROUP BY tier;")
    return {
        "wallboard_open_inserted": function(opened("new_rows", "+")),
        "wallboard_open_updated": function(moved),
        "wallboard_open_deleted": function(opened("old_rows", "-")),
        "wallboard_sla_inserted": function(sla("new_rows", "+")),
        "wallboard_sla_updated": function(sla("old_rows", "-") + sla("new_rows", "+")),
        "wallboard_sla_deleted": function(sla("old_rows", "-")),
    }


_POSTGRESQL_TRIGGERS = {
    "wallboard_open_inserted": "AFTER INSERT ON cases REFERENCING NEW TABLE AS new_rows",
    "wallboard_open_updated": ("AFTER UPDATE ON cases REFERENCING OLD TABLE AS old_rows "
                               "NEW TABLE AS new_rows"),
    "wallboard_open_deleted": "AFTER DELETE ON cases REFERENCING OLD TABLE AS old_rows",
    "wallboard_sla_inserted": "AFTER INSERT ON case_facts REFERENCING NEW TABLE AS new_rows",
    "wallboard_sla_updated": ("AFTER UPDATE ON case_facts REFERENCING OLD TABLE AS old_rows "
                              "NEW TABLE AS new_rows"),
    "wallboard_sla_deleted": "AFTER DELETE ON case_facts REFERENCING OLD TABLE AS old_rows",
}


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.create_index("ix_cases_queue", "cases", ["state", "priority", "response_due_at", "id"])
    op.create_index("ix_case_facts_waiting", "case_facts", ["response_due_at", "published_at"],
                    postgresql_where=sa.text(_WAITING_ROWS), sqlite_where=sa.text(_WAITING_ROWS))
    big = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "wallboard_open",
        sa.Column("id", big, primary_key=True, autoincrement=True),
        sa.Column("tier", sa.String(16), nullable=False),
        sa.Column("open", sa.Integer, nullable=False),
    )
    op.create_table(
        "wallboard_sla",
        sa.Column("id", big, primary_key=True, autoincrement=True),
        sa.Column("quarter", sa.BigInteger, nullable=False),
        sa.Column("due_minute", sa.BigInteger, nullable=False),
        sa.Column("met", sa.Integer, nullable=False),
        sa.Column("late", sa.Integer, nullable=False),
        sa.Column("waiting", sa.Integer, nullable=False),
        sa.Column("dismissed_late", sa.Integer, nullable=False),
    )
    op.create_index("ix_wallboard_sla_quarter", "wallboard_sla", ["quarter"])
    op.execute(f"INSERT INTO wallboard_open (tier, open) SELECT tier, count(*) FROM cases "
               f"WHERE state IN {_OPEN} GROUP BY tier")
    quarter, due = _quarters(dialect, "f")
    cast = "CAST({} AS integer)" if dialect == "postgresql" else "({})"
    classes = ", ".join(f"sum({cast.format(c.format(r='f'))})" for c in _CLASSES)
    op.execute(f"INSERT INTO wallboard_sla ({_SLA_COLUMNS}) SELECT {quarter}, {due}, {classes} "
               f"FROM case_facts AS f GROUP BY 1, 2")
    if dialect == "sqlite":
        for name, body in _sqlite_triggers().items():
            op.execute(f"CREATE TRIGGER {name} {body}")
        return
    for name, body in _postgresql_functions().items():
        op.execute(f"CREATE FUNCTION {name}() {body}")
    for name, event in _POSTGRESQL_TRIGGERS.items():
        op.execute(f"CREATE TRIGGER {name} {event} FOR EACH STATEMENT "
                   f"EXECUTE FUNCTION {name}()")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in _sqlite_triggers():
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    else:
        for name, event in _POSTGRESQL_TRIGGERS.items():
            table = event.split(" ON ")[1].split()[0]
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS {name}()")
    op.drop_table("wallboard_sla")
    op.drop_table("wallboard_open")
    op.drop_index("ix_case_facts_waiting", table_name="case_facts")
    op.drop_index("ix_cases_queue", table_name="cases")
