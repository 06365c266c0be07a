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
from socialcare.bot.errors import AlreadyClaimed, InvalidTransition
from socialcare.bot.model import Case, Event, EventKind, State
from socialcare.bot.sla import SlaPolicy

# The states each action may start from; anything else is refused with the reason.
ALLOWED: Mapping[str, frozenset[State]] = {
    "claimed": frozenset({State.NEW, State.REOPENED}),
    "released": frozenset({State.CLAIMED}),
    "answered": frozenset({State.NEW, State.REOPENED, State.CLAIMED, State.ANSWERED}),
    "resolved": frozenset({State.ANSWERED}),
    "dismissed": frozenset({State.NEW, State.CLAIMED, State.REOPENED}),
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
    first = case.first_response_at is None
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


def dismiss(case: Case, *, by: str, at: datetime, policy: SlaPolicy, reason: str) -> Event:
    """Close a case that needs no answer (spam, not about us)."""
    check(case, "dismissed")
    case.state = State.DISMISSED
    sla.schedule(case, policy)
    return _event(case, EventKind.DISMISSED, by, at, reason=reason)
