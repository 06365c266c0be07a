"""Reports over the case-facts table.

On PostgreSQL the figures are aggregated in SQL — `percentile_cont` is the median and
percentile definition of `socialcare.bot.metrics.quantile` — so that a month of a
million cases never leaves the server. SQLite, which has no percentiles, hands the period's facts
to `socialcare.bot.reports.aggregate`. Both must give the same report.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Float,
    Integer,
    cast,
    func,
    literal,
    literal_column,
    select,
    text,
    true,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from socialcare.bot.answers.forms import AnswerForm
from socialcare.bot.metrics import CaseFacts, Standing
from socialcare.bot.model import EventKind, Tier
from socialcare.bot.report_text import bucket_bounds, bucket_seconds
from socialcare.bot.reports import (
    DIMENSIONS,
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
from socialcare.storage import rollups, wallboard
from socialcare.storage.repositories import names
from socialcare.storage.schema import case_facts as f
from socialcare.storage.schema import case_topics, escalations, events, report_counts

# Facts read and converted at once, between the event loop's turns.
FACTS_AT_ONCE = 100
# Sorting a month of a big team's cases for percentiles wants memory, not disk.
WORK_MEM = "128MB"
_MEASURES = {"reaction": "reaction_seconds", "lag": "lag_seconds",
             "resolution": "resolution_seconds"}
# Not answered, and not dismissed by the deadline: missed once the deadline passes.
_UNANSWERED = ("case_facts.first_answer_at IS NULL AND (case_facts.dismissed_at IS NULL "
               "OR case_facts.dismissed_at > case_facts.response_due_at)")
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
        minute of deadline (`socialcare.storage.wallboard.sla_share`)."""
        return await wallboard.sla_share(self._conn, period, now=now)

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
        """Count a period's cases per topic (`socialcare.bot.reports.topic_counts`): on
        PostgreSQL from the roll-up's counts, not a month's facts joined to their
        topics."""
        if self._conn.dialect.name == "postgresql":
            c = report_counts.c
            total = func.sum(c.cases)
            rows = await self._conn.execute(
                select(c.key, total).where(c.dimension == "topic", _quarters(period))
                .group_by(c.key).having(total != 0))
            return {name: int(count) for name, count in rows}
        topic = func.coalesce(case_topics.c.topic, NONE)
        rows = await self._conn.execute(
            select(topic, func.count()).select_from(_JOINS["topic"])
            .where(self._in(period)).group_by(topic))
        return {name: count for name, count in rows}

    async def _sql_report(self, period: Period, now: datetime) -> Report:
        """Sum the roll-ups (`socialcare.storage.rollups`): the counts per quarter hour,
        the durations per day and, for the hours of UTC days the period cuts, the facts;
        then the worst breaches and the cases still pending. The queries run side by
        side on their own connections."""
        async with self._engine.begin() as conn:
            await rollups.fold(conn)
        count_rows, day_rows, duration_rows, late, unanswered, pending_rows = \
            await asyncio.gather(*(self._side_query(q) for q in (
                *_count_queries(period), _durations(period), *self._worst(period, now),
                _pending(period, now))))
        worst_rows = sorted((*late, *unanswered), key=lambda r: (-r.overdue, r.case_id))
        waiting = _Waiting(pending_rows, period)
        sums = {(r.dimension, r.key): r for r in count_rows if r.cases}
        histograms: dict[tuple[str, str, str], list[tuple[int, int]]] = {}
        for r in duration_rows:
            if r.n:
                histograms.setdefault((r.measure, r.dimension, r.key), []).append(
                    (r.bucket, r.n))
        percentiles = await self._percentiles(period, histograms)

        def stat(measure: str, dimension: str, key: str) -> Stat:
            found = histograms.get((measure, dimension, key), [])
            return Stat(sum(n for _, n in found),
                        *percentiles.get((measure, dimension, key), (None, None)))

        def group(dimension: str, key: str) -> Group:
            row, pending_now = sums[dimension, key], waiting.count(dimension, key)
            return Group(key=key if dimension != "all" else "all", cases=row.cases,
                         dismissed=row.dismissed,
                         reaction=stat("reaction", dimension, key), met=row.met,
                         missed=row.late + row.dismissed_late + row.waiting - pending_now,
                         pending=pending_now)

        total = group("all", "all") if ("all", "all") in sums else Group("all")
        head = sums.get(("all", "all"))
        return Report(
            period=period,
            total=total,
            groups={name: sorted((group(d, k) for d, k in sums if d == name),
                                 key=lambda g: (-g.cases, g.key)) for name in DIMENSIONS},
            collector_lag=replace(stat("lag", "all", "all"), count=total.cases),
            resolution=stat("resolution", "all", "all"),
            messages={name: getattr(head, f"resolved_{i}", 0) if head else 0
                      for i, name in enumerate(("1", "2", "3", "4+"), start=1)},
            breaches=total.missed,
            worst=[Breach(r.case_id, r.tier, r.platform, r.overdue)
                   for r in worst_rows[:WORST]],
            days=_days(period, day_rows, waiting),
            histogram={tier: {minute: n for minute, n in found}
                       for (measure, _, tier), found in histograms.items()
                       if measure == "minute"},
        )

    def _worst(self, period: Period, now: datetime) -> tuple[Any, Any]:
        """The period's worst breaches among those answered late (by the lateness,
        `ix_case_facts_late`) and among those not answered by a deadline now past (by
        the deadline, `ix_case_facts_unanswered`): each an index read from its worst
        end, not a scan of the period."""
        columns = (f.c.case_id, f.c.tier, f.c.platform)
        late = (select(*columns, _epoch(f.c.first_answer_at, f.c.response_due_at)
                       .label("overdue"))
                .where(f.c.first_answer_at > f.c.response_due_at, self._in(period))
                .order_by((f.c.first_answer_at - f.c.response_due_at).desc(), f.c.case_id)
                .limit(WORST))
        unanswered = (select(*columns, _epoch(literal(now), f.c.response_due_at)
                             .label("overdue"))
                      .where(text(_UNANSWERED), f.c.response_due_at < now, self._in(period))
                      .order_by(f.c.response_due_at, f.c.case_id).limit(WORST))
        return late, unanswered

    async def _percentiles(self, period: Period, histograms: dict[
            tuple[str, str, str], list[tuple[int, int]]]) -> dict[
            tuple[str, str, str], tuple[float | None, float | None]]:
        """Return the median and 90th percentile of each histogram (but the chart's),
        reading from the facts, in one statement, the exact values of the neighbouring
        ranks that fall in different buckets."""
        places = {key: [_place(sorted(found), q) for q in (0.5, 0.9)]
                  for key, found in histograms.items() if key[0] != "minute"}
        wanted = sorted({(key, bucket, last) for key, pair in places.items() for place in pair
                         if place.fraction and place.low != place.high
                         for bucket, last in ((place.low, True), (place.high, False))})
        exact: dict[tuple[tuple[str, str, str], int, bool], float] = {}
        if wanted:
            [row] = await self._side_query(select(*(
                self._edge_value(period, key, bucket, last) for key, bucket, last in wanted)))
            exact = dict(zip(wanted, row, strict=True))

        def value(key: tuple[str, str, str], place: _Place) -> float:
            if not place.fraction or place.low == place.high:
                return bucket_seconds(place.low)
            low, high = exact[key, place.low, True], exact[key, place.high, False]
            return low + (high - low) * place.fraction

        return {key: (value(key, median), value(key, p90))
                for key, (median, p90) in places.items()}

    def _edge_value(self, period: Period, key: tuple[str, str, str], bucket: int,
                    last: bool) -> Any:
        """The greatest (`last`) or least duration of a bucket among a group's facts of the
        period: an index range on the duration, stopped at the first match."""
        measure, dimension, name = key
        column = f.c[_MEASURES[measure]]
        low, high = bucket_bounds(bucket)
        where = [self._in(period), column <= high,
                 literal_column(rollups.bucket_sql(f"case_facts.{column.name}"), Integer)
                 == bucket,
                 _member(dimension, name)]
        if low != float("-inf"):
            where.append(column >= low)
        if measure == "resolution":
            where.append(f.c.standing == "resolved")
        return select((func.max if last else func.min)(column)).where(*where) \
            .scalar_subquery()

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


def _count_queries(period: Period) -> tuple[Any, Any]:
    """The period's counts per breakdown key, and the whole team's per quarter hour."""
    c = report_counts.c
    within = _quarters(period)
    by_key = (select(c.dimension, c.key, *(func.sum(c[n]).label(n) for n in rollups.COUNTS))
              .where(within).group_by(c.dimension, c.key))
    by_quarter = (select(c.quarter, *(func.sum(c[n]).label(n) for n in (
        "cases", "met", "late", "waiting", "dismissed_late")))
        .where(within, c.dimension == "all").group_by(c.quarter))
    return by_key, by_quarter


def _quarters(period: Period) -> Any:
    """The roll-up's counts of the period's quarter hours."""
    c = report_counts.c
    return (c.quarter >= _unit(period.start, rollups.QUARTER_SECONDS)) & (
        c.quarter < _unit(period.end, rollups.QUARTER_SECONDS))


def _unit(moment: datetime, seconds: int) -> int:
    """Return the quarter hour or day of a moment, from the Unix epoch (whole for the
    period's bounds, local midnights)."""
    return int(moment.timestamp()) // seconds


def _durations(period: Period) -> Any:
    """The period's duration counts: whole UTC days, then whole hours from the roll-up;
    parts of an hour (a zone's offset in quarter hours) from the facts."""
    hours_from = -(-int(period.start.timestamp()) // rollups.HOUR_SECONDS)
    hours_to = _unit(period.end, rollups.HOUR_SECONDS)
    days_from, days_to = -(-hours_from // 24) * 24, hours_to // 24 * 24
    if days_to < days_from:  # no whole UTC day: hours only
        days_from = days_to = hours_to
    return text(rollups.durations_sql()).bindparams(
        days_from=days_from, days_to=days_to, hours_from=hours_from, hours_to=hours_to,
        start=period.start, cut=_moment(hours_from), resume=_moment(hours_to),
        end=period.end)


def _moment(hour: int) -> datetime:
    return datetime.fromtimestamp(hour * rollups.HOUR_SECONDS, UTC)


def _pending(period: Period, now: datetime) -> Any:
    return text(rollups.pending_sql()).bindparams(now=now, start=period.start,
                                                  end=period.end)


class _Waiting:
    """The cases still pending their first answer, per breakdown key and per day."""

    def __init__(self, rows: Any, period: Period) -> None:
        self._keys: dict[tuple[str, str], int] = {}
        self._days: dict[date, int] = {}
        for row in rows:
            self._keys[row.dimension, row.key] = self._keys.get((row.dimension, row.key), 0) \
                + row.n
            if row.dimension == "all":
                day = _local_day(row.quarter, period)
                self._days[day] = self._days.get(day, 0) + row.n

    def count(self, dimension: str, key: str) -> int:
        """Return the pending cases of a breakdown key."""
        return self._keys.get((dimension, key), 0)

    def on(self, day: date) -> int:
        """Return the pending cases published on a day."""
        return self._days.get(day, 0)


@dataclass(frozen=True)
class _Place:
    """Where a percentile falls in a histogram: the buckets of its two neighbouring
    ranks, and how far between them."""

    low: int
    high: int
    fraction: float


def _place(histogram: list[tuple[int, int]], q: float) -> _Place:
    """Place the q-quantile (`socialcare.bot.metrics.quantile`) in a histogram of
    (bucket, count), in bucket order."""
    total = sum(n for _, n in histogram)
    position = q * (total - 1)
    low = math.floor(position)
    high = min(low + 1, total - 1)
    buckets, seen = [], 0
    for rank in (low, high):
        for bucket, n in histogram:
            if rank < seen + n:
                buckets.append(bucket)
                break
            seen += n
        seen = 0
    return _Place(buckets[0], buckets[1], position - low)


def _member(dimension: str, key: str) -> Any:
    """The facts of a breakdown's key (as the roll-ups' triggers key them)."""
    if dimension == "all":
        return true()
    if dimension == "topic":
        return func.array_position(literal_column(rollups.topics_sql("case_facts")),
                                   key).is_not(None)
    if dimension == "language" and key == NONE:
        return f.c.language.is_(None)
    column = {"agent": f.c.first_answer_by}.get(dimension)
    return (f.c[dimension] if column is None else column) == key


def _local_day(quarter: int, period: Period) -> date:
    moment = datetime.fromtimestamp(quarter * rollups.QUARTER_SECONDS, UTC)
    return moment.astimezone(period.zone).date()


def _days(period: Period, rows: Any, waiting: _Waiting) -> list[Day]:
    days = {d: [0, 0, 0] for d in period.days}
    for row in rows:
        counts = days[_local_day(row.quarter, period)]
        counts[0] += row.cases
        counts[1] += row.met
        counts[2] += row.late + row.dismissed_late + row.waiting
    return [Day(d, cases, met, missed - waiting.on(d))
            for d, (cases, met, missed) in days.items()]
