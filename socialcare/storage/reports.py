"""Reports over the case-facts table.

On PostgreSQL the figures are aggregated in SQL — `percentile_cont` is the median and
percentile definition of `socialcare.bot.metrics.quantile` — so that a month of a
million cases is one scan. SQLite, which has no percentiles, hands the period's facts
to `socialcare.bot.reports.aggregate`. Both must give the same report.
"""

from __future__ import annotations

import dataclasses
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
from sqlalchemy.ext.asyncio import AsyncConnection

from socialcare.bot.metrics import CaseFacts, Standing
from socialcare.bot.model import Tier
from socialcare.bot.reports import (
    HISTOGRAM_CAP,
    WORST,
    Breach,
    Day,
    Group,
    Period,
    Report,
    Stat,
    aggregate,
)
from socialcare.storage.schema import case_facts as f
from socialcare.storage.schema import escalations

# 15 minutes: every timezone's offset is a multiple, so buckets fall into local days.
BUCKET_SECONDS = 900
_DIMENSIONS = {"tier": f.c.tier, "platform": f.c.platform, "brand": f.c.brand,
               "agent": f.c.first_answer_by}


def _facts(row: Any) -> CaseFacts:
    return CaseFacts(
        case_id=row.case_id, tier=Tier(row.tier), platform=row.platform, brand=row.brand,
        source=row.source, published_at=row.published_at, collected_at=row.collected_at,
        response_due_at=row.response_due_at, standing=Standing(row.standing),
        first_answer_at=row.first_answer_at, first_answer_by=row.first_answer_by,
        resolved_at=row.resolved_at, messages_to_resolve=row.messages_to_resolve,
        second_line_closed=timedelta(seconds=row.second_line_seconds),
        with_second_line_since=row.with_second_line_since,
    )


class SqlReportRepository:
    """A period's report and its cases' facts."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    def _in(self, period: Period) -> Any:
        return (f.c.published_at >= period.start) & (f.c.published_at < period.end)

    async def facts(self, period: Period) -> AsyncIterator[CaseFacts]:
        """Yield the period's cases' facts, in publication order."""
        result = await self._conn.stream(
            select(f).where(self._in(period)).order_by(f.c.published_at, f.c.case_id)
        )
        async for row in result:
            yield _facts(row)

    async def report(self, period: Period, *, now: datetime) -> Report:
        """Return the period's report, with its escalations by category."""
        if self._conn.dialect.name == "postgresql":
            made = await self._sql_report(period, now)
        else:
            made = aggregate([fact async for fact in self.facts(period)], period=period,
                             now=now)
        rows = await self._conn.execute(
            select(escalations.c.category, func.count())
            .where(escalations.c.raised_at >= period.start, escalations.c.raised_at < period.end)
            .group_by(escalations.c.category)
        )
        made.escalations.update({category: count for category, count in rows})
        return made

    async def _sql_report(self, period: Period, now: datetime) -> Report:
        epoch = lambda later, earlier: cast(  # noqa: E731 - a column expression helper
            func.extract("epoch", later - earlier), Float)
        reaction = epoch(f.c.first_answer_at, f.c.published_at)
        lag = func.greatest(epoch(f.c.collected_at, f.c.published_at), 0.0)
        resolution = case((f.c.standing == "resolved", epoch(f.c.resolved_at, f.c.published_at)))
        met = (f.c.first_answer_at.is_not(None)) & (f.c.first_answer_at <= f.c.response_due_at)
        missed = (f.c.first_answer_at > f.c.response_due_at) | (
            f.c.first_answer_at.is_(None) & (f.c.response_due_at < now))

        def p(q: float, column: Any) -> Any:
            return func.percentile_cont(q).within_group(column)

        columns = [
            *(column.label(name) for name, column in _DIMENSIONS.items()),
            func.grouping(*_DIMENSIONS.values()).label("level"),
            func.count().label("cases"),
            func.count().filter(f.c.standing == "dismissed").label("dismissed"),
            func.count(reaction).label("answered"),
            p(0.5, reaction).label("reaction_p50"), p(0.9, reaction).label("reaction_p90"),
            func.count().filter(met).label("met"), func.count().filter(missed).label("missed"),
            p(0.5, lag).label("lag_p50"), p(0.9, lag).label("lag_p90"),
            func.count(resolution).label("resolved"),
            p(0.5, resolution).label("resolution_p50"), p(0.9, resolution).label("resolution_p90"),
            *(func.count().filter((f.c.standing == "resolved") & condition).label(name)
              for name, condition in (
                  ("m1", f.c.messages_to_resolve <= 1), ("m2", f.c.messages_to_resolve == 2),
                  ("m3", f.c.messages_to_resolve == 3), ("m4", f.c.messages_to_resolve >= 4))),
        ]
        sets = text("GROUPING SETS ((tier), (platform), (brand), (first_answer_by), ())")
        rows = (await self._conn.execute(
            select(*columns).where(self._in(period)).group_by(sets)
        )).all()
        groups: dict[str, list[Group]] = {name: [] for name in _DIMENSIONS}
        total = None
        for row in rows:
            group = Group(
                key="all", cases=row.cases, dismissed=row.dismissed,
                reaction=Stat(row.answered, row.reaction_p50, row.reaction_p90),
                met=row.met, missed=row.missed, pending=row.cases - row.met - row.missed,
            )
            if row.level == 0b1111:
                total = (group, row)
                continue
            for bit, name in enumerate(reversed(list(_DIMENSIONS))):
                if not row.level & (1 << bit):
                    value = getattr(row, name)
                    if value is not None:
                        groups[name].append(dataclasses.replace(group, key=value))
        for name in groups:
            groups[name].sort(key=lambda g: (-g.cases, g.key))
        if total is None:
            return aggregate([], period=period, now=now)
        all_cases, head = total
        worst = (await self._conn.execute(
            select(f.c.case_id, f.c.tier, f.c.platform,
                   epoch(func.coalesce(f.c.first_answer_at, literal(now)), f.c.response_due_at)
                   .label("overdue"))
            .where(self._in(period), missed)
            .order_by(text("overdue DESC"), f.c.case_id).limit(WORST)
        )).all()
        return Report(
            period=period,
            total=all_cases,
            groups=groups,
            collector_lag=Stat(head.cases, head.lag_p50, head.lag_p90),
            resolution=Stat(head.resolved, head.resolution_p50, head.resolution_p90),
            messages={"1": head.m1, "2": head.m2, "3": head.m3, "4+": head.m4},
            breaches=head.missed,
            worst=[Breach(r.case_id, r.tier, r.platform, r.overdue) for r in worst],
            days=await self._days(period, met, missed),
            histogram=await self._histogram(period, reaction),
        )

    async def _days(self, period: Period, met: Any, missed: Any) -> list[Day]:
        bucket = func.floor(func.extract("epoch", f.c.published_at) / BUCKET_SECONDS)
        rows = await self._conn.execute(
            select(bucket.label("bucket"), func.count().label("cases"),
                   func.count().filter(met).label("met"),
                   func.count().filter(missed).label("missed"))
            .where(self._in(period)).group_by(bucket)
        )
        days = {d: [0, 0, 0] for d in period.days}
        for row in rows:
            moment = datetime.fromtimestamp(float(row.bucket) * BUCKET_SECONDS, UTC)
            counts = days[moment.astimezone(period.zone).date()]
            counts[0] += row.cases
            counts[1] += row.met
            counts[2] += row.missed
        return [Day(d, *c) for d, c in days.items()]

    async def _histogram(self, period: Period, reaction: Any) -> dict[str, dict[int, int]]:
        minute = func.least(func.floor(reaction / 60), HISTOGRAM_CAP)
        rows = await self._conn.execute(
            select(f.c.tier, minute.label("minute"), func.count().label("cases"))
            .where(self._in(period), f.c.first_answer_at.is_not(None))
            .group_by(f.c.tier, minute)
        )
        histogram: dict[str, dict[int, int]] = {}
        for row in rows:
            histogram.setdefault(row.tier, {})[int(row.minute)] = row.cases
        return histogram
