"""The team's figures, computed from the event log alone.

- reaction time: the customer published → the first agent answer;
- collector lag: the customer published → the mention reached us;
- resolution time: the customer published → the case was (last) resolved;
- messages to resolve: customer and agent messages, the first mention included,
  until the case was resolved;
- SLA met: the first answer came by the first-response deadline;
- time with the second line: from each hand-off to its hand-back (or to now).

A case still open has no resolution time and no message count — never zero — and
its SLA is "pending" until the deadline passes unanswered.
"""

from __future__ import annotations

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


@dataclass(frozen=True)
class CaseFigures:
    """One case's figures."""

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


def case_figures(events: Sequence[Event], *, now: datetime) -> CaseFigures:
    """Compute a case's figures from its events, in the order they were appended."""
    created = events[0]
    if created.kind is not EventKind.CREATED:
        raise ValueError(f"case #{created.case_id}: the first event must be 'created'")
    published = datetime.fromisoformat(created.data["published_at"])
    collected = datetime.fromisoformat(created.data["collected_at"])
    due = datetime.fromisoformat(created.data["response_due_at"])
    standing = Standing.OPEN
    first_answer: datetime | None = None
    messages = 0
    resolved: tuple[datetime, int] | None = None
    with_team_since: datetime | None = None
    second_line = timedelta(0)
    for event in events:
        if event.kind is EventKind.HANDED_OFF:
            with_team_since = event.at
        elif event.kind is EventKind.HANDED_BACK and with_team_since is not None:
            second_line += event.at - with_team_since
            with_team_since = None
        if event.kind in _MESSAGES:
            messages += 1
        standing = _STANDING_AFTER.get(event.kind, standing)
        if event.kind is EventKind.AGENT_MESSAGE and first_answer is None:
            first_answer = event.at
        if event.kind is EventKind.RESOLVED:
            resolved = (event.at, messages)
    if standing is not Standing.RESOLVED:
        resolved = None  # reopened and not resolved again, or dismissed
    if first_answer is not None:
        sla_met: bool | None = first_answer <= due
    else:
        sla_met = False if now > due else None
    return CaseFigures(
        case_id=created.case_id,
        tier=Tier(created.data["tier"]),
        platform=created.data["platform"],
        brand=created.data["brand"],
        published_at=published,
        standing=standing,
        collector_lag=max(timedelta(0), collected - published),
        reaction=None if first_answer is None else first_answer - published,
        resolution=None if resolved is None else resolved[0] - published,
        messages_to_resolve=None if resolved is None else resolved[1],
        sla_met=sla_met,
        second_line=second_line + (now - with_team_since if with_team_since else timedelta(0)),
    )


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
        counts[f.tier][0 if f.sla_met else 1 if f.sla_met is False else 2] += 1
    return {tier: SlaTally(tier, *c) for tier, c in counts.items()}
