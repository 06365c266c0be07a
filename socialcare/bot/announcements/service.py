"""Announcement commands: announce, correct, withdraw, remind, acknowledge, expire; and
`standing`, the one reading of where an announcement stands (the chat's
`/announcement N` and the console's page show it).

Each is one transaction that stores the change with its event and makes the copies
due; the deliverer (`delivery`) brings every copy in step afterwards. `announce` is
the entry point for anything that publishes an answer to every service channel (the
shift lead's `/announce`, the console's form, an incident's answer).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from socialcare.bot.announcements.audiences import ALL, TEAM
from socialcare.bot.announcements.figures import AudienceStanding, members_of, standings
from socialcare.bot.announcements.model import (
    Announcement,
    AnnouncementEvent,
    AnnouncementState,
    Copy,
    Outlet,
    Receipt,
)
from socialcare.bot.announcements.official import answers
from socialcare.bot.announcements.views import excerpt
from socialcare.bot.errors import ConcurrentUpdate, DomainError, NotAllowed
from socialcare.bot.model import SYSTEM
from socialcare.bot.notices import Notice
from socialcare.bot.ports import Clock, UnitOfWork
from socialcare.bot.team import Person, Team

MAX_TEXT = 3000
MAX_WORDS = 20  # keywords or topics
MAX_WORD = 100
LONGEST = timedelta(days=366)
ATTEMPTS = 8
# Open cases looked at when an announcement starts or stops answering them.
OPEN_CASES = 500


@dataclass(frozen=True)
class Announce:
    """Tell the team, and the audiences named (or "all"), something at once.

    `keywords` and `topics` name the cases it answers: their cards offer its text as
    the official answer while it is in force."""

    actor: str
    text: str
    audiences: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()
    until: datetime | None = None


@dataclass(frozen=True)
class Correct:
    """Replace an announcement's text everywhere (mailboxes get the correction)."""

    announcement_id: int
    actor: str
    text: str


@dataclass(frozen=True)
class Withdraw:
    """Take an announcement back everywhere: copies unpinned and marked, mail sent."""

    announcement_id: int
    actor: str


@dataclass(frozen=True)
class Remind:
    """Remind, once, the members who have not pressed Got it, by direct message."""

    announcement_id: int
    actor: str


@dataclass(frozen=True)
class Acknowledge:
    """Someone pressed Got it on a chat copy (no role needed: they are of its audience)."""

    announcement_id: int
    messenger: str
    channel: str
    user_id: str
    name: str


@dataclass(frozen=True)
class Acknowledged:
    """A Got it, recorded (`new`) or already on record."""

    announcement_id: int
    new: bool


@dataclass(frozen=True)
class Standing:
    """Where an announcement stands: per audience its copies and who has it, and how
    many cases were answered with it."""

    announcement: Announcement
    audiences: list[AudienceStanding]
    answered: int


def announcer(team: Team, person_id: str) -> Person:
    """Return the roster entry of a shift lead or admin, or refuse."""
    person = team.person(person_id)
    if person is None:
        raise NotAllowed("Not in the roster.", key="error.not_in_roster")
    if not person.leads:
        raise NotAllowed("Only shift leads and admins announce.", key="error.leads_only")
    return person


def resolve_audiences(team: Team, names: Sequence[str]) -> tuple[str, ...]:
    """Return the audiences an announcement goes to: the team first, then those named
    (`all`: every configured audience); refuse a name the config lacks."""
    wanted = [n.strip().casefold() for n in names if n.strip()]
    if ALL in wanted:
        return (TEAM, *(a.name for a in team.audiences))
    unknown = [n for n in wanted if n != TEAM and team.audience(n) is None]
    if unknown:
        known = ", ".join([ALL, *(a.name for a in team.audiences)])
        raise DomainError(f"Unknown audience {unknown[0]!r}.", key="error.unknown_audience",
                          name=unknown[0], audiences=known)
    chosen = [TEAM]
    for name in wanted:
        if name not in chosen:
            chosen.append(name)
    return tuple(chosen)


def copies_for(team: Team, audiences: Sequence[str], *, at: datetime) -> list[Copy]:
    """Return a copy per place of these audiences, each place once (the first audience
    that has it)."""
    copies: list[Copy] = []
    seen: set[tuple[Outlet, str]] = set()

    def add(audience: str, outlet: Outlet, address: str) -> None:
        if (outlet, address) not in seen:
            seen.add((outlet, address))
            copies.append(Copy(announcement_id=0, audience=audience, outlet=outlet,
                               address=address, next_try_at=at))

    for name in audiences:
        if name == TEAM:
            for channel in team.channels:
                add(TEAM, Outlet(channel.messenger), channel.id)
            continue
        audience = team.audience(name)
        if audience is None:
            continue
        for chat in audience.channels:
            add(name, Outlet(chat.messenger), chat.id)
        for address in audience.emails:
            add(name, Outlet.EMAIL, address.casefold())
        if audience.webhook_url:
            add(name, Outlet.WEBHOOK, audience.webhook_url)
    return copies


def _words(values: Sequence[str], what: str) -> tuple[str, ...]:
    words: list[str] = []
    for value in values:
        word = " ".join(value.replace("\x00", "").split())
        if word and word.casefold() not in {w.casefold() for w in words}:
            words.append(word)
    if len(words) > MAX_WORDS or any(len(w) > MAX_WORD for w in words):
        raise DomainError(f"Too many or too long {what}.", key="error.announcement_words",
                          what=what, count=MAX_WORDS, length=MAX_WORD)
    return tuple(words)


def _text(text: str) -> str:
    # NUL is no character anyone types, and PostgreSQL's text cannot hold it.
    text = text.replace("\x00", "").strip()
    if not text:
        raise DomainError("The announcement is empty.", key="error.empty_announcement")
    if len(text) > MAX_TEXT:
        raise DomainError("The announcement is too long.", key="error.long_announcement",
                          limit=MAX_TEXT)
    return text


async def _refresh_cards(uow: UnitOfWork, announcement: Announcement, at: datetime) -> None:
    """Put the cards of the open cases the announcement answers out of step, so that
    they show (or stop showing) its official answer."""
    if not announcement.keywords and not announcement.topics:
        return
    open_cases = await uow.cases.list_open(limit=OPEN_CASES)
    firsts = await uow.mentions.first_of([c.id for c in open_cases if c.id is not None])
    matching = [c for c in open_cases
                if c.id in firsts and answers(announcement, firsts[c.id].text, c.topics)]
    if matching:
        await uow.cards.mark_changed(matching, at=at)


async def announce(cmd: Announce, *, uow: UnitOfWork, clock: Clock, team: Team) -> Announcement:
    """Store an announcement and a copy for every place of its audiences; return it.

    The actor is a shift lead or admin of the roster, or `SYSTEM` for an answer that
    socialcare publishes itself (an incident's)."""
    author = SYSTEM if cmd.actor == SYSTEM else announcer(team, cmd.actor).id
    text = _text(cmd.text)
    audiences = resolve_audiences(team, cmd.audiences)
    now = clock.now()
    if cmd.until is not None and not now < cmd.until <= now + LONGEST:
        raise DomainError("The end is in the past or over a year away.",
                          key="error.announcement_until")
    copies = copies_for(team, audiences, at=now)
    if not copies:
        raise DomainError("Nowhere to announce.", key="error.announce_nowhere")
    announcement = Announcement(
        text=text, author=author, created_at=now, audiences=audiences,
        keywords=_words(cmd.keywords, "keywords"), topics=_words(cmd.topics, "topics"),
        until=cmd.until,
    )
    async with uow:
        await uow.announcements.add(announcement, copies)
        assert announcement.id is not None
        await uow.announcements.add_events([AnnouncementEvent(
            announcement.id, "published", author, now,
            {"audiences": list(audiences), "places": len(copies)})])
        await _refresh_cards(uow, announcement, now)
        await uow.commit()
    return announcement


async def _change(
    announcement_id: int, apply: Callable[[Announcement, datetime], AnnouncementEvent], *,
    uow: UnitOfWork, clock: Clock, copies: bool = True,
    after: Callable[[UnitOfWork, Announcement, datetime], Awaitable[None]] | None = None,
) -> Announcement:
    """Apply a change with its event, retrying on a concurrent one; make the copies due."""
    for _ in range(ATTEMPTS):
        at = clock.now()
        async with uow:
            announcement = await uow.announcements.get(announcement_id)
            event = apply(announcement, at)
            try:
                await uow.announcements.save(announcement)
            except ConcurrentUpdate:
                continue
            await uow.announcements.add_events([event])
            if copies:
                await uow.announcements.make_due(announcement_id, at=at)
                await _refresh_cards(uow, announcement, at)
            if after is not None:
                await after(uow, announcement, at)
            await uow.commit()
            return announcement
    raise ConcurrentUpdate(f"announcement #{announcement_id} kept changing")


def _in_force(announcement: Announcement, at: datetime) -> None:
    if not announcement.in_force(at):
        raise DomainError(f"Announcement #{announcement.id} is no longer in force.",
                          key="error.announcement_ended", id=announcement.id)


async def correct(cmd: Correct, *, uow: UnitOfWork, clock: Clock, team: Team) -> Announcement:
    """Replace the text everywhere; mailboxes and webhooks get the correction."""
    person = announcer(team, cmd.actor)
    text = _text(cmd.text)

    def apply(announcement: Announcement, at: datetime) -> AnnouncementEvent:
        _in_force(announcement, at)
        assert announcement.id is not None
        event = AnnouncementEvent(announcement.id, "corrected", person.id, at,
                                  {"was": announcement.text})
        announcement.text = text
        announcement.corrected_at = at
        announcement.revision += 1
        return event

    return await _change(cmd.announcement_id, apply, uow=uow, clock=clock)


async def withdraw(cmd: Withdraw, *, uow: UnitOfWork, clock: Clock, team: Team) -> Announcement:
    """Take the announcement back everywhere."""
    person = announcer(team, cmd.actor)

    def apply(announcement: Announcement, at: datetime) -> AnnouncementEvent:
        _in_force(announcement, at)
        assert announcement.id is not None
        announcement.state = AnnouncementState.WITHDRAWN
        announcement.ended_at, announcement.ended_by = at, person.id
        announcement.revision += 1
        return AnnouncementEvent(announcement.id, "withdrawn", person.id, at)

    return await _change(cmd.announcement_id, apply, uow=uow, clock=clock)


async def expire_due(*, uow: UnitOfWork, clock: Clock, limit: int = 20) -> list[Announcement]:
    """End the announcements whose `until` has come: copies unpinned and marked."""
    now = clock.now()
    async with uow:
        due = await uow.announcements.expiring(now, limit=limit)
    ended = []
    for found in due:
        assert found.id is not None

        def apply(announcement: Announcement, at: datetime) -> AnnouncementEvent:
            if announcement.state is not AnnouncementState.ACTIVE:
                raise _AlreadyEnded
            assert announcement.id is not None and announcement.until is not None
            announcement.state = AnnouncementState.EXPIRED
            announcement.ended_at = announcement.until
            announcement.revision += 1
            return AnnouncementEvent(announcement.id, "expired", SYSTEM, at)

        try:
            ended.append(await _change(found.id, apply, uow=uow, clock=clock))
        except _AlreadyEnded:
            continue
    return ended


class _AlreadyEnded(Exception):
    """Another process ended the announcement first."""


async def remind(cmd: Remind, *, uow: UnitOfWork, clock: Clock, team: Team) -> int:
    """Send the members who have not pressed Got it one direct message, in every
    messenger that knows them; once per announcement. Return how many people."""
    person = announcer(team, cmd.actor)
    reminded: list[int] = []

    def apply(announcement: Announcement, at: datetime) -> AnnouncementEvent:
        _in_force(announcement, at)
        if announcement.reminded_at is not None:
            raise DomainError("Reminded already.", key="error.reminded_already",
                              id=announcement.id)
        assert announcement.id is not None
        announcement.reminded_at = at
        return AnnouncementEvent(announcement.id, "reminded", person.id, at)

    async def tell(uow: UnitOfWork, announcement: Announcement, at: datetime) -> None:
        assert announcement.id is not None
        receipts = (await uow.announcements.receipts([announcement.id])).get(
            announcement.id, [])
        pressed = {(r.messenger, r.user_id) for r in receipts}
        copies = (await uow.announcements.copies_of([announcement.id])).get(
            announcement.id, [])
        with_chats = {c.audience for c in copies if c.outlet.is_chat}
        notices: list[Notice] = []
        people: set[tuple[str | None, int | None]] = set()
        for audience in announcement.audiences:
            if audience not in with_chats:
                continue  # e-mail and webhook audiences have no receipts
            for member in members_of(team, audience):
                ids = [("slack", member.slack), ("telegram", member.telegram)]
                known = [(m, str(i)) for m, i in ids if i is not None]
                if any(k in pressed for k in known) or (member.slack, member.telegram) in people:
                    continue
                people.add((member.slack, member.telegram))
                notices += [Notice(messenger=m, recipient=i, key="announcement.reminder",
                                   params={"id": announcement.id,
                                           "who": person.name,
                                           "excerpt": excerpt(announcement.text, 300)},
                                   created_at=at) for m, i in known]
        await uow.notices.add(notices)
        reminded.append(len(people))

    await _change(cmd.announcement_id, apply, uow=uow, clock=clock, copies=False, after=tell)
    return reminded[-1]


async def standing(announcement_id: int, *, uow: UnitOfWork, team: Team) -> Standing:
    """Read an announcement with its copies, receipts and answered cases, in one
    transaction (raises AnnouncementNotFound)."""
    ids = [announcement_id]
    async with uow:
        announcement = await uow.announcements.get(announcement_id)
        copies = (await uow.announcements.copies_of(ids)).get(announcement_id, [])
        receipts = (await uow.announcements.receipts(ids)).get(announcement_id, [])
        answered = (await uow.announcements.answered(ids)).get(announcement_id, 0)
    return Standing(announcement, standings(announcement, copies, receipts, team=team),
                    answered)


async def acknowledge(cmd: Acknowledge, *, uow: UnitOfWork, clock: Clock) -> Acknowledged:
    """Record a Got it pressed on a chat copy; refuse one from a chat the announcement
    was not posted in. (The chat, not the message, is checked: a press may come before
    the copy's message id is recorded.)"""
    now = clock.now()
    async with uow:
        copy = await uow.announcements.find_copy(cmd.announcement_id, cmd.messenger,
                                                 cmd.channel)
        if copy is None:
            raise DomainError("Not an announcement.", key="error.unknown_button")
        announcement = await uow.announcements.get(copy.announcement_id)
        _in_force(announcement, now)
        new = await uow.announcements.acknowledge(Receipt(
            announcement_id=copy.announcement_id, messenger=cmd.messenger,
            user_id=cmd.user_id, name=cmd.name.strip()[:200] or cmd.user_id,
            channel=cmd.channel, at=now))
        await uow.commit()
    return Acknowledged(copy.announcement_id, new)
