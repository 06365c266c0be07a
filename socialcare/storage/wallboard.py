"""The wallboard's kept counts: open cases per tier, and the facts' first answers per
quarter hour of publication and minute of deadline.

Triggers (migration 0021) append a row of changes for each change that moves a count;
a count is the sum of its rows. `fold` now and then replaces the rows by one per key:
it deletes the rows it sums (`DELETE … RETURNING`), so that two folds at once, or a
fold beside new changes, count every change once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import delete, func, insert, select

from socialcare.bot.model import Tier
from socialcare.storage.schema import wallboard_open, wallboard_sla

if TYPE_CHECKING:
    # Not at run time: `socialcare cases` reads through a blocking connection.
    from sqlalchemy.ext.asyncio import AsyncConnection

# Fold once a table holds more rows of changes than this.
FOLD_ROWS = 2_000
QUARTER_SECONDS = 900
_SLA = ("met", "late", "waiting", "dismissed_late")


def quarter(moment: datetime) -> int:
    """Return the quarter hour of a moment, counted from the Unix epoch (as the triggers
    count a case's publication)."""
    return int(moment.timestamp()) // QUARTER_SECONDS


def minute(moment: datetime) -> int:
    """Return the minute of a moment, counted from the Unix epoch (as the triggers count
    a case's deadline)."""
    return int(moment.timestamp()) // 60


@dataclass(frozen=True)
class SlaSums:
    """A period's facts by first-answer class; `waiting_later`: those waiting with a
    deadline after the given minute."""

    met: int
    late: int
    waiting: int
    dismissed_late: int
    waiting_later: int


async def open_counts(conn: AsyncConnection) -> dict[Tier, int]:
    """Return the open cases per tier."""
    rows = await conn.execute(select(wallboard_open.c.tier, func.sum(wallboard_open.c.open))
                              .group_by(wallboard_open.c.tier))
    return {Tier(tier): int(count) for tier, count in rows if count}


async def sla_sums(conn: AsyncConnection, start: datetime, end: datetime, *,
                   after: int) -> SlaSums:
    """Return the counts of the facts published in [start, end) (quarter-hour bounds)."""
    w = wallboard_sla.c
    row = (await conn.execute(
        select(*(func.sum(w[name]) for name in _SLA),
               func.sum(w.waiting).filter(w.due_minute > after))
        .where(w.quarter >= quarter(start), w.quarter < quarter(end)))).one()
    return SlaSums(*(int(value or 0) for value in row))


async def fold(conn: AsyncConnection, *, above: int = FOLD_ROWS) -> None:
    """Fold each table's rows into one per key, if it holds more than `above` rows (both
    counted in one statement: the board folds before each build)."""
    tables = ((wallboard_open, ("tier",), ("open",)),
              (wallboard_sla, ("quarter", "due_minute"), _SLA))
    counts = (await conn.execute(select(*(
        select(func.count()).select_from(select(table.c.id).limit(above + 1).subquery())
        .scalar_subquery() for table, _, _ in tables)))).one()
    for (table, keys, values), many in zip(tables, counts, strict=True):
        if not many or many <= above:
            continue
        gone = await conn.execute(delete(table).returning(
            *(table.c[k] for k in keys), *(table.c[v] for v in values)))
        sums: dict[tuple[object, ...], list[int]] = {}
        for row in gone:
            key = tuple(row[:len(keys)])
            counts = sums.setdefault(key, [0] * len(values))
            for i, value in enumerate(row[len(keys):]):
                counts[i] += int(value)
        folded = _rows(sums, keys, values)
        if folded:
            await conn.execute(insert(table), folded)


def _rows(sums: dict[tuple[object, ...], list[int]], keys: Sequence[str],
          values: Sequence[str]) -> list[dict[str, object]]:
    return [{**dict(zip(keys, key, strict=True)), **dict(zip(values, counts, strict=True))}
            for key, counts in sums.items() if any(counts)]
