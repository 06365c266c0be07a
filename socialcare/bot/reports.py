"""Reports: a period's figures, aggregated from the cases' facts.

A case belongs to the period (and the day) its customer published in, in the team's
timezone. Every figure is defined by `socialcare.bot.metrics`; this module only
gathers them: counts, medians and 90th percentiles, SLA shares, the distribution of
messages to resolve, the worst breaches, per-agent figures, and a day-by-day series.
`aggregate` does it in Python from facts; storage may do the same in SQL (it must
agree exactly — the tests hold both to a brute-force recomputation from events).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from socialcare.bot.metrics import CaseFacts, Standing, quantile, sla_met, sla_pending
from socialcare.bot.team import ReportSchedule

DIMENSIONS = ("tier", "platform", "brand", "agent", "topic", "language")
# The key of the cases with no topic (or no language) in those breakdowns.
NONE = "-"
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
WORST = 5
HISTOGRAM_CAP = 120  # minutes: slower answers share the last bar
# Reports cover days in this span (a date far beyond it overflows the clock's arithmetic).
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2999, 12, 31)
_RANGE = re.compile(r"^(\d{4}-\d{2}-\d{2})\.\.(\d{4}-\d{2}-\d{2})$")


class BadPeriod(ValueError):
    """The period is not one of the forms `/report` understands."""


@dataclass(frozen=True)
class Period:
    """Whole days in the team's timezone: [first, last]."""

    first: date
    last: date
    zone: ZoneInfo
    name: str  # "today", "week", "2026-11-01..2026-11-15"

    @property
    def start(self) -> datetime:
        """Return the first day's midnight, aware."""
        return datetime.combine(self.first, time(), self.zone)

    @property
    def end(self) -> datetime:
        """Return the midnight after the last day, aware."""
        return datetime.combine(self.last + timedelta(days=1), time(), self.zone)

    @property
    def days(self) -> list[date]:
        """Return every day of the period."""
        return [self.first + timedelta(days=i) for i in range((self.last - self.first).days + 1)]

    @property
    def previous(self) -> Period:
        """Return the period to compare with: the same days a week earlier for a week
        (so far), the same days of the month before for a month (so far), else as many
        days just before."""
        length = (self.last - self.first).days + 1
        if self.name in ("week", "last week"):
            shift = timedelta(days=7)
            return Period(self.first - shift, self.last - shift, self.zone, "previous")
        if self.name in ("month", "last month") and self.first.day == 1:
            last_month = self.first - timedelta(days=1)
            first = last_month.replace(day=1)
            last = min(first + timedelta(days=length - 1), last_month)
            return Period(first, last, self.zone, "previous")
        return Period(self.first - timedelta(days=length), self.first - timedelta(days=1),
                      self.zone, "previous")

    @property
    def label(self) -> str:
        """Return the period as dates, e.g. 23.11–29.11.2026."""
        if self.first == self.last:
            return self.first.strftime("%d.%m.%Y")
        return f"{self.first.strftime('%d.%m')}–{self.last.strftime('%d.%m.%Y')}"


def parse_period(word: str, *, now: datetime, zone: ZoneInfo) -> Period:
    """Parse today | yesterday | week | month | YYYY-MM-DD..YYYY-MM-DD (default today)."""
    today = now.astimezone(zone).date()
    word = word.strip().casefold() or "today"
    if word == "today":
        return Period(today, today, zone, word)
    if word == "yesterday":
        day = today - timedelta(days=1)
        return Period(day, day, zone, word)
    if word == "week":  # the week so far, from Monday
        return Period(today - timedelta(days=today.weekday()), today, zone, word)
    if word == "month":  # the month so far
        return Period(today.replace(day=1), today, zone, word)
    found = _RANGE.match(word)
    if found is None:
        raise BadPeriod(word)
    try:
        first, last = (date.fromisoformat(found[i]) for i in (1, 2))
    except ValueError:
        raise BadPeriod(word) from None
    if last < first or (last - first).days > 366 or not FIRST_DAY <= first <= last <= LAST_DAY:
        raise BadPeriod(word)
    return Period(first, last, zone, word)


@dataclass(frozen=True)
class Stat:
    """A duration's count, median and 90th percentile, in seconds."""

    count: int = 0
    median: float | None = None
    p90: float | None = None

    @classmethod
    def of(cls, values: Sequence[float]) -> Stat:
        """Summarise values."""
        return cls(len(values), quantile(values, 0.5), quantile(values, 0.9))


@dataclass(frozen=True)
class Group:
    """The figures of the cases sharing a tier, a platform, a brand or a first answerer."""

    key: str
    cases: int = 0
    dismissed: int = 0
    reaction: Stat = field(default_factory=Stat)
    met: int = 0
    missed: int = 0
    pending: int = 0

    @property
    def met_share(self) -> float | None:
        """Return the share of decided cases answered within the SLA."""
        decided = self.met + self.missed
        return None if decided == 0 else self.met / decided


@dataclass(frozen=True)
class Breach:
    """A case that missed its first-response deadline, and by how much."""

    case_id: int
    tier: str
    platform: str
    overdue_seconds: float


@dataclass(frozen=True)
class Day:
    """One day's volume and SLA."""

    day: date
    cases: int = 0
    met: int = 0
    missed: int = 0


@dataclass(frozen=True)
class Report:
    """A period's figures."""

    period: Period
    total: Group  # all cases of the period
    groups: dict[str, list[Group]]  # by dimension, biggest first
    collector_lag: Stat
    resolution: Stat
    messages: dict[str, int]  # "1", "2", "3", "4+" → resolved cases
    breaches: int
    worst: list[Breach]
    days: list[Day]
    # Per tier: reaction minutes (capped) → answered cases, for the chart.
    histogram: dict[str, dict[int, int]]
    escalations: dict[str, int] = field(default_factory=dict)
    # Answers given in the period by their form (text, picture, callback, calculation).
    answers: dict[str, int] = field(default_factory=dict)
    # The previous period's cases per topic ("what is growing"), filled by storage.
    previous_topics: dict[str, int] = field(default_factory=dict)

    @property
    def resolved(self) -> int:
        """Return how many of the period's cases stand resolved."""
        return sum(self.messages.values())

    def within_messages(self, n: int) -> float | None:
        """Return the share of resolved cases that took at most n messages."""
        if not self.resolved:
            return None
        return sum(v for k, v in self.messages.items() if k != "4+" and int(k) <= n) / \
            self.resolved


def _seconds(delta: timedelta) -> float:
    return delta.total_seconds()


def aggregate(facts: Iterable[CaseFacts], *, period: Period, now: datetime) -> Report:
    """Gather a period's figures from its cases' facts."""
    rows = [f for f in facts if period.start <= f.published_at < period.end]
    keys: dict[str, Callable[[CaseFacts], Iterable[str | None]]] = {
        "tier": lambda f: [f.tier.value], "platform": lambda f: [f.platform],
        "brand": lambda f: [f.brand], "agent": lambda f: [f.first_answer_by],
        # A case counts under each of its topics.
        "topic": lambda f: f.topics or [NONE], "language": lambda f: [f.language or NONE],
    }
    groups: dict[str, list[Group]] = {}
    for dimension, key in keys.items():
        members: dict[str, list[CaseFacts]] = {}
        for f in rows:
            for value in key(f):
                if value is not None:
                    members.setdefault(value, []).append(f)
        groups[dimension] = sorted((_group(k, m, now) for k, m in members.items()),
                                   key=lambda g: (-g.cases, g.key))
    resolved = [f for f in rows if f.standing is Standing.RESOLVED and f.resolved_at]
    messages = {"1": 0, "2": 0, "3": 0, "4+": 0}
    for f in resolved:
        n = f.messages_to_resolve or 0
        messages["4+" if n >= 4 else str(max(n, 1))] += 1
    missed = [f for f in rows if sla_met(f, now) is False]
    worst = sorted(
        (Breach(f.case_id, f.tier.value, f.platform,
                _seconds((f.first_answer_at or now) - f.response_due_at)) for f in missed),
        key=lambda b: (-b.overdue_seconds, b.case_id),
    )[:WORST]
    by_day = {d: [0, 0, 0] for d in period.days}
    histogram: dict[str, dict[int, int]] = {}
    for f in rows:
        counts = by_day[f.published_at.astimezone(period.zone).date()]
        counts[0] += 1
        status = sla_met(f, now)
        counts[1] += status is True
        counts[2] += status is False
        if f.first_answer_at is not None:
            minute = min(int(_seconds(f.first_answer_at - f.published_at) // 60),
                         HISTOGRAM_CAP)
            tier = histogram.setdefault(f.tier.value, {})
            tier[minute] = tier.get(minute, 0) + 1
    return Report(
        period=period,
        total=_group("all", rows, now),
        groups=groups,
        collector_lag=Stat.of([max(0.0, _seconds(f.collected_at - f.published_at))
                               for f in rows]),
        resolution=Stat.of([_seconds(f.resolved_at - f.published_at) for f in resolved
                            if f.resolved_at]),
        messages=messages,
        breaches=len(missed),
        worst=worst,
        days=[Day(d, *c) for d, c in by_day.items()],
        histogram=histogram,
    )


def topic_counts(facts: Iterable[CaseFacts], *, period: Period) -> dict[str, int]:
    """Count a period's cases per topic (a case under each of its topics)."""
    counts: dict[str, int] = {}
    for f in facts:
        if period.start <= f.published_at < period.end:
            for topic in f.topics or [NONE]:
                counts[topic] = counts.get(topic, 0) + 1
    return counts


def _group(key: str, members: Sequence[CaseFacts], now: datetime) -> Group:
    statuses = [sla_met(f, now) for f in members]
    return Group(
        key=key,
        cases=len(members),
        dismissed=sum(f.standing is Standing.DISMISSED for f in members),
        reaction=Stat.of([_seconds(f.first_answer_at - f.published_at)
                          for f in members if f.first_answer_at is not None]),
        met=statuses.count(True),
        missed=statuses.count(False),
        pending=sum(sla_pending(f, now) for f in members),
    )


@dataclass(frozen=True)
class ScheduledReport:
    """A report that is due: its job, the period it covers, and that period's key."""

    job: str  # "report-daily", "report-weekly", "report-monthly"
    key: str  # the period, e.g. 2026-11-24, 2026-W47, 2026-10
    period: Period


def due_reports(schedule: ReportSchedule, *, now: datetime, zone: ZoneInfo) -> list[
        ScheduledReport]:
    """Return the scheduled reports due by now: yesterday's once today's time has come,
    last week's on the weekly day, last month's on the monthly day."""
    local = now.astimezone(zone)
    today = local.date()
    if local.time() < schedule.at:
        return []
    due = []
    yesterday = today - timedelta(days=1)
    due.append(ScheduledReport("report-daily", yesterday.isoformat(),
                               Period(yesterday, yesterday, zone, "yesterday")))
    if today.weekday() == _WEEKDAYS.index(schedule.weekly_day):
        monday = today - timedelta(days=today.weekday() + 7)
        year, number, _ = monday.isocalendar()
        due.append(ScheduledReport("report-weekly", f"{year}-W{number:02d}",
                                   Period(monday, monday + timedelta(days=6), zone,
                                          "last week")))
    if today.day == schedule.monthly_day:
        last_day = today.replace(day=1) - timedelta(days=1)
        first_day = last_day.replace(day=1)
        due.append(ScheduledReport("report-monthly", first_day.strftime("%Y-%m"),
                                   Period(first_day, last_day, zone, "last month")))
    return due
