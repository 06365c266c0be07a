"""The wallboard's kept counts: open cases per tier, and the facts' first answers per
quarter hour of publication and minute of deadline.

Triggers (migration 0021) append a row of changes for each change that moves a count;
a count is the sum of its rows. `fold` now and then replaces the rows by one per key:
it deletes the rows it sums (`DELETE … RETURNING`), so that two folds at once, or a
fold beside new changes, count every change once.

`figures` is every count the board shows, and whether the rows want folding, as one
row of one statement (the board reads it together with the queue's head).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Select, bindparam, delete, func, insert, select, true

from socialcare.bot.model import Tier
from socialcare.bot.reports import Group, Period
from socialcare.storage.schema import case_facts, wallboard_open, wallboard_sla

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
class Figures:
    """The board's counts: open cases per tier, the period's first-response SLA counts
    (`share`), and whether the rows of changes have piled up past `FOLD_ROWS`."""

    open: dict[Tier, int]
    share: Group
    to_fold: bool


async def open_counts(conn: AsyncConnection) -> dict[Tier, int]:
    """Return the open cases per tier."""
    rows = await conn.execute(select(wallboard_open.c.tier, func.sum(wallboard_open.c.open))
                              .group_by(wallboard_open.c.tier))
    return {Tier(tier): int(count) for tier, count in rows if count}


async def sla_share(conn: AsyncConnection, period: Period, *, now: datetime) -> Group:
    """Return how many of the period's cases met, missed and are pending their
    first-response SLA (`socialcare.bot.metrics.sla_met`), from the counts kept per
    quarter hour of publication (the period's bounds are quarter hours) and minute of
    deadline, reading the facts only for the deadlines of this minute still to come
    (`ix_case_facts_waiting`)."""
    row = (await conn.execute(_sla(), sla_parameters(period, now=now))).one()
    return _share(row._mapping)


@functools.cache
def figures() -> Select[Any]:
    """Return a statement of one row: the open cases per tier (`open_<tier>`), a
    period's SLA counts (its parameters: `sla_parameters`), and how many rows of
    changes each table holds, up to `FOLD_ROWS + 1` (`pile_open`, `pile_sla`);
    `read_figures` reads it. Built once."""
    w = wallboard_open.c
    opened = select(*(func.sum(w.open).filter(w.tier == tier.value).label(f"open_{tier.value}")
                      for tier in Tier)).subquery()
    sla = _sla().subquery()
    piles = (select(func.count()).select_from(select(table.c.id).limit(FOLD_ROWS + 1)
                                               .subquery()).scalar_subquery().label(name)
             for name, table in (("pile_open", wallboard_open), ("pile_sla", wallboard_sla)))
    return select(opened, sla, *piles).select_from(opened.join(sla, true()))


def read_figures(values: Mapping[str, Any]) -> Figures:
    """Return the figures of a row that holds the columns of `figures`."""
    open_ = {tier: int(count) for tier in Tier if (count := values[f"open_{tier.value}"])}
    return Figures(open_, _share(values),
                   max(values["pile_open"], values["pile_sla"]) > FOLD_ROWS)


def sla_parameters(period: Period, *, now: datetime) -> dict[str, Any]:
    """Return the parameters of the SLA counts of `period` as of `now`."""
    this_minute = minute(now)
    return {"sla_start": period.start, "sla_end": period.end,
            "sla_first_quarter": quarter(period.start), "sla_end_quarter": quarter(period.end),
            "sla_now": now, "sla_this_minute": this_minute,
            "sla_next_minute": datetime.fromtimestamp((this_minute + 1) * 60, UTC)}


@functools.cache
def _sla() -> Select[Any]:
    """One row: the sums of the period's kept SLA counts, `waiting_later` those waiting
    with a deadline after this minute, and `pending_now` the facts waiting with a
    deadline in the rest of this minute (parameters: `sla_parameters`)."""
    w, f = wallboard_sla.c, case_facts.c
    pending_now = select(func.count()).where(
        f.first_answer_at.is_(None), f.dismissed_at.is_(None),
        f.response_due_at >= bindparam("sla_now"),
        f.response_due_at < bindparam("sla_next_minute"),
        f.published_at >= bindparam("sla_start"),
        f.published_at < bindparam("sla_end")).scalar_subquery()
    sums: list[ColumnElement[Any]] = [func.sum(w[name]).label(name) for name in _SLA]
    return (select(*sums, func.sum(w.waiting).filter(w.due_minute > bindparam("sla_this_minute"))
                   .label("waiting_later"), pending_now.label("pending_now"))
            .where(w.quarter >= bindparam("sla_first_quarter"),
                   w.quarter < bindparam("sla_end_quarter")))


def _share(values: Mapping[str, Any]) -> Group:
    """The SLA counts of a row of `_sla`'s columns."""
    def count(name: str) -> int:
        return int(values[name] or 0)

    pending = count("pending_now") + count("waiting_later")
    # Waiting, dismissed after the deadline: the deadline has passed (a dismissal
    # comes before now), missed.
    return Group("all", met=count("met"),
                 missed=count("late") + count("waiting") - pending + count("dismissed_late"),
                 pending=pending)


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
