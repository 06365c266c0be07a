"""A period's figures from its facts in PostgreSQL, exactly, without sorting the period.

Sorting a month of a million cases for each breakdown's percentiles (one sort per
breakdown, eight at once) took several times as long as reading the month once. Here
the period is read twice, grouped by hashing, never sorted:

1. Every figure that counts — per breakdown and in total: cases, dismissed, met, missed,
   pending, the days, the messages to resolve, the histogram — and, per group, how many
   durations fall in each *bucket* (a second, ten seconds, a minute, ten minutes wide:
   the order of buckets is the order of the values). A median or 90th percentile is the
   value at a known rank (two ranks, interpolated), so the counts tell which bucket
   holds it and its rank there.
2. The values of those few buckets only, per group; the ranks are picked from them.

The percentiles are then the interpolation `socialcare.bot.metrics.quantile` makes,
between the very values it would pick: the figures equal `socialcare.bot.reports.
aggregate`'s, to the last bit.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text

from socialcare.bot.reports import HISTOGRAM_CAP, NONE, Day, Group, Period, Stat

Run = Callable[[Any, dict[str, Any]], Awaitable[list[Any]]]
QUANTILES = (0.5, 0.9)
# 15 minutes: every timezone's offset is a multiple, so buckets fall into local days.
DAY_BUCKET_SECONDS = 900

# A duration's bucket: 1 s wide below a minute, 10 s below an hour, a minute below two
# hours (each within one minute of the histogram), then 10 minutes. Each piece is a
# monotonic function of the value and the pieces follow each other, so a bucket's
# values all come before the next bucket's.
_PIECES = ((60.0, 0, 1.0), (3600.0, 60, 10.0), (7200.0, 414, 60.0), (math.inf, 474, 600.0))


def bucket_sql(x: str) -> str:
    """Return the SQL of the bucket of the duration `x` (NULL for NULL)."""
    arms, floor_of = [], -math.inf
    for upper, first, width in _PIECES:
        start = 0.0 if floor_of == -math.inf else floor_of
        value = (f"floor({x})" if first == 0 else
                 f"{first} + floor(({x} - {start:g}) / {width:g})")
        arms.append(value if upper == math.inf else f"WHEN {x} < {upper:g} THEN {value}")
        floor_of = upper
    *whens, last = arms
    return f"CAST(CASE {' '.join(whens)} ELSE {last} END AS bigint)"


def bucket_minute(bucket: int) -> int:
    """Return the histogram's minute of every value of a reaction-time bucket."""
    lowest, start = float(bucket), 0.0
    for upper, first, width in _PIECES:
        if first == 0:
            if bucket < 60:
                lowest = float(bucket)
                break
        elif upper == math.inf or bucket < first + (upper - start) / width:
            lowest = start + (bucket - first) * width
            break
        start = upper
    return min(int(lowest // 60), HISTOGRAM_CAP)


_IN = "published_at >= :start AND published_at < :end"
_MET = "first_answer_at IS NOT NULL AND first_answer_at <= response_due_at"
# Dismissed unanswered by its deadline: no answer was needed (neither met nor missed,
# nor pending); dismissed after it, the breach stands.
_MISSED = ("(first_answer_at > response_due_at OR (first_answer_at IS NULL AND "
           "response_due_at < :now AND (dismissed_at IS NULL OR dismissed_at > "
           "response_due_at)))")
_PENDING = "first_answer_at IS NULL AND response_due_at >= :now AND dismissed_at IS NULL"
_RESOLVED = "standing = 'resolved' AND resolved_at IS NOT NULL"
_TOPICS = ("unnest(CASE WHEN cardinality(array_remove(string_to_array({t}, ','), '')) = 0 "
           f"THEN ARRAY['{NONE}'] ELSE array_remove(string_to_array({{t}}, ','), '') END)")
_KEYS = ("(VALUES ('all', 'all'), ('tier', {r}.tier), ('platform', {r}.platform), "
         "('brand', {r}.brand), ('agent', {r}.agent), ('language', {r}.language))")
_DIMENSION_COLUMNS = (f"tier, platform, brand, first_answer_by AS agent, "
                      f"coalesce(language, '{NONE}') AS language, topics")

# Every breakdown's counts, and its reaction times' count per bucket.
_GROUPS = text(f"""
WITH fine AS (
    SELECT {_DIMENSION_COLUMNS}, {bucket_sql('reaction_seconds')} AS b, count(*) AS cases,
           count(*) FILTER (WHERE standing = 'dismissed') AS dismissed,
           count(*) FILTER (WHERE {_MET}) AS met, count(*) FILTER (WHERE {_MISSED}) AS missed,
           count(*) FILTER (WHERE {_PENDING}) AS pending
    FROM case_facts WHERE {_IN}
    GROUP BY 1, 2, 3, 4, 5, 6, 7
), long AS (
    SELECT d.dim, d.key, r.b, r.cases, r.dismissed, r.met, r.missed, r.pending
    FROM fine r CROSS JOIN LATERAL {_KEYS.format(r='r')} AS d(dim, key)
    WHERE d.key IS NOT NULL
    UNION ALL
    SELECT 'topic', t.key, r.b, r.cases, r.dismissed, r.met, r.missed, r.pending
    FROM fine r CROSS JOIN LATERAL {_TOPICS.format(t='r.topics')} AS t(key)
), bucketed AS (
    SELECT dim, key, b, sum(cases) AS cases, sum(dismissed) AS dismissed, sum(met) AS met,
           sum(missed) AS missed, sum(pending) AS pending
    FROM long GROUP BY dim, key, b
)
SELECT dim, key, CAST(sum(cases) AS bigint) AS cases,
       CAST(sum(dismissed) AS bigint) AS dismissed, CAST(sum(met) AS bigint) AS met,
       CAST(sum(missed) AS bigint) AS missed, CAST(sum(pending) AS bigint) AS pending,
       array_agg(b ORDER BY b) FILTER (WHERE b IS NOT NULL) AS buckets,
       array_agg(CAST(cases AS bigint) ORDER BY b) FILTER (WHERE b IS NOT NULL) AS counts
FROM bucketed GROUP BY dim, key
""")

# The totals' other counts: collector lag and resolution per bucket, messages to
# resolve, and the days (per 15 minutes, to be gathered into the team's days).
_TOTALS = text(f"""
SELECT GROUPING(lb) AS no_lag, GROUPING(sb, m) AS no_resolution,
       lb, sb, m, q, count(*) AS cases,
       count(*) FILTER (WHERE met) AS met, count(*) FILTER (WHERE missed) AS missed
FROM (
    SELECT {bucket_sql('lag_seconds')} AS lb,
           CASE WHEN {_RESOLVED} THEN {bucket_sql('resolution_seconds')} END AS sb,
           CASE WHEN {_RESOLVED} THEN least(greatest(coalesce(messages_to_resolve, 0), 1), 4)
           END AS m,
           CAST(floor(date_part('epoch', published_at) / {DAY_BUCKET_SECONDS}) AS bigint) AS q,
           {_MET} AS met, {_MISSED} AS missed
    FROM case_facts WHERE {_IN}
) AS r
GROUP BY GROUPING SETS ((lb), (sb, m), (q))
""")

# The values of the buckets that hold a percentile: reaction times per group (only the
# groups that need that bucket), and the total's collector lags and resolutions.
_VALUES = text(f"""
WITH r AS (
    SELECT {_DIMENSION_COLUMNS}, reaction_seconds, {bucket_sql('reaction_seconds')} AS b,
           lag_seconds, {bucket_sql('lag_seconds')} AS lb,
           CASE WHEN {_RESOLVED} THEN resolution_seconds END AS resolution,
           CASE WHEN {_RESOLVED} THEN {bucket_sql('resolution_seconds')} END AS sb
    FROM case_facts WHERE {_IN}
      AND ({bucket_sql('reaction_seconds')} = ANY(CAST(:reaction_buckets AS bigint[]))
           OR {bucket_sql('lag_seconds')} = ANY(CAST(:lag_buckets AS bigint[]))
           OR ({_RESOLVED}
               AND {bucket_sql('resolution_seconds')} = ANY(CAST(:resolution_buckets
                                                                AS bigint[]))))
), needed AS (
    SELECT * FROM unnest(CAST(:dims AS text[]), CAST(:keys AS text[]),
                         CAST(:buckets AS bigint[])) AS n(dim, key, b)
), long AS (
    SELECT d.dim, d.key, r.b, r.reaction_seconds AS value
    FROM r CROSS JOIN LATERAL {_KEYS.format(r='r')} AS d(dim, key)
    WHERE d.key IS NOT NULL AND r.b = ANY(CAST(:reaction_buckets AS bigint[]))
    UNION ALL
    SELECT 'topic', t.key, r.b, r.reaction_seconds
    FROM r CROSS JOIN LATERAL {_TOPICS.format(t='r.topics')} AS t(key)
    WHERE r.b = ANY(CAST(:reaction_buckets AS bigint[]))
)
SELECT 'reaction' AS figure, l.dim, l.key, l.b, array_agg(l.value) AS vals
FROM long l JOIN needed n ON n.dim = l.dim AND n.key = l.key AND n.b = l.b
GROUP BY l.dim, l.key, l.b
UNION ALL
SELECT 'lag', 'all', 'all', lb, array_agg(lag_seconds) FROM r
WHERE lb = ANY(CAST(:lag_buckets AS bigint[])) GROUP BY lb
UNION ALL
SELECT 'resolution', 'all', 'all', sb, array_agg(resolution) FROM r
WHERE sb = ANY(CAST(:resolution_buckets AS bigint[])) GROUP BY sb
""")


@dataclass(frozen=True)
class Figures:
    """What the scan found: the groups by breakdown ("all" holds the total), the
    total's lag and resolution, messages to resolve, days and histogram."""

    groups: dict[str, list[Group]]
    lag: Stat
    resolution: Stat
    messages: dict[str, int]
    days: list[Day]
    histogram: dict[str, dict[int, int]]


@dataclass
class _Spread:
    """A group's durations: how many fall in each bucket, and the ranks it needs."""

    buckets: list[int]
    counts: list[int]

    @property
    def count(self) -> int:
        return sum(self.counts)

    def ranks(self) -> list[int]:
        """Return the ranks (0-based, in value order) the percentiles interpolate between."""
        n = self.count
        if n == 0:
            return []
        found = set()
        for q in QUANTILES:
            low = math.floor(q * (n - 1))
            found |= {low, min(low + 1, n - 1)}
        return sorted(found)

    def place(self, rank: int) -> tuple[int, int]:
        """Return the bucket of the value at `rank`, and its rank within the bucket."""
        before = 0
        for bucket, count in zip(self.buckets, self.counts, strict=True):
            if rank < before + count:
                return bucket, rank - before
            before += count
        raise ValueError(f"rank {rank} beyond {before} values")

    def stat(self, values: dict[int, list[float]]) -> Stat:
        """Return the count, median and 90th percentile, picking from the sorted values of
        the buckets that hold the ranks — as `socialcare.bot.metrics.quantile` would."""
        n = self.count
        if n == 0:
            return Stat()

        def at(rank: int) -> float:
            bucket, within = self.place(rank)
            return values[bucket][within]

        picked = []
        for q in QUANTILES:
            position = q * (n - 1)
            low = math.floor(position)
            high = min(low + 1, n - 1)
            picked.append(at(low) + (at(high) - at(low)) * (position - low))
        return Stat(n, picked[0], picked[1])


class ReportScan:
    """The figures of a period, read from PostgreSQL by `run(query, params)`, which runs
    each query on its own connection (the server runs them side by side)."""

    def __init__(self, period: Period, now: datetime, run: Run) -> None:
        self._period = period
        self._params = {"start": period.start, "end": period.end, "now": now}
        self._run = run

    async def figures(self) -> Figures:
        """Read the counts (two queries at once), then the values that hold the
        percentiles; gather the figures."""
        group_rows, total_rows = await asyncio.gather(
            self._run(_GROUPS, self._params), self._run(_TOTALS, self._params))
        spreads: dict[tuple[str, str], _Spread] = {}
        for row in group_rows:
            spreads[(row.dim, row.key)] = _Spread(list(row.buckets or []),
                                                  list(row.counts or []))
        lag, resolution = _Spread([], []), _Spread([], [])
        messages = {"1": 0, "2": 0, "3": 0, "4+": 0}
        quarters: list[Any] = []
        lags: dict[int, int] = {}
        resolutions: dict[int, int] = {}
        for row in total_rows:
            if not row.no_lag:
                if row.lb is not None:
                    lags[row.lb] = lags.get(row.lb, 0) + row.cases
            elif not row.no_resolution:
                if row.sb is not None:
                    resolutions[row.sb] = resolutions.get(row.sb, 0) + row.cases
                    messages["4+" if row.m >= 4 else str(row.m)] += row.cases
            else:
                quarters.append(row)
        lag = _Spread(sorted(lags), [lags[b] for b in sorted(lags)])
        resolution = _Spread(sorted(resolutions), [resolutions[b] for b in sorted(resolutions)])
        values = await self._values(spreads, lag, resolution)
        groups: dict[str, list[Group]] = {}
        for (dim, key), spread in spreads.items():
            row = next(r for r in group_rows if r.dim == dim and r.key == key)
            groups.setdefault(dim, []).append(Group(
                key=key, cases=row.cases, dismissed=row.dismissed,
                reaction=spread.stat(values.get(("reaction", dim, key), {})),
                met=row.met, missed=row.missed, pending=row.pending))
        for members in groups.values():
            members.sort(key=lambda g: (-g.cases, g.key))
        groups.setdefault("all", [Group("all")])
        histogram: dict[str, dict[int, int]] = {}
        for (dim, key), spread in spreads.items():
            if dim != "tier":
                continue
            for bucket, count in zip(spread.buckets, spread.counts, strict=True):
                minutes = histogram.setdefault(key, {})
                minute = bucket_minute(bucket)
                minutes[minute] = minutes.get(minute, 0) + count
        return Figures(
            groups=groups,
            lag=lag.stat(values.get(("lag", "all", "all"), {})),
            resolution=resolution.stat(values.get(("resolution", "all", "all"), {})),
            messages=messages, days=_days(self._period, quarters), histogram=histogram)

    async def _values(self, spreads: dict[tuple[str, str], _Spread], lag: _Spread,
                      resolution: _Spread) -> dict[tuple[str, str, str], dict[int, list[float]]]:
        """Read the sorted values of the buckets that hold a rank a percentile needs."""
        needed: set[tuple[str, str, int]] = set()
        for (dim, key), spread in spreads.items():
            needed |= {(dim, key, spread.place(rank)[0]) for rank in spread.ranks()}
        lag_buckets = sorted({lag.place(rank)[0] for rank in lag.ranks()})
        resolution_buckets = sorted({resolution.place(rank)[0] for rank in resolution.ranks()})
        if not needed and not lag_buckets and not resolution_buckets:
            return {}
        ordered = sorted(needed)
        rows = await self._run(_VALUES, {
            **self._params,
            "reaction_buckets": sorted({b for _, _, b in ordered}),
            "lag_buckets": lag_buckets, "resolution_buckets": resolution_buckets,
            "dims": [d for d, _, _ in ordered], "keys": [k for _, k, _ in ordered],
            "buckets": [b for _, _, b in ordered],
        })
        found: dict[tuple[str, str, str], dict[int, list[float]]] = {}
        for row in rows:
            found.setdefault((row.figure, row.dim, row.key), {})[row.b] = sorted(row.vals)
        return found


def _days(period: Period, rows: Sequence[Any]) -> list[Day]:
    days = {d: [0, 0, 0] for d in period.days}
    for row in rows:
        moment = datetime.fromtimestamp(float(row.q) * DAY_BUCKET_SECONDS, UTC)
        counts = days[moment.astimezone(period.zone).date()]
        counts[0] += row.cases
        counts[1] += row.met
        counts[2] += row.missed
    return [Day(d, *c) for d, c in days.items()]
