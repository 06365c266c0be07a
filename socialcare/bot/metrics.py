"""The team's figures, computed from the event log alone.

- reaction time: the customer published → the first agent answer;
- collector lag: the customer published → the mention reached us;
- resolution time: the customer published → the case was (last) resolved;
- messages to resolve: customer and agent messages, the first mention included,
  until the case was resolved;
- first answer: the earliest agent answer by the time it was published (the brand's
  post on the platform, delivered after an agent pressed Mark answered, counts from
  when it was posted);
- SLA met: the first answer came by the first-response deadline; a case dismissed
  unanswered before its deadline needed no answer (neither met nor missed), one
  dismissed after its deadline stays missed;
- time with the second line: from each hand-off to its hand-back (or to now).

A case's *facts* (`case_facts`) depend on its events only; its *figures*
(`figures`) are the facts as of a moment, because an unanswered case turns from
"pending" to "missed" when its deadline passes. A case still open has no resolution
time and no message count — never zero.

Medians and percentiles are linear interpolations between the closest ranks — the
definition of PostgreSQL's `percentile_cont`, so that a report computed in SQL and
one computed here agree exactly.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from socialcare.bot.model import Event, EventKind, Tier

_MESSAGES = (EventKind.CREATED, EventKind.CUSTOMER_MESSAGE, EventKind.AGENT_MESSAGE)


class Standing(StrEnum):
    """Whether a case is still open, or how it was closed."""

    OPEN = "open"
    RESOLVED = "resolved"
    DISMISSED = "dismissed"


# Events that decide a case's standing; the others leave it as it was.
_STANDING_AFTER = {
    EventKind.CREATED: Standing.OPEN,
    EventKind.REOPENED: Standing.OPEN,
    EventKind.RESOLVED: Standing.RESOLVED,
    EventKind.DISMISSED: Standing.DISMISSED,
}


# The events `case_facts` reads; the others (claims, releases, SLA points, escalations)
# leave a case's facts as they were, so appending them needs no recomputation.
FACT_EVENTS = frozenset({
    EventKind.CREATED, EventKind.CUSTOMER_MESSAGE, EventKind.AGENT_MESSAGE,
    EventKind.RESOLVED, EventKind.DISMISSED, EventKind.REOPENED, EventKind.HANDED_OFF,
    EventKind.HANDED_BACK, EventKind.TOPICS_CHANGED,
})


@dataclass(frozen=True)
class CaseFacts:
    """What a case's events establish, whatever the time now."""

    case_id: int
    tier: Tier
    platform: str
    brand: str
    source: str
    published_at: datetime
    collected_at: datetime
    response_due_at: datetime
    standing: Standing
    first_answer_at: datetime | None
    first_answer_by: str | None
    resolved_at: datetime | None  # the last resolution, if the case stands resolved
    messages_to_resolve: int | None
    second_line_closed: timedelta  # finished stays with the second line
    with_second_line_since: datetime | None  # a stay still going on
    language: str | None = None
    topics: tuple[str, ...] = ()  # as the last change of topics left them
    places: tuple[str, ...] = ()
    dismissed_at: datetime | None = None  # the last dismissal, if the case stands dismissed


@dataclass(frozen=True)
class CaseFigures:
    """One case's figures as of a moment."""

    case_id: int
    tier: Tier
    platform: str
    brand: str
    published_at: datetime
    standing: Standing
    collector_lag: timedelta
    reaction: timedelta | None
    resolution: timedelta | None
    messages_to_resolve: int | None
    sla_met: bool | None  # None: no answer yet, deadline not passed
    second_line: timedelta = timedelta(0)
    first_answer_by: str | None = None
    # Dismissed unanswered before its deadline: neither met, missed nor pending.
    sla_void: bool = False


def case_facts(events: Sequence[Event]) -> CaseFacts:
    """Establish a case's facts from its events, in the order they were appended."""
    created = events[0]
    if created.kind is not EventKind.CREATED:
        raise ValueError(f"case #{created.case_id}: the first event must be 'created'")
    standing = Standing.OPEN
    first_answer: Event | None = None
    messages = 0
    resolved: tuple[datetime, int] | None = None
    dismissed_at: datetime | None = None
    with_team_since: datetime | None = None
    second_line = timedelta(0)
    topics = tuple(created.data.get("topics", ()))
    for event in events:
        if event.kind is EventKind.TOPICS_CHANGED:
            topics = tuple(event.data.get("topics", ()))
        if event.kind is EventKind.HANDED_OFF:
            with_team_since = event.at
        elif event.kind is EventKind.HANDED_BACK and with_team_since is not None:
            second_line += event.at - with_team_since
            with_team_since = None
        if event.kind in _MESSAGES:
            messages += 1
        standing = _STANDING_AFTER.get(event.kind, standing)
        # The earliest by its time, not by when it reached us (ties: the first recorded).
        if event.kind is EventKind.AGENT_MESSAGE and (
                first_answer is None or event.at < first_answer.at):
            first_answer = event
        if event.kind is EventKind.RESOLVED:
            resolved = (event.at, messages)
        if event.kind is EventKind.DISMISSED:
            dismissed_at = event.at
    if standing is not Standing.RESOLVED:
        resolved = None  # reopened and not resolved again, or dismissed
    if standing is not Standing.DISMISSED:
        dismissed_at = None
    data = created.data
    return CaseFacts(
        case_id=created.case_id,
        tier=Tier(data["tier"]),
        platform=data["platform"],
        brand=data["brand"],
        source=data.get("source", ""),
        published_at=datetime.fromisoformat(data["published_at"]),
        collected_at=datetime.fromisoformat(data["collected_at"]),
        response_due_at=datetime.fromisoformat(data["response_due_at"]),
        standing=standing,
        first_answer_at=None if first_answer is None else first_answer.at,
        first_answer_by=None if first_answer is None else first_answer.actor,
        resolved_at=None if resolved is None else resolved[0],
        messages_to_resolve=None if resolved is None else resolved[1],
        second_line_closed=second_line,
        with_second_line_since=with_team_since,
        language=data.get("language"),
        topics=topics,
        places=tuple(data.get("places", ())),
        dismissed_at=dismissed_at,
    )


def sla_met(facts: CaseFacts, now: datetime) -> bool | None:
    """Tell whether the first answer met its deadline; None while it still may, or when
    the case was dismissed unanswered before its deadline (no answer was needed)."""
    if facts.first_answer_at is not None:
        return facts.first_answer_at <= facts.response_due_at
    if facts.dismissed_at is not None and facts.dismissed_at <= facts.response_due_at:
        return None
    return False if now > facts.response_due_at else None


def sla_pending(facts: CaseFacts, now: datetime) -> bool:
    """Tell whether the case still waits for its first answer within its deadline."""
    return facts.dismissed_at is None and sla_met(facts, now) is None


def figures(facts: CaseFacts, *, now: datetime) -> CaseFigures:
    """Return a case's figures as of `now`."""
    published = facts.published_at
    open_stay = now - facts.with_second_line_since if facts.with_second_line_since else None
    return CaseFigures(
        case_id=facts.case_id,
        tier=facts.tier,
        platform=facts.platform,
        brand=facts.brand,
        published_at=published,
        standing=facts.standing,
        collector_lag=max(timedelta(0), facts.collected_at - published),
        reaction=None if facts.first_answer_at is None else facts.first_answer_at - published,
        resolution=None if facts.resolved_at is None else facts.resolved_at - published,
        messages_to_resolve=facts.messages_to_resolve,
        sla_met=sla_met(facts, now),
        second_line=facts.second_line_closed + (open_stay or timedelta(0)),
        first_answer_by=facts.first_answer_by,
        sla_void=facts.dismissed_at is not None and sla_met(facts, now) is None,
    )


def case_figures(events: Sequence[Event], *, now: datetime) -> CaseFigures:
    """Compute a case's figures from its events, as of `now`."""
    return figures(case_facts(events), now=now)


@dataclass(frozen=True)
class SlaTally:
    """How many cases of a tier met, missed, or are still inside their first-response SLA."""

    tier: Tier
    met: int = 0
    missed: int = 0
    pending: int = 0

    @property
    def met_share(self) -> float | None:
        """Return the share of decided cases that met the SLA, or None if none is decided."""
        decided = self.met + self.missed
        return None if decided == 0 else self.met / decided


def sla_by_tier(figures: Iterable[CaseFigures]) -> dict[Tier, SlaTally]:
    """Count SLA met / missed / pending per tier."""
    counts = {tier: [0, 0, 0] for tier in Tier}
    for f in figures:
        if not f.sla_void:
            counts[f.tier][0 if f.sla_met else 1 if f.sla_met is False else 2] += 1
    return {tier: SlaTally(tier, *c) for tier, c in counts.items()}


def quantile(values: Sequence[float], q: float) -> float | None:
    """Return the q-quantile (0..1) by linear interpolation between the closest ranks;
    None for no values. The same as PostgreSQL's percentile_cont."""
    if not values:
        return None
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)
