"""SLA policy and the points on a case's clocks: warnings, breach, re-pings.

A case carries two clocks. The response clock runs from the moment the customer
published (or wrote again) until an agent answers; the resolution clock, when the
tier has a resolution target, runs from the first mention until the case is resolved.
Each clock has points — warnings at fractions of the allowed time, the breach, and,
for the response clock, a re-ping every few minutes until answered. A case stores how
many points of each clock have fired and when the next one is due, so that a
scheduler can fire each point exactly once with a conditional update.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from socialcare.bot.model import SYSTEM, Case, Event, EventKind, State, Tier

# A point fired later than this after its time says so in its event and in the log.
LATE_AFTER = timedelta(seconds=60)


@dataclass(frozen=True)
class SlaPolicy:
    """What one tier promises: minutes to first answer, to the next answer, to resolve."""

    __pydantic_config__ = {"extra": "forbid"}  # noqa: RUF012 - read by the settings loader

    first_response_minutes: int
    next_response_minutes: int | None = None
    resolution_minutes: int | None = None
    warning_points: tuple[float, ...] = (0.5, 0.8)
    repeat_minutes: int = 10
    # A claim unanswered this long returns the case to the queue; none = claims last.
    claim_expiry_minutes: int | None = None

    def __post_init__(self) -> None:
        if self.first_response_minutes <= 0:
            raise ValueError("first_response_minutes: must be a positive number of minutes")
        for name in ("next_response_minutes", "resolution_minutes", "claim_expiry_minutes"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name}: must be a positive number of minutes")
        if self.repeat_minutes <= 0:
            raise ValueError("repeat_minutes: must be a positive number of minutes")
        if any(not 0 < p < 1 for p in self.warning_points):
            raise ValueError("warning_points: need fractions between 0 and 1, e.g. [0.5, 0.8]")
        if list(self.warning_points) != sorted(set(self.warning_points)):
            raise ValueError("warning_points: must be increasing and distinct")

    @property
    def first_response(self) -> timedelta:
        """Return the time allowed for the first answer."""
        return timedelta(minutes=self.first_response_minutes)

    @property
    def next_response(self) -> timedelta:
        """Return the time allowed to answer when the customer writes again."""
        return timedelta(minutes=self.next_response_minutes or self.first_response_minutes)

    @property
    def resolution(self) -> timedelta | None:
        """Return the time allowed to resolve, if the tier has such a target."""
        return None if self.resolution_minutes is None else timedelta(
            minutes=self.resolution_minutes
        )


@dataclass(frozen=True)
class SlaConfig:
    """The SLA policy of each tier."""

    __pydantic_config__ = {"extra": "forbid"}  # noqa: RUF012 - read by the settings loader

    main: SlaPolicy = field(default_factory=lambda: SlaPolicy(first_response_minutes=15))
    extra: SlaPolicy = field(default_factory=lambda: SlaPolicy(first_response_minutes=60))

    def for_tier(self, tier: Tier) -> SlaPolicy:
        """Return the policy of a tier."""
        return self.main if tier is Tier.MAIN else self.extra


class SlaClock(StrEnum):
    """Which of a case's clocks a point belongs to."""

    RESPONSE = "response"
    RESOLUTION = "resolution"


class PointKind(StrEnum):
    """Warning before the deadline, the breach itself, or a reminder after it."""

    WARNING = "warning"
    BREACH = "breach"
    REPEAT = "repeat"


@dataclass(frozen=True)
class SlaPoint:
    """One moment on a clock at which the team is told how the case stands."""

    clock: SlaClock
    index: int
    kind: PointKind
    at: datetime
    label: str


def point(
    policy: SlaPolicy, clock: SlaClock, started: datetime, due: datetime, index: int
) -> SlaPoint | None:
    """Return the index-th point of a clock, or None past its last point."""
    warnings = policy.warning_points
    if index < len(warnings):
        fraction = warnings[index]
        return SlaPoint(
            clock, index, PointKind.WARNING, started + (due - started) * fraction,
            f"warning {round(fraction * 100)}%",
        )
    if index == len(warnings):
        return SlaPoint(clock, index, PointKind.BREACH, due, "breach")
    if clock is SlaClock.RESOLUTION:
        return None
    repeat = index - len(warnings)
    return SlaPoint(
        clock, index, PointKind.REPEAT, due + timedelta(minutes=policy.repeat_minutes) * repeat,
        f"breach +{policy.repeat_minutes * repeat} min",
    )


def start_response_clock(case: Case, started: datetime, policy: SlaPolicy, *, first: bool) -> None:
    """Start (or restart, when the customer writes again) the response clock."""
    if not first:
        case.response_cycle += 1
    case.response_started_at = started
    case.response_due_at = started + (policy.first_response if first else policy.next_response)
    case.response_alerts = 0
    schedule(case, policy)


def stop_response_clock(case: Case, policy: SlaPolicy) -> None:
    """Stop the response clock: the customer has their answer."""
    case.response_due_at = None
    schedule(case, policy)


def _clock(case: Case, clock: SlaClock) -> tuple[datetime, datetime, int] | None:
    """Return (started, due, points fired) of a running clock, or None if it is stopped."""
    if not case.is_open:
        return None
    if clock is SlaClock.RESPONSE:
        if case.response_due_at is None or case.response_started_at is None:
            return None
        return case.response_started_at, case.response_due_at, case.response_alerts
    if case.resolve_due_at is None:
        return None
    return case.published_at, case.resolve_due_at, case.resolve_alerts


def _next_point(case: Case, policy: SlaPolicy, clock: SlaClock) -> SlaPoint | None:
    running = _clock(case, clock)
    if running is None:
        return None
    started, due, fired = running
    return point(policy, clock, started, due, fired)


def claim_expires_at(case: Case, policy: SlaPolicy) -> datetime | None:
    """Return when the current claim lapses if the case stays unanswered, if ever."""
    if (
        policy.claim_expiry_minutes is None
        or case.handoff_team is not None  # the second line has it; the agent waits
        or case.state is not State.CLAIMED
        or case.claimed_at is None
        or not case.awaits_response
    ):
        return None
    # Counted from the claim, or from the customer's newest message if that is later.
    since = max(case.claimed_at, case.response_started_at or case.claimed_at)
    return since + timedelta(minutes=policy.claim_expiry_minutes)


def schedule(case: Case, policy: SlaPolicy) -> None:
    """Set the case's next alert time from its clocks and its claim."""
    upcoming = [p.at for c in SlaClock if (p := _next_point(case, policy, c)) is not None]
    if (expiry := claim_expires_at(case, policy)) is not None:
        upcoming.append(expiry)
    case.next_alert_at = min(upcoming) if upcoming else None


def fire_due_points(case: Case, policy: SlaPolicy, now: datetime) -> list[Event]:
    """Advance the case's clocks to `now` and return one event per point that fell due.

    Every warning and breach fires once, however late. Of several re-pings missed
    while nobody was running, only the latest fires: a stack of reminders for one
    case helps no one. A point that is already followed by another due point of the
    same clock is marked `superseded`, so that messengers can stay quiet about it.
    """
    assert case.id is not None
    due: list[SlaPoint] = []
    for clock in SlaClock:
        while (p := _next_point(case, policy, clock)) is not None and p.at <= now:
            if p.kind is PointKind.REPEAT:
                missed = int((now - p.at) / timedelta(minutes=policy.repeat_minutes))
                started, deadline, _ = _clock(case, clock)  # type: ignore[misc]
                p = point(policy, clock, started, deadline, p.index + missed) or p
            due.append(p)
            _count_fired(case, clock, p.index + 1)
    due.sort(key=lambda p: p.at)
    events = []
    for i, p in enumerate(due):
        late = now - p.at
        events.append(Event(
            case_id=case.id, kind=EventKind.SLA_POINT, actor=SYSTEM, at=now,
            data={
                "tier": case.tier.value,
                "clock": p.clock.value,
                "point": p.kind.value,
                "index": p.index,
                "label": p.label,
                # For the notes: how much of the allowed time is gone, how long overdue.
                "percent": _percent(policy, p),
                "minutes_over": round((p.at - _deadline(case, p.clock)).total_seconds() / 60),
                "cycle": case.response_cycle,
                "due_at": p.at.isoformat(),  # when this point fell due
                "deadline_at": _deadline(case, p.clock).isoformat(),  # when the clock runs out
                "late_seconds": round(late.total_seconds()) if late > LATE_AFTER else 0,
                "superseded": any(q.clock is p.clock for q in due[i + 1:]),
            },
        ))
    schedule(case, policy)
    return events


def _percent(policy: SlaPolicy, p: SlaPoint) -> int:
    return round(policy.warning_points[p.index] * 100) if p.kind is PointKind.WARNING else 100


def _deadline(case: Case, clock: SlaClock) -> datetime:
    running = _clock(case, clock)
    assert running is not None
    return running[1]


def _count_fired(case: Case, clock: SlaClock, fired: int) -> None:
    if clock is SlaClock.RESPONSE:
        case.response_alerts = fired
    else:
        case.resolve_alerts = fired


def parse_due(data: Mapping[str, Any]) -> datetime:
    """Return when an SLA point fell due, from its event data."""
    return datetime.fromisoformat(data["due_at"])


def parse_deadline(data: Mapping[str, Any]) -> datetime:
    """Return the deadline of the clock an SLA point belongs to, from its event data.

    Points recorded before the deadline was written fall back to their own due time
    (right for a breach, early for a warning)."""
    return datetime.fromisoformat(data.get("deadline_at") or data["due_at"])


def time_left(case: Case, now: datetime) -> timedelta | None:
    """Return the time left to answer (negative once overdue), or None if not waiting."""
    if not case.awaits_response or case.response_due_at is None:
        return None
    return case.response_due_at - now
