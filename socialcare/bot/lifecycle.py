"""The case state machine: every transition is checked and returns its event.

    new ──claim──► claimed ──answer──► answered ──resolve──► resolved
     ▲               │                    │                      │
     └───release─────┘   customer writes again: back to work     │ customer writes again
                                                                 ▼
    new/claimed/reopened ──dismiss──► dismissed              reopened ──claim──► claimed

Functions here change a `Case` in memory and return the `Event` that records the
change; the service layer stores both in one transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from socialcare.bot import sla
from socialcare.bot.errors import AlreadyClaimed, DomainError, InvalidTransition
from socialcare.bot.model import Case, Event, EventKind, State
from socialcare.bot.sla import SlaPolicy

# The states each action may start from; anything else is refused with the reason.
ALLOWED: Mapping[str, frozenset[State]] = {
    "claimed": frozenset({State.NEW, State.REOPENED}),
    "released": frozenset({State.CLAIMED}),
    "answered": frozenset({State.NEW, State.REOPENED, State.CLAIMED, State.ANSWERED}),
    "resolved": frozenset({State.ANSWERED}),
    "dismissed": frozenset({State.NEW, State.CLAIMED, State.REOPENED}),
    "handed_off": frozenset({State.NEW, State.CLAIMED, State.ANSWERED, State.REOPENED}),
}


def check(case: Case, action: str) -> None:
    """Raise InvalidTransition unless the case's state allows `action`."""
    if case.state not in ALLOWED[action]:
        raise InvalidTransition(case.id, action, case.state.value)


def _event(case: Case, kind: EventKind, actor: str, at: datetime, **data: Any) -> Event:
    assert case.id is not None, "a case is stored before it changes"
    facts = {key: value for key, value in data.items() if value is not None}
    return Event(case_id=case.id, kind=kind, actor=actor, at=at, data=facts)


def claim(case: Case, *, by: str, at: datetime) -> Event:
    """Give the case to one agent; a case someone holds cannot be claimed again."""
    if case.claimed_by is not None and case.state in (State.CLAIMED, State.ANSWERED):
        raise AlreadyClaimed(case.id, case.claimed_by)
    check(case, "claimed")
    case.state = State.CLAIMED
    case.claimed_by = by
    case.claimed_at = at
    return _event(case, EventKind.CLAIMED, by, at)


def release(
    case: Case, *, by: str, at: datetime, policy: SlaPolicy, expired: bool = False
) -> Event:
    """Put a claimed case back in the queue: by hand, or because the claim expired."""
    check(case, "released")
    holder = case.claimed_by
    case.state = State.NEW
    case.claimed_by = None
    case.claimed_at = None
    sla.schedule(case, policy)
    kind = EventKind.CLAIM_EXPIRED if expired else EventKind.RELEASED
    return _event(case, kind, by, at, holder=holder)


def answer(
    case: Case,
    *,
    by: str,
    at: datetime,
    policy: SlaPolicy,
    claims: bool = True,
    **details: Any,
) -> Event:
    """Record an agent's message to the customer; the first one is the first response.

    An agent who answers an unclaimed case takes it (`claims`); the brand's own
    account answering on the platform does not.
    """
    check(case, "answered")
    if case.state in (State.NEW, State.REOPENED) and claims:
        case.claimed_by = by
        case.claimed_at = at
    case.state = State.ANSWERED
    # The first response is the earliest by its time: the brand's post delivered after
    # an agent marked the case answered may have been posted before.
    first = case.first_response_at is None or at < case.first_response_at
    if first:
        case.first_response_at = at
    sla.stop_response_clock(case, policy)
    return _event(case, EventKind.AGENT_MESSAGE, by, at, first=first, **details)


def add_customer_message(
    case: Case, *, by: str, at: datetime, policy: SlaPolicy, **details: Any
) -> list[Event]:
    """Record the customer writing again on the case's thread.

    On an answered case this starts the next-response clock; on a resolved case it
    reopens the case. A dismissed case keeps the message and stays dismissed.
    """
    events = [_event(case, EventKind.CUSTOMER_MESSAGE, by, at, **details)]
    if case.state is State.ANSWERED:
        case.state = State.CLAIMED if case.claimed_by else State.NEW
        sla.start_response_clock(case, at, policy, first=False)
    elif case.state is State.RESOLVED:
        case.state = State.REOPENED
        case.claimed_by = None
        case.claimed_at = None
        case.resolved_at = None
        sla.start_response_clock(case, at, policy, first=False)
        events.append(_event(case, EventKind.REOPENED, by, at))
    return events


def resolve(case: Case, *, by: str, at: datetime, policy: SlaPolicy) -> Event:
    """Close an answered case."""
    check(case, "resolved")
    case.state = State.RESOLVED
    case.resolved_at = at
    sla.schedule(case, policy)
    return _event(case, EventKind.RESOLVED, by, at)


def close_with_incident(case: Case, *, by: str, at: datetime, policy: SlaPolicy,
                        incident: int) -> Event:
    """Resolve an open case because the lead resolved its incident, answered or not.

    The event says when the customer's last message had no answer from the team
    (`unanswered`): the case is closed by the incident's resolution, not by an answer,
    so it keeps no reaction time it did not earn and its SLA stands as it was.
    """
    if not case.is_open:
        raise InvalidTransition(case.id, "resolved", case.state.value)
    unanswered = case.state is not State.ANSWERED
    case.state = State.RESOLVED
    case.resolved_at = at
    sla.schedule(case, policy)
    return _event(case, EventKind.RESOLVED, by, at, incident=incident,
                  unanswered=True if unanswered else None)


def dismiss(case: Case, *, by: str, at: datetime, policy: SlaPolicy, reason: str) -> Event:
    """Close a case that needs no answer (spam, not about us)."""
    check(case, "dismissed")
    case.state = State.DISMISSED
    sla.schedule(case, policy)
    return _event(case, EventKind.DISMISSED, by, at, reason=reason)


def hand_off(
    case: Case, *, by: str, at: datetime, team: str, policy: SlaPolicy, note: str = "",
    **details: Any,
) -> Event:
    """Send an open case to a second-line team; its SLA keeps counting meanwhile."""
    check(case, "handed_off")
    if case.handoff_team is not None:
        raise DomainError(
            f"Case #{case.id} is already with {case.handoff_team}.",
            key="error.already_handed_off", case=case.id, team=case.handoff_team,
        )
    case.handoff_team, case.handed_off_by, case.handed_off_at = team, by, at
    sla.schedule(case, policy)  # a claim does not lapse while the second line has it
    return _event(case, EventKind.HANDED_OFF, by, at, team=team, note=note or None, **details)


def hand_back(case: Case, *, by: str, at: datetime, policy: SlaPolicy, note: str = "",
              **details: Any) -> Event:
    """Return a case from the second line to the agent who handed it off, who holds it."""
    if case.handoff_team is None or case.handed_off_at is None:
        raise DomainError(f"Case #{case.id} is not with the second line.",
                          key="error.not_handed_off", case=case.id)
    team, agent = case.handoff_team, case.handed_off_by
    seconds = round((at - case.handed_off_at).total_seconds())
    case.handoff_team = case.handed_off_by = case.handed_off_at = None
    if agent is not None and not agent.startswith(("brand:", "customer:")):
        if case.state in (State.NEW, State.REOPENED):
            case.state = State.CLAIMED
        if case.state in (State.CLAIMED, State.ANSWERED):
            # The agent holds it again from now: a claim's time starts over.
            case.claimed_by, case.claimed_at = agent, at
    sla.schedule(case, policy)
    return _event(case, EventKind.HANDED_BACK, by, at, team=team, to=agent, seconds=seconds,
                  note=note or None, **details)
