"""Reports over the case-facts table.

On PostgreSQL the figures are aggregated in SQL — `percentile_cont` is the median and
percentile definition of `socialcare.bot.metrics.quantile` — so that a month of a
million cases never leaves the server. SQLite, which has no percentiles, hands the period's facts
to `socialcare.bot.reports.aggregate`. Both must give the same report.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Float,
    case,
    cast,
    func,
    literal,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import array
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from socialcare.bot.answers.forms import AnswerForm
from socialcare.bot.metrics import CaseFacts, Standing
from socialcare.bot.model import EventKind, Tier
from socialcare.bot.reports import (
    HISTOGRAM_CAP,
    NONE,
    WORST,
    Breach,
    Day,
    Group,
    Period,
    Report,
    Stat,
    aggregate,
)
from socialcare.storage import wallboard
from socialcare.storage.repositories import names
from socialcare.storage.schema import case_facts as f
from socialcare.storage.schema import case_topics, escalations, events

# Facts read and converted at once, between the event loop's turns.
FACTS_AT_ONCE = 100
# Sorting a month of a big team's cases for percentiles wants memory, not disk.
WORK_MEM = "128MB"
# 15 minutes: every timezone's offset is a multiple, so buckets fall into local days.
BUCKET_SECONDS = 900
_DIMENSIONS = {"tier": f.c.tier, "platform": f.c.platform, "brand": f.c.brand,
               "agent": f.c.first_answer_by, "topic": func.coalesce(case_topics.c.topic, NONE),
               "language": func.coalesce(f.c.language, NONE)}
# The breakdowns whose column is not in the facts table, and how to reach it.
_JOINS = {"topic": f.outerjoin(case_topics, case_topics.c.case_id == f.c.case_id)}


def _facts(row: Any) -> CaseFacts:
    return CaseFacts(
        case_id=row.case_id, tier=Tier(row.tier), platform=row.platform, brand=row.brand,
        source=row.source, published_at=row.published_at, collected_at=row.collected_at,
        response_due_at=row.response_due_at, standing=Standing(row.standing),
        first_answer_at=row.first_answer_at, first_answer_by=row.first_answer_by,
        resolved_at=row.resolved_at, messages_to_resolve=row.messages_to_resolve,
        second_line_closed=timedelta(seconds=row.second_line_seconds),
        with_second_line_since=row.with_second_line_since,
        language=row.language, topics=names(row.topics), dismissed_at=row.dismissed_at,
    )


class SqlReportRepository:
    """A period's report and its cases' facts."""

    def __init__(self, conn: AsyncConnection, engine: AsyncEngine) -> None:
        self._conn = conn
        self._engine = engine

    def _in(self, period: Period) -> Any:
        return (f.c.published_at >= period.start) & (f.c.published_at < period.end)

    async def facts(self, period: Period) -> AsyncIterator[CaseFacts]:
        """Yield the period's cases' facts, in publication order: read `FACTS_AT_ONCE`
        rows at a time, the event loop getting its turn between them (a month's CSV is
        hundreds of thousands of rows, each turned into facts on the loop)."""
        result = await self._conn.stream(
            select(f).where(self._in(period)).order_by(f.c.published_at, f.c.case_id)
            .execution_options(yield_per=FACTS_AT_ONCE)
        )
        async for rows in result.partitions(FACTS_AT_ONCE):
            for row in rows:
                yield _facts(row)
            await asyncio.sleep(0)

    async def report(self, period: Period, *, now: datetime) -> Report:
        """Return the period's report, with its escalations by category."""
        if self._conn.dialect.name == "postgresql":
            made = await self._sql_report(period, now)
        else:
            # Aggregating a big period is CPU work: off the event loop.
            made = await asyncio.to_thread(aggregate, [fact async for fact in self.facts(period)],
                                           period=period, now=now)
        rows = await self._conn.execute(
            select(escalations.c.category, func.count())
            .where(escalations.c.raised_at >= period.start, escalations.c.raised_at < period.end)
            .group_by(escalations.c.category)
        )
        made.escalations.update({category: count for category, count in rows})
        made.answers.update(await self.answer_forms(period))
        made.previous_topics.update(await self.topic_counts(period.previous))
        return made

    async def sla_counts(self, period: Period, *, now: datetime) -> Group:
        """Return how many of the period's cases met, missed and are pending their
        first-response SLA (the wallboard's share; `socialcare.bot.metrics.sla_met`)
        without a report: from the counts kept per quarter hour of publication and
        minute of deadline (`socialcare.storage.wallboard`), reading the facts only for
        the deadlines of this minute still to come (`ix_case_facts_waiting`)."""
        this_minute = wallboard.minute(now)
        next_minute = datetime.fromtimestamp((this_minute + 1) * 60, UTC)
        pending_now = int((await self._conn.execute(
            select(func.count()).where(
                f.c.first_answer_at.is_(None), f.c.dismissed_at.is_(None),
                f.c.response_due_at >= now, f.c.response_due_at < next_minute,
                self._in(period)))).scalar() or 0)
        sums = await wallboard.sla_sums(self._conn, period.start, period.end,
                                        after=this_minute)
        pending = pending_now + sums.waiting_later
        # Waiting, dismissed after the deadline: the deadline has passed (a dismissal
        # comes before now), missed.
        return Group("all", met=sums.met,
                     missed=sums.late + sums.waiting - pending + sums.dismissed_late,
                     pending=pending)

    async def answer_forms(self, period: Period) -> dict[str, int]:
        """Count the answers given in a period by their form; an answer recorded before
        forms were (or by the brand's account on the platform) is text."""
        form = func.coalesce(events.c.data["form"].as_string(), AnswerForm.TEXT.value)
        rows = await self._conn.execute(
            select(form, func.count())
            .where(events.c.kind == EventKind.AGENT_MESSAGE.value,
                   events.c.at >= period.start, events.c.at < period.end)
            .group_by(form))
        return {str(name): count for name, count in rows}

    async def answer_forms_of(self, case_ids: list[int]) -> dict[int, list[str]]:
        """Return the forms of each case's answers, in the order they were given."""
        form = func.coalesce(events.c.data["form"].as_string(), AnswerForm.TEXT.value)
        found: dict[int, list[str]] = {}
        for start in range(0, len(case_ids), 1000):
            rows = await self._conn.execute(
                select(events.c.case_id, form)
                .where(events.c.kind == EventKind.AGENT_MESSAGE.value,
                       events.c.case_id.in_(case_ids[start:start + 1000]))
                .order_by(events.c.case_id, events.c.id))
            for case_id, name in rows:
                found.setdefault(int(case_id), []).append(str(name))
        return found

    async def topic_counts(self, period: Period) -> dict[str, int]:
        """Count a period's cases per topic (`socialcare.bot.reports.topic_counts`)."""
        topic = func.coalesce(case_topics.c.topic, NONE)
        rows = await self._conn.execute(
            select(topic, func.count()).select_from(_JOINS["topic"])
            .where(self._in(period)).group_by(topic))
        return {name: count for name, count in rows}

    async def _sql_report(self, period: Period, now: datetime) -> Report:
        """Aggregate in PostgreSQL: a few queries, run side by side on their own
        connections (each sorts for its percentiles; the server runs them in parallel)."""
        reaction, lag = f.c.reaction_seconds, f.c.lag_seconds
        resolution = case((f.c.standing == "resolved", f.c.resolution_seconds))
        met = (f.c.first_answer_at.is_not(None)) & (f.c.first_answer_at <= f.c.response_due_at)
        # Dismissed unanswered by its deadline: no answer was needed (neither met nor
        # missed, nor pending); dismissed after it, the breach stands.
        missed = (f.c.first_answer_at > f.c.response_due_at) | (
            f.c.first_answer_at.is_(None) & (f.c.response_due_at < now)
            & (f.c.dismissed_at.is_(None) | (f.c.dismissed_at > f.c.response_due_at)))
        pending = (f.c.first_answer_at.is_(None) & (f.c.response_due_at >= now)
                   & f.c.dismissed_at.is_(None))
        counts = [
            func.count().label("cases"),
            func.count().filter(f.c.standing == "dismissed").label("dismissed"),
            func.count(reaction).label("answered"),
            func.count().filter(met).label("met"), func.count().filter(missed).label("missed"),
            func.count().filter(pending).label("pending"),
        ]
        total = select(
            *counts, _percentiles(reaction).label("reaction_percentiles"),
            _percentiles(lag).label("lag_percentiles"),
            func.count(resolution).label("resolved"),
            _percentiles(resolution).label("resolution_percentiles"),
            *(func.count().filter((f.c.standing == "resolved") & condition).label(name)
              for name, condition in (
                  ("m1", f.c.messages_to_resolve <= 1), ("m2", f.c.messages_to_resolve == 2),
                  ("m3", f.c.messages_to_resolve == 3), ("m4", f.c.messages_to_resolve >= 4))),
        ).where(self._in(period))
        breakdowns = {name: self._breakdown(period, column, counts, _JOINS.get(name))
                      for name, column in _DIMENSIONS.items()}
        worst = (
            select(f.c.case_id, f.c.tier, f.c.platform,
                   _epoch(func.coalesce(f.c.first_answer_at, literal(now)), f.c.response_due_at)
                   .label("overdue"))
            .where(self._in(period), missed)
            .order_by(text("overdue DESC"), f.c.case_id).limit(WORST)
        )
        # date_part is double precision; extract's numeric is several times slower to divide.
        bucket = func.floor(func.date_part("epoch", f.c.published_at) / BUCKET_SECONDS)
        days = (select(bucket.label("bucket"), func.count().label("cases"),
                       func.count().filter(met).label("met"),
                       func.count().filter(missed).label("missed"))
                .where(self._in(period)).group_by(bucket))
        minute = func.least(func.floor(reaction / 60), HISTOGRAM_CAP)
        histogram = (select(f.c.tier, minute.label("minute"), func.count().label("cases"))
                     .where(self._in(period), f.c.first_answer_at.is_not(None))
                     .group_by(f.c.tier, minute))
        queries = [total, *breakdowns.values(), worst, days, histogram]
        results = await asyncio.gather(*(self._side_query(q) for q in queries))
        [head], *grouped = results[:1 + len(breakdowns)]
        worst_rows, day_rows, histogram_rows = results[1 + len(breakdowns):]
        groups = {
            name: sorted((_group(row, row.key) for row in rows), key=lambda g: (-g.cases, g.key))
            for name, rows in zip(breakdowns, grouped, strict=True)
        }
        return Report(
            period=period,
            total=_group(head, "all"),
            groups=groups,
            collector_lag=Stat(head.cases, *_pair(head.lag_percentiles)),
            resolution=Stat(head.resolved, *_pair(head.resolution_percentiles)),
            messages={"1": head.m1, "2": head.m2, "3": head.m3, "4+": head.m4},
            breaches=head.missed,
            worst=[Breach(r.case_id, r.tier, r.platform, r.overdue) for r in worst_rows],
            days=_days(period, day_rows),
            histogram=_histogram(histogram_rows),
        )

    def _breakdown(self, period: Period, column: Any, counts: list[Any],
                   joined: Any = None) -> Any:
        """A breakdown by `column`: the rows are hashed into their groups, each gathering its
        reaction times in an array, and each array is sorted on its own for the
        percentiles. (Grouping with `percentile_cont` directly would first sort the whole
        period by the column, a sort of strings.)"""
        reaction = f.c.reaction_seconds
        grouped = (
            select(column.label("key"), *counts,
                   func.array_agg(reaction).filter(reaction.is_not(None)).label("reactions"))
            .select_from(f if joined is None else joined)
            .where(self._in(period), column.is_not(None)).group_by(column)
            .subquery()
        )
        value = func.unnest(grouped.c.reactions).table_valued("value").render_derived()
        percentiles = select(_percentiles(value.c.value)).scalar_subquery()
        # Not the arrays themselves: a month's reaction times decoded on the event loop.
        return select(*(c for c in grouped.c if c.name != "reactions"),
                      percentiles.label("reaction_percentiles"))

    async def _side_query(self, query: Any) -> list[Any]:
        # Its own connection, so that the server can run the queries at once.
        async with self._engine.connect() as conn:
            # The queries already run side by side: no worker processes besides.
            await conn.execute(select(func.set_config("work_mem", WORK_MEM, True),
                                      func.set_config("max_parallel_workers_per_gather", "0",
                                                      True)))
            return list((await conn.execute(query)).all())


def _epoch(later: Any, earlier: Any) -> Any:
    return cast(func.extract("epoch", later - earlier), Float)


def _percentiles(column: Any) -> Any:
    """The median and the 90th percentile of `column`, in one sort."""
    return func.percentile_cont(array([0.5, 0.9])).within_group(column)


def _pair(percentiles: list[float] | None) -> tuple[float | None, float | None]:
    # percentile_cont over no values is NULL, not an array of NULLs.
    return (percentiles[0], percentiles[1]) if percentiles else (None, None)


def _group(row: Any, key: str) -> Group:
    return Group(
        key=key, cases=row.cases, dismissed=row.dismissed,
        reaction=Stat(row.answered, *_pair(row.reaction_percentiles)),
        met=row.met, missed=row.missed, pending=row.pending,
    )


def _days(period: Period, rows: Any) -> list[Day]:
    days = {d: [0, 0, 0] for d in period.days}
    for row in rows:
        moment = datetime.fromtimestamp(float(row.bucket) * BUCKET_SECONDS, UTC)
        counts = days[moment.astimezone(period.zone).date()]
        counts[0] += row.cases
        counts[1] += row.met
        counts[2] += row.missed
    return [Day(d, *c) for d, c in days.items()]


def _histogram(rows: Any) -> dict[str, dict[int, int]]:
    histogram: dict[str, dict[int, int]] = {}
    for row in rows:
        histogram.setdefault(row.tier, {})[int(row.minute)] = row.cases
    return histogram
