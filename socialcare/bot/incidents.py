"""Incidents: a surge of one problem becomes one incident, answered once, everywhere.

A surge is many new cases of one topic (in one place, or anywhere) in a short window,
well above the usual level of that hour of the week:

    count ≥ min_cases   and   count ≥ factor × usual

where `usual` is the average number of such cases in the same hour of the week over
the past `baseline_weeks` weeks, scaled to the window. With fewer than `history_weeks`
weeks of history (a new install, a new topic) `min_cases` alone decides.

Detection runs in the scheduler role, from the database. The open incident of a
topic and place is unique in the database, so any number of schedulers open it once;
the same transaction links the surge's cases, tells the shift leads on duty and raises
the critical escalation to the director of the topic's area (the system its author).
While it is open, new cases that match join it; a lead adds or removes cases, writes
the official answer once, and resolves it with a follow-up.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from socialcare.bot.announcements import service as announcements
from socialcare.bot.catalog import Catalog
from socialcare.bot.errors import ConcurrentUpdate, DomainError, NotAllowed
from socialcare.bot.escalations import Category, raise_by_system
from socialcare.bot.model import SYSTEM, Event, EventKind
from socialcare.bot.notices import notices_for
from socialcare.bot.ports import Clock, UnitOfWork
from socialcare.bot.team import IncidentConfig, Person, Role, Team

ATTEMPTS = 8
_HOUR = timedelta(hours=1)
# Cases linked to an incident in one transaction at most. Linking holds the rows of its
# cases' cards until it commits, and the SLA sweep firing one of those cases meanwhile
# waits for it: a surge of 16,700 cases linked at once held the sweep some 2 s.
LINK_SLICE = 500


class IncidentState(StrEnum):
    """Where an incident stands."""

    OPEN = "open"
    RESOLVED = "resolved"


class Reply(StrEnum):
    """How the official answer (or the follow-up) reached a linked case."""

    SENDING = "sending"  # a pass took it; nothing went to the platform yet
    PUBLISHING = "publishing"  # the call to the platform began: it may be out
    SENT = "sent"  # through the source's reply path
    BY_HAND = "by_hand"  # listed for an agent, text ready to copy
    CLOSED = "closed"  # the case was closed before the answer came
    SKIPPED = "skipped"  # the follow-up: the source takes no bulk replies
    UNSURE = "unsure"  # the follow-up: a stopped process may or may not have sent it


class Send(StrEnum):
    """What a linked case is sent: the official answer, or the closing follow-up (the
    name of its status column)."""

    ANSWER = "reply"
    FOLLOW_UP = "follow_up"


@dataclass(frozen=True)
class StaleSend:
    """A send whose lease ran out: the process that took it stopped."""

    incident_id: int
    case_id: int
    send: Send
    status: Reply  # SENDING or PUBLISHING
    since: datetime


# A (topic, place) pair; place None: the topic anywhere.
Key = tuple[str, str | None]


@dataclass
class Incident:
    """One incident: a topic (in a place), its figures and its timeline's moments."""

    topic: str
    place: str | None
    count: int  # cases in the window when it was detected
    usual: float | None  # the usual number in such a window; None: too little history
    window_minutes: int
    first_mention_at: datetime
    detected_at: datetime
    state: IncidentState = IncidentState.OPEN
    acknowledged_at: datetime | None = None
    answered_at: datetime | None = None
    answer: str | None = None
    answered_by: str | None = None
    announcement_id: int | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    follow_up: str | None = None
    escalation_id: int | None = None
    version: int = 0
    id: int | None = None

    @property
    def key(self) -> Key:
        """Return the incident's topic and place."""
        return (self.topic, self.place)

    def covers(self, key: Key) -> bool:
        """Tell whether a surge of `key` is this incident's."""
        return overlaps(self.key, key)


def overlaps(a: Key, b: Key) -> bool:
    """Tell whether two surges are one problem: the same topic in the same place, or
    one of them anywhere."""
    return a[0] == b[0] and (a[1] is None or b[1] is None or a[1] == b[1])


@dataclass(frozen=True)
class IncidentEvent:
    """One moment of an incident's timeline."""

    incident_id: int
    kind: str  # first_mention, detected, joined, removed, answered, resolved, ...
    actor: str
    at: datetime
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Surge:
    """What detection found: a topic (in a place) well above its usual level."""

    topic: str
    place: str | None
    count: int
    usual: float | None


def usual_level(weeks: Sequence[int], config: IncidentConfig) -> float | None:
    """Return the usual number of cases in a window from the counts of the same hour in
    past weeks, or None when there are fewer weeks than the config needs."""
    if len(weeks) < config.history_weeks:
        return None
    return sum(weeks) / len(weeks) * config.window_minutes / 60


def is_surge(count: int, usual: float | None, config: IncidentConfig) -> bool:
    """Tell whether `count` cases in the window is a surge over `usual`."""
    if count < config.min_cases:
        return False
    return usual is None or count >= config.factor * usual


def past_hours(now: datetime, team: Team) -> list[datetime]:
    """Return the start of the current hour of the week in each of the past weeks."""
    local = now.astimezone(team.zone).replace(minute=0, second=0, microsecond=0)
    return [local - timedelta(weeks=k) for k in range(1, team.incidents.baseline_weeks + 1)]


def find_surges(
    current: Mapping[Key, int],
    past: Sequence[tuple[datetime, Mapping[Key, int]]],
    since: Mapping[str, datetime],
    *,
    open_incidents: Sequence[Incident],
    team: Team,
) -> list[Surge]:
    """Return the surges in `current` (the window's counts per topic and place), against
    `past` (each past week's counts of the same hour) and each topic's first case
    (`since`). A place's surge goes before its topic's surge anywhere, and neither opens
    while an incident covers it (`open_incidents`: the open ones and those just
    resolved)."""
    config = team.incidents
    taken = [i.key for i in open_incidents]
    found: list[Surge] = []
    candidates = sorted(
        ((key, n) for key, n in current.items()
         if n >= config.min_cases and team.topic(key[0]) is not None
         and (key[1] is None or team.place(key[1]) is not None)),
        key=lambda kv: (kv[0][1] is None, -kv[1], kv[0][0], kv[0][1] or ""),
    )
    for key, count in candidates:
        if any(overlaps(key, other) for other in taken):
            continue
        first = since.get(key[0])
        weeks = [counts.get(key, 0) for start, counts in past
                 if first is not None and first <= start]
        usual = usual_level(weeks, config)
        if not is_surge(count, usual, config):
            continue
        found.append(Surge(key[0], key[1], count, usual))
        taken.append(key)
    return found


async def detect(*, uow: UnitOfWork, clock: Clock, team: Team, text: Catalog
                 ) -> list[Incident]:
    """Look for surges and open an incident for each; return the incidents opened here
    (another scheduler may have opened the same one: then it is not returned)."""
    config = team.incidents
    if not config.enabled or not team.topics:
        return []
    now = clock.now()
    async with uow:
        current = await uow.incidents.counts(now - config.window, now)
        if not any(n >= config.min_cases for n in current.values()):
            return []
        hours = past_hours(now, team)
        past = [(start, await uow.incidents.counts(start, start + _HOUR)) for start in hours]
        topics = {key[0] for key, n in current.items() if n >= config.min_cases}
        since = await uow.incidents.first_cases(topics)
        # A surge just resolved is still in the window: it does not open again at once.
        taken = [*await uow.incidents.list_open(),
                 *await uow.incidents.resolved_since(now - config.window)]
        surges = find_surges(current, past, since, open_incidents=taken, team=team)
    opened = []
    for surge in surges:
        incident = await _open(surge, uow=uow, now=now, team=team, text=text)
        if incident is not None:
            opened.append(incident)
    return opened


async def _open(surge: Surge, *, uow: UnitOfWork, now: datetime, team: Team,
                text: Catalog) -> Incident | None:
    config = team.incidents
    async with uow:
        found = await uow.incidents.matching(surge.topic, surge.place, since=now - config.window)
        if not found:
            return None
        incident = Incident(
            topic=surge.topic, place=surge.place, count=surge.count, usual=surge.usual,
            window_minutes=config.window_minutes,
            first_mention_at=min(published for _, published in found), detected_at=now,
        )
        if not await uow.incidents.add(incident):
            return None  # another scheduler opened it
        assert incident.id is not None
        case_ids = [case_id for case_id, _ in found]
        await _link(incident, case_ids[:LINK_SLICE], actor=SYSTEM, uow=uow, now=now)
        await uow.incidents.add_events([
            IncidentEvent(incident.id, "first_mention", SYSTEM, incident.first_mention_at),
            IncidentEvent(incident.id, "detected", SYSTEM, now, explanation(incident)),
        ])
        topic = team.topic(surge.topic)
        area = topic.area if topic is not None else None
        escalation = await raise_by_system(
            case_ids=case_ids[:50], category=Category.CRITICAL, area=area,
            problem=text("incident.problem", id=incident.id, about=describe(incident, team, text)),
            uow=uow, team=team, now=now,
        )
        if escalation is not None:
            incident.escalation_id = escalation.id
            await uow.incidents.save(incident)
        notices = [notice for lead in team.leads_on_duty(now)
                   for notice in notices_for(lead, "notice.incident", incident=incident.id,
                                             about=describe(incident, team, text))]
        for notice in notices:
            notice.created_at = now
        await uow.notices.add(notices)
        await uow.commit()
    # The rest of a big surge joins slice by slice. Should the process stop half-way,
    # `join_new` links what is left (the cases that match and are not linked).
    for part in _slices(case_ids[LINK_SLICE:]):
        async with uow:
            await _link(incident, part, actor=SYSTEM, uow=uow, now=now)
            await uow.commit()
    return incident


def _slices(case_ids: list[int]) -> Iterator[list[int]]:
    """Cut case ids into the slices linked a transaction each (`LINK_SLICE`)."""
    for start in range(0, len(case_ids), LINK_SLICE):
        yield case_ids[start:start + LINK_SLICE]


def explanation(incident: Incident) -> dict[str, Any]:
    """Return the figures that explain why the incident was opened."""
    return {"count": incident.count, "usual": incident.usual,
            "window_minutes": incident.window_minutes}


def describe(incident: Incident, team: Team, text: Catalog) -> str:
    """Say what the incident is, in figures and the team's language: "34 cases of Mobile
    internet in Almaty in 15 min; usually 2"."""
    topic = team.topic(incident.topic)
    place = team.place(incident.place) if incident.place else None
    where = (text("incident.about_place", place=place.title if place else incident.place)
             if incident.place else "")
    figures = {"count": incident.count, "topic": topic.title if topic else incident.topic,
               "where": where, "minutes": incident.window_minutes}
    if incident.usual is None:
        return text("incident.about_new", **figures)
    return text("incident.about", **figures, usual=f"{incident.usual:.0f}")


async def _link(incident: Incident, case_ids: Collection[int], *, actor: str, uow: UnitOfWork,
                now: datetime) -> list[int]:
    """Link cases to the incident (those not linked before); mark them on their cards."""
    assert incident.id is not None
    linked = await uow.incidents.link(incident.id, case_ids, by=actor, at=now)
    if not linked:
        return []
    await uow.events.add([
        Event(case_id=case_id, kind=EventKind.INCIDENT_JOINED, actor=actor, at=now,
              data={"incident": incident.id})
        for case_id in linked
    ])
    cases = await uow.cases.get_many(linked)
    await uow.cards.mark_changed(list(cases.values()), at=now)
    return linked


async def join_new(*, uow: UnitOfWork, clock: Clock, team: Team) -> dict[int, list[int]]:
    """Link the new cases that match an open incident; return, per incident, the cases
    that joined. A case a lead took out does not join again."""
    now = clock.now()
    joined: dict[int, list[int]] = {}
    async with uow:
        found: list[tuple[Incident, list[int]]] = []
        for incident in await uow.incidents.list_open():
            found.append((incident, [case_id for case_id, _ in await uow.incidents.matching(
                incident.topic, incident.place,
                since=incident.detected_at - timedelta(minutes=incident.window_minutes),
                unlinked_of=incident.id)]))
    for incident, case_ids in found:  # a slice a transaction, as `_open` links
        assert incident.id is not None
        for part in _slices(case_ids):
            async with uow:
                linked = await _link(incident, part, actor=SYSTEM, uow=uow, now=now)
                if linked:
                    await uow.incidents.add_events([IncidentEvent(
                        incident.id, "joined", SYSTEM, now, {"cases": linked})])
                await uow.commit()
            joined.setdefault(incident.id, []).extend(linked)
    return {incident_id: linked for incident_id, linked in joined.items() if linked}


def lead(team: Team, actor: str) -> Person:
    """Return the person who may run incidents (a shift lead, an admin, a director), or
    raise NotAllowed."""
    return _lead(team, actor)


def _lead(team: Team, actor: str) -> Person:
    person = team.person(actor)
    if person is None:
        raise NotAllowed("Not in the roster.", key="error.not_in_roster")
    if person.role not in (Role.LEAD, Role.ADMIN, Role.DIRECTOR):
        raise NotAllowed("Shift leads run incidents.", key="error.incident_leads_only")
    return person


@dataclass(frozen=True)
class IncidentChanged:
    """An incident after a command, with the cases the command touched."""

    incident: Incident
    case_ids: tuple[int, ...] = ()


async def add_cases(incident_id: int, case_ids: Sequence[int], *, actor: str, uow: UnitOfWork,
                    clock: Clock, team: Team) -> IncidentChanged:
    """A lead adds cases to an open incident (again, if they were taken out)."""
    person = _lead(team, actor)
    now = clock.now()
    async with uow:
        incident = await _open_incident(uow, incident_id)
        cases = await uow.cases.get_many(case_ids)
        missing = [i for i in case_ids if i not in cases]
        if missing:
            raise DomainError(f"No case #{missing[0]}.", key="error.no_case",
                              case=missing[0])
        await uow.incidents.unremove(incident_id, case_ids)
        linked = await _link(incident, case_ids, actor=person.id, uow=uow, now=now)
        await uow.incidents.add_events([IncidentEvent(
            incident_id, "added", person.id, now, {"cases": linked})])
        await uow.commit()
    return IncidentChanged(incident, tuple(linked))


async def remove_cases(incident_id: int, case_ids: Sequence[int], *, actor: str,
                       uow: UnitOfWork, clock: Clock, team: Team) -> IncidentChanged:
    """A lead takes cases out of an incident: they do not join it again by themselves."""
    person = _lead(team, actor)
    now = clock.now()
    async with uow:
        incident = await _open_incident(uow, incident_id)
        removed = await uow.incidents.remove(incident_id, case_ids, at=now)
        await uow.events.add([
            Event(case_id=case_id, kind=EventKind.INCIDENT_LEFT, actor=person.id, at=now,
                  data={"incident": incident_id})
            for case_id in removed
        ])
        cases = await uow.cases.get_many(removed)
        await uow.cards.mark_changed(list(cases.values()), at=now)
        await uow.incidents.add_events([IncidentEvent(
            incident_id, "removed", person.id, now, {"cases": removed})])
        await uow.commit()
    return IncidentChanged(incident, tuple(removed))


async def _open_incident(uow: UnitOfWork, incident_id: int) -> Incident:
    incident = await uow.incidents.get(incident_id)
    if incident.state is not IncidentState.OPEN:
        raise DomainError(f"Incident #{incident_id} is resolved.", key="error.incident_resolved",
                          id=incident_id)
    return incident


async def change(incident_id: int, apply: Any, *, uow: UnitOfWork, clock: Clock) -> Incident:
    """Apply a change to an incident (`apply(incident, now) -> events`), retrying on a
    concurrent change; return it."""
    for _ in range(ATTEMPTS):
        now = clock.now()
        async with uow:
            incident = await _open_incident(uow, incident_id)
            events = apply(incident, now)
            try:
                await uow.incidents.save(incident)
            except ConcurrentUpdate:
                continue
            await uow.incidents.add_events(events)
            await uow.commit()
            return incident
    raise ConcurrentUpdate(f"incident #{incident_id} kept changing")


# ── One answer ────────────────────────────────────────────────────────────────────

async def answer(incident_id: int, text: str, *, actor: str, uow: UnitOfWork, clock: Clock,
                 team: Team) -> Incident:
    """The lead's official answer: announced in every team channel (pinned, offered on the
    cards of the topic's cases) and then sent as the reply to the linked cases."""
    person = _lead(team, actor)
    text = text.strip()
    if not text:
        raise DomainError("The answer is empty.", key="error.empty_reply")
    async with uow:
        incident = await _open_incident(uow, incident_id)
    if incident.answer is not None:
        raise DomainError(f"Incident #{incident_id} has its answer.",
                          key="error.incident_answered", id=incident_id,
                          announcement=incident.announcement_id)
    announcement = await announcements.announce(
        announcements.Announce(actor=person.id, text=text, topics=(incident.topic,)),
        uow=uow, clock=clock, team=team)

    def apply(i: Incident, now: datetime) -> list[IncidentEvent]:
        if i.answer is not None:
            raise DomainError(f"Incident #{incident_id} has its answer.",
                              key="error.incident_answered", id=incident_id,
                              announcement=i.announcement_id)
        i.answer, i.answered_at, i.answered_by = text, now, person.id
        i.announcement_id = announcement.id
        # The first answer acknowledges an incident nobody acknowledged before it.
        events = _acknowledged(i, person.id, now, by_answer=True)
        return [*events, IncidentEvent(incident_id, "answered", person.id, now,
                                       {"announcement": announcement.id})]

    return await change(incident_id, apply, uow=uow, clock=clock)


def _acknowledged(incident: Incident, actor: str, now: datetime, *,
                  by_answer: bool = False) -> list[IncidentEvent]:
    """Record the acknowledgement (who and when) unless the incident has one: the event
    of the timeline's step, or none."""
    if incident.acknowledged_at is not None:
        return []
    assert incident.id is not None
    incident.acknowledged_at = now
    return [IncidentEvent(incident.id, "acknowledged", actor, now,
                          {"by_answer": True} if by_answer else {})]


async def acknowledge(incident_id: int, *, actor: str, uow: UnitOfWork, clock: Clock,
                      team: Team) -> Incident:
    """A lead says the incident is seen and being handled: the timeline's step between
    detection and the answer, with who and when (once; a second press is refused with
    who acknowledged it)."""
    person = _lead(team, actor)

    def apply(i: Incident, now: datetime) -> list[IncidentEvent]:
        if i.acknowledged_at is not None:
            raise DomainError(f"Incident #{incident_id} is acknowledged already.",
                              key="error.incident_acknowledged", id=incident_id)
        return _acknowledged(i, person.id, now)

    return await change(incident_id, apply, uow=uow, clock=clock)


# ── Closing ───────────────────────────────────────────────────────────────────────


async def resolve(incident_id: int, follow_up: str, *, actor: str, uow: UnitOfWork,
                  clock: Clock, team: Team) -> Incident:
    """The lead closes the incident; the follow-up ("service is restored") goes to every
    linked case the same way as the answer, and every linked case is resolved with it
    (`incident_replies.close_cases`)."""
    person = _lead(team, actor)
    follow_up = follow_up.strip()

    def apply(i: Incident, now: datetime) -> list[IncidentEvent]:
        i.state, i.resolved_at, i.resolved_by = IncidentState.RESOLVED, now, person.id
        i.follow_up = follow_up or None
        return [IncidentEvent(incident_id, "resolved", person.id, now,
                              {"follow_up": follow_up} if follow_up else {})]

    incident = await change(incident_id, apply, uow=uow, clock=clock)
    if incident.announcement_id is not None:
        with suppress(DomainError):  # it ended already
            await announcements.withdraw(
                announcements.Withdraw(incident.announcement_id, person.id),
                uow=uow, clock=clock, team=team)
    if follow_up:
        await announcements.announce(announcements.Announce(actor=person.id, text=follow_up),
                                     uow=uow, clock=clock, team=team)
    return incident



# ── Figures ───────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class IncidentFigures:
    """A period's incidents in figures (durations in seconds; None: none to measure)."""

    count: int
    cases: int
    open: int
    longest: float | None  # detection → resolution, of the resolved ones
    mean_duration: float | None
    mean_to_detection: float | None  # first mention → detection
    mean_to_answer: float | None  # first mention → official answer, of the answered ones


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def figures(found: Sequence[Incident], case_counts: Mapping[int, int]) -> IncidentFigures:
    """Sum up the incidents detected in a period."""
    durations = [(i.resolved_at - i.detected_at).total_seconds() for i in found
                 if i.resolved_at is not None]
    return IncidentFigures(
        count=len(found),
        cases=sum(case_counts.get(i.id or 0, 0) for i in found),
        open=sum(i.state is IncidentState.OPEN for i in found),
        longest=max(durations, default=None),
        mean_duration=_mean(durations),
        mean_to_detection=_mean([(i.detected_at - i.first_mention_at).total_seconds()
                                 for i in found]),
        mean_to_answer=_mean([(i.answered_at - i.first_mention_at).total_seconds()
                              for i in found if i.answered_at is not None]),
    )


def figures_lines(f: IncidentFigures, catalog: Catalog) -> list[str]:
    """Return the report's (and the digest's) lines on a period's incidents."""
    if not f.count:
        return []

    def minutes(seconds: float | None) -> str:
        return "—" if seconds is None else catalog("duration.minutes",
                                                    minutes=max(1, round(seconds / 60)))

    return [catalog("report.incidents", count=f.count, cases=f.cases, open=f.open,
                    duration=minutes(f.mean_duration), longest=minutes(f.longest),
                    detection=minutes(f.mean_to_detection), answer=minutes(f.mean_to_answer))]
