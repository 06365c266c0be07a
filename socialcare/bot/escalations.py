"""Escalations: the cases that matter, sent to the responsible director.

Three categories — critical (intervene now), food for thought (prevent a repeat),
positive feedback — each with a problem, proposed options and one responsible
director. The life of an escalation:

    open ──acknowledge──► acknowledged ──decide──► decided ──close──► closed
      └──────────────────────decide───────────────┘

A critical escalation is re-sent every few minutes until acknowledged and, if nobody
acknowledges it, handed to the next director of its area's chain. Every step is an
escalation event; each linked case gets an `escalated` event, and its cards follow.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from socialcare.bot.errors import CaseNotFound, ConcurrentUpdate, DomainError, NotAllowed
from socialcare.bot.model import SYSTEM, Card, Event, EventKind
from socialcare.bot.notices import Notice, notices_for
from socialcare.bot.ports import Clock, UnitOfWork
from socialcare.bot.team import Person, Role, Team
from socialcare.bot.text import clean_fields

ATTEMPTS = 8


class Category(StrEnum):
    """Why a case goes to a director."""

    CRITICAL = "critical"  # immediate intervention and an urgent fix
    INSIGHT = "insight"  # food for thought: how to stop it happening again
    POSITIVE = "positive"  # praise for a product, service or campaign


class EscalationState(StrEnum):
    """Where an escalation stands."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    DECIDED = "decided"
    CLOSED = "closed"


@dataclass
class Escalation:
    """One escalation: a problem, its options, its director and the cases behind it."""

    category: Category
    problem: str
    options: tuple[str, ...]
    director: str
    raised_by: str
    raised_at: datetime
    assigned_at: datetime  # when the current director got it
    case_ids: tuple[int, ...] = ()
    area: str | None = None
    state: EscalationState = EscalationState.OPEN
    acknowledged_at: datetime | None = None
    decided_at: datetime | None = None
    decided_by: str | None = None
    decision: str | None = None
    closed_at: datetime | None = None
    next_ping_at: datetime | None = None
    pings: int = 0
    version: int = 0
    id: int | None = None


@dataclass(frozen=True)
class EscalationEvent:
    """One step of an escalation: who did what, and when."""

    escalation_id: int
    kind: str  # raised, reminded, handed_over, reassigned, acknowledged, commented, ...
    actor: str
    at: datetime
    data: dict[str, Any] = field(default_factory=dict)
    id: int | None = None


@dataclass(frozen=True)
class Escalate:
    """Send cases to a director."""

    case_ids: tuple[int, ...]
    actor: str
    category: Category
    problem: str
    options: tuple[str, ...]
    director: str

    def __post_init__(self) -> None:
        clean_fields(self)  # no NUL or other control characters in what people type


@dataclass(frozen=True)
class Acknowledge:
    """The director has seen it."""

    escalation_id: int
    actor: str


@dataclass(frozen=True)
class Decide:
    """The director decides: one of the options, or their own words."""

    escalation_id: int
    actor: str
    decision: str

    def __post_init__(self) -> None:
        clean_fields(self)  # no NUL or other control characters in what people type


@dataclass(frozen=True)
class Reassign:
    """Hand the escalation to another director."""

    escalation_id: int
    actor: str
    director: str


@dataclass(frozen=True)
class Comment:
    """Add a remark to the escalation."""

    escalation_id: int
    actor: str
    text: str

    def __post_init__(self) -> None:
        clean_fields(self)  # no NUL or other control characters in what people type


@dataclass(frozen=True)
class AddOption:
    """A shift lead proposes one more solution (to an escalation socialcare raised, say)."""

    escalation_id: int
    actor: str
    option: str


@dataclass(frozen=True)
class Close:
    """Close a decided escalation (after the directors' meeting)."""

    escalation_id: int
    actor: str


@dataclass(frozen=True)
class EscalationChanged:
    """An escalation after a command, with its new events."""

    escalation: Escalation
    events: list[EscalationEvent]


def director(team: Team, person_id: str) -> Person:
    """Return a director of the roster, or refuse with the names of those who are."""
    person = team.person(person_id)
    if person is None or person.role is not Role.DIRECTOR:
        names = ", ".join(p.id for p in team.people if p.role is Role.DIRECTOR)
        raise DomainError(f"{person_id!r} is not a director.", key="error.unknown_director",
                          who=person_id, directors=names)
    return person


def suggest_director(team: Team, text: str) -> Person | None:
    """Return the director whose area the text names, else the default chain's first."""
    folded = text.casefold()
    for person in team.people:
        if person.role is Role.DIRECTOR and any(a.casefold() in folded for a in person.areas):
            return person
    chain = team.escalation.chain_for(None)
    return team.person(chain[0]) if chain else next(
        (p for p in team.people if p.role is Role.DIRECTOR), None)


def _area_of(team: Team, person: Person) -> str | None:
    for area in person.areas:
        if area in team.escalation.chains:
            return area
    return None


def _may_escalate(team: Team, actor: str) -> Person:
    person = team.person(actor)
    if person is None:
        raise NotAllowed("Not in the roster.", key="error.not_in_roster")
    if person.role not in (Role.AGENT, Role.LEAD, Role.ADMIN):
        raise NotAllowed("Agents and leads escalate.", key="error.escalators_only")
    return person


def _may_decide(team: Team, escalation: Escalation, actor: str) -> Person:
    person = team.person(actor)
    if person is None:
        raise NotAllowed("Not in the roster.", key="error.not_in_roster")
    if person.id != escalation.director and person.role is not Role.ADMIN:
        raise NotAllowed(
            f"Only {escalation.director} (or an admin) can do this.",
            key="error.director_only", director=escalation.director,
        )
    return person


def _cards(escalation: Escalation, person: Person, now: datetime) -> list[Card]:
    """The director's escalation cards: a direct message in every messenger that knows them."""
    assert escalation.id is not None
    addresses = [("slack", person.slack), ("telegram", person.telegram)]
    return [
        Card(case_id=None, escalation_id=escalation.id, messenger=messenger,
             channel=str(address), due_at=now)
        for messenger, address in addresses if address is not None
    ]


async def escalate(cmd: Escalate, *, uow: UnitOfWork, clock: Clock, team: Team) -> Escalation:
    """Open an escalation on one or more cases and send it to the director."""
    raiser = _may_escalate(team, cmd.actor)
    problem = cmd.problem.strip()
    if not problem:
        raise DomainError("The problem is empty.", key="error.empty_problem")
    if not cmd.case_ids:
        raise DomainError("No case to escalate.", key="error.no_cases")
    chief = director(team, cmd.director)
    now = clock.now()
    escalation = Escalation(
        category=cmd.category, problem=problem,
        options=tuple(o.strip() for o in cmd.options if o.strip()),
        director=chief.id, raised_by=raiser.id, raised_at=now, assigned_at=now,
        case_ids=tuple(dict.fromkeys(cmd.case_ids)), area=_area_of(team, chief),
    )
    if escalation.category is Category.CRITICAL:
        escalation.next_ping_at = now + team.escalation.repeat
    for _ in range(ATTEMPTS):
        async with uow:
            cases = await uow.cases.get_many(escalation.case_ids)
            missing = [i for i in escalation.case_ids if i not in cases]
            if missing:
                raise CaseNotFound(missing[0])
            await uow.escalations.add(escalation)
            assert escalation.id is not None
            await uow.escalations.add_events([EscalationEvent(
                escalation.id, "raised", raiser.id, now,
                {"category": escalation.category.value, "director": chief.id},
            )])
            await uow.events.add([
                Event(case_id=case_id, kind=EventKind.ESCALATED, actor=raiser.id, at=now,
                      data={"escalation": escalation.id, "category": escalation.category.value,
                            "director": chief.id})
                for case_id in escalation.case_ids
            ])
            await uow.cards.add(_cards(escalation, chief, now))
            await uow.cards.mark_changed(list(cases.values()), at=now)
            await uow.commit()
            return escalation
    raise ConcurrentUpdate("escalation kept conflicting")  # pragma: no cover


def director_of_area(team: Team, area: str | None) -> Person | None:
    """Return the director responsible for an area: the first of its chain, else one
    whose areas name it, else the default chain's first."""
    chain = team.escalation.chains.get(area or "default", ())
    if chain:
        return team.person(chain[0])
    named = next((p for p in team.people if p.role is Role.DIRECTOR and area in p.areas), None)
    if named is not None:
        return named
    chain = team.escalation.chain_for(None)
    return team.person(chain[0]) if chain else next(
        (p for p in team.people if p.role is Role.DIRECTOR), None)


async def raise_by_system(
    *, case_ids: Sequence[int], category: Category, area: str | None, problem: str,
    uow: UnitOfWork, team: Team, now: datetime, options: Sequence[str] = (),
) -> Escalation | None:
    """Raise an escalation with the system as its author (an incident's), inside `uow`'s
    transaction; None when the roster has no director. Leads add options afterwards."""
    chief = director_of_area(team, area)
    if chief is None or not case_ids:
        return None
    escalation = Escalation(
        category=category, problem=problem, options=tuple(options), director=chief.id,
        raised_by=SYSTEM, raised_at=now, assigned_at=now, case_ids=tuple(dict.fromkeys(case_ids)),
        area=_area_of(team, chief) if area not in team.escalation.chains else area,
    )
    if category is Category.CRITICAL:
        escalation.next_ping_at = now + team.escalation.repeat
    await uow.escalations.add(escalation)
    assert escalation.id is not None
    await uow.escalations.add_events([EscalationEvent(
        escalation.id, "raised", SYSTEM, now,
        {"category": category.value, "director": chief.id},
    )])
    await uow.events.add([
        Event(case_id=case_id, kind=EventKind.ESCALATED, actor=SYSTEM, at=now,
              data={"escalation": escalation.id, "category": category.value,
                    "director": chief.id})
        for case_id in escalation.case_ids
    ])
    await uow.cards.add(_cards(escalation, chief, now))
    return escalation


# What a change of an escalation produces: its events, notices to send, new cards.
Outcome = tuple[list[EscalationEvent], list[Notice], list[Card]]


async def store(escalation: Escalation, outcome: Outcome, *, uow: UnitOfWork,
                now: datetime) -> None:
    """Store a changed escalation with what the change produced, inside `uow`'s
    transaction; raise ConcurrentUpdate if it changed meanwhile."""
    events, notices, cards = outcome
    assert escalation.id is not None
    await uow.escalations.save(escalation)
    await uow.escalations.add_events(events)
    for notice in notices:
        notice.created_at = now
    await uow.notices.add(notices)
    # A director who had it before keeps their card; it is brought up to date.
    existing = {(c.messenger, c.channel) for c in await uow.cards.for_escalation(escalation.id)}
    await uow.cards.add([c for c in cards if (c.messenger, c.channel) not in existing])
    await uow.cards.mark_escalation_changed(escalation.id, at=now)
    linked = await uow.cases.get_many(escalation.case_ids)
    await uow.cards.mark_changed(list(linked.values()), at=now)


async def _change(
    escalation_id: int,
    apply: Callable[[Escalation, datetime], Outcome],
    *,
    uow: UnitOfWork,
    clock: Clock,
) -> EscalationChanged:
    """Apply a change to an escalation, retrying on a concurrent change."""
    for _ in range(ATTEMPTS):
        now = clock.now()
        async with uow:
            escalation = await uow.escalations.get(escalation_id)
            outcome = apply(escalation, now)
            try:
                await store(escalation, outcome, uow=uow, now=now)
            except ConcurrentUpdate:
                continue
            await uow.commit()
            return EscalationChanged(escalation, outcome[0])
    raise ConcurrentUpdate(f"escalation #{escalation_id} kept changing")


def _check(escalation: Escalation, action: str, allowed: Sequence[EscalationState]) -> None:
    if escalation.state not in allowed:
        raise DomainError(
            f"Escalation #{escalation.id} is {escalation.state.value}: it cannot be {action}.",
            key="error.escalation_state", escalation=escalation.id,
            escalation_state=escalation.state.value, action=action,
        )


async def acknowledge(
    cmd: Acknowledge, *, uow: UnitOfWork, clock: Clock, team: Team
) -> EscalationChanged:
    """The director has seen it: critical reminders stop, the raiser is told."""
    def apply(e: Escalation, now: datetime) -> Outcome:
        person = _may_decide(team, e, cmd.actor)
        _check(e, "acknowledged", [EscalationState.OPEN])
        e.state, e.acknowledged_at, e.next_ping_at = EscalationState.ACKNOWLEDGED, now, None
        assert e.id is not None
        return (
            [EscalationEvent(e.id, "acknowledged", person.id, now)],
            _tell_raiser(team, e, "notice.acknowledged", who=person.name),
            [],
        )

    return await _change(cmd.escalation_id, apply, uow=uow, clock=clock)


async def decide(cmd: Decide, *, uow: UnitOfWork, clock: Clock, team: Team) -> EscalationChanged:
    """Record the director's decision and tell the raiser what it is."""
    decision = cmd.decision.strip()
    if not decision:
        raise DomainError("The decision is empty.", key="error.empty_decision")

    def apply(e: Escalation, now: datetime) -> Outcome:
        person = _may_decide(team, e, cmd.actor)
        _check(e, "decided", [EscalationState.OPEN, EscalationState.ACKNOWLEDGED])
        if e.acknowledged_at is None:
            e.acknowledged_at = now
        e.state, e.decided_at, e.decided_by = EscalationState.DECIDED, now, person.id
        e.decision, e.next_ping_at = decision, None
        assert e.id is not None
        return (
            [EscalationEvent(e.id, "decided", person.id, now, {"decision": decision})],
            _tell_raiser(team, e, "notice.decided", who=person.name, decision=decision),
            [],
        )

    return await _change(cmd.escalation_id, apply, uow=uow, clock=clock)


async def reassign(
    cmd: Reassign, *, uow: UnitOfWork, clock: Clock, team: Team
) -> EscalationChanged:
    """Give the escalation to another director, who must acknowledge it anew."""
    successor = director(team, cmd.director)

    def apply(e: Escalation, now: datetime) -> Outcome:
        person = _may_decide(team, e, cmd.actor)
        _check(e, "reassigned", [EscalationState.OPEN, EscalationState.ACKNOWLEDGED])
        return _hand_to(e, successor, now, actor=person.id, kind="reassigned", team=team)

    return await _change(cmd.escalation_id, apply, uow=uow, clock=clock)


def _hand_to(
    e: Escalation, successor: Person, now: datetime, *, actor: str, kind: str, team: Team
) -> Outcome:
    assert e.id is not None
    previous = e.director
    e.director, e.assigned_at, e.state, e.pings = successor.id, now, EscalationState.OPEN, 0
    e.acknowledged_at = None
    e.next_ping_at = now + team.escalation.repeat if e.category is Category.CRITICAL else None
    return (
        [EscalationEvent(e.id, kind, actor, now, {"from": previous, "to": successor.id})],
        _tell_raiser(team, e, "notice.handed_over", who=successor.name),
        _cards(e, successor, now),
    )


async def comment(
    cmd: Comment, *, uow: UnitOfWork, clock: Clock, team: Team
) -> EscalationChanged:
    """Add a remark; anyone in the roster may."""
    text = cmd.text.strip()
    if not text:
        raise DomainError("The comment is empty.", key="error.empty_comment")
    person = team.person(cmd.actor)
    if person is None:
        raise NotAllowed("Not in the roster.", key="error.not_in_roster")

    def apply(e: Escalation, now: datetime) -> Outcome:
        assert e.id is not None
        return [EscalationEvent(e.id, "commented", person.id, now, {"text": text})], [], []

    return await _change(cmd.escalation_id, apply, uow=uow, clock=clock)


async def add_option(cmd: AddOption, *, uow: UnitOfWork, clock: Clock,
                     team: Team) -> EscalationChanged:
    """Add a proposed option to an escalation the director has not decided yet."""
    person = team.person(cmd.actor)
    if person is None:
        raise NotAllowed("Not in the roster.", key="error.not_in_roster")
    if person.role not in (Role.LEAD, Role.ADMIN):
        raise NotAllowed("Shift leads propose options.", key="error.incident_leads_only")
    option = " ".join(cmd.option.split())
    if not option:
        raise DomainError("The option is empty.", key="error.empty_problem")

    def apply(e: Escalation, now: datetime) -> Outcome:
        _check(e, "given options", [EscalationState.OPEN, EscalationState.ACKNOWLEDGED])
        e.options = (*e.options, option)
        assert e.id is not None
        return ([EscalationEvent(e.id, "option_added", person.id, now, {"option": option})],
                [], [])

    return await _change(cmd.escalation_id, apply, uow=uow, clock=clock)


async def close(cmd: Close, *, uow: UnitOfWork, clock: Clock, team: Team) -> EscalationChanged:
    """Close a decided escalation."""
    def apply(e: Escalation, now: datetime) -> Outcome:
        person = _may_decide(team, e, cmd.actor)
        _check(e, "closed", [EscalationState.DECIDED])
        e.state, e.closed_at = EscalationState.CLOSED, now
        assert e.id is not None
        return [EscalationEvent(e.id, "closed", person.id, now)], [], []

    return await _change(cmd.escalation_id, apply, uow=uow, clock=clock)


def _tell_raiser(team: Team, e: Escalation, key: str, **params: Any) -> list[Notice]:
    raiser = team.person(e.raised_by)
    if raiser is None:
        return []
    return notices_for(raiser, key, escalation=e.id, category=e.category.value, **params)


def fire_due(escalation: Escalation, team: Team, now: datetime) -> Outcome:
    """Re-send an unacknowledged critical escalation, or pass it down the chain.

    Returns the events, notices and cards; the caller stores them with the escalation.
    """
    assert escalation.id is not None
    if escalation.state is not EscalationState.OPEN or escalation.next_ping_at is None:
        escalation.next_ping_at = None
        return [], [], []
    policy = team.escalation
    if now >= escalation.assigned_at + policy.handover:
        chain = policy.chain_for(escalation.area)
        later = chain[chain.index(escalation.director) + 1:] \
            if escalation.director in chain else chain[:1]
        successor = next((team.person(p) for p in later if p != escalation.director), None)
        if successor is not None:
            return _hand_to(escalation, successor, now, actor="system", kind="handed_over",
                            team=team)
    escalation.pings += 1
    escalation.next_ping_at = now + policy.repeat
    return (
        [EscalationEvent(escalation.id, "reminded", "system", now, {"ping": escalation.pings})],
        [], [],
    )


