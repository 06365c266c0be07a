"""Announcements from the chat: `/announce`, `/announcements`, `/announcement N`, the
Got it button — the same in every messenger — and the loop that delivers them.

    /announce [AUDIENCES] TEXT [| keywords: 4G, outage] [| topics: network] [| until: 18:00]

AUDIENCES is a comma-separated list of the config's audiences, or `all`; without it
the team's own channels hear it, as before. The console's form calls the same
domain commands.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from aiohttp import web

from socialcare.bot.actions import AnnouncementAction
from socialcare.bot.announcements import service
from socialcare.bot.announcements.audiences import ALL, TEAM
from socialcare.bot.announcements.delivery import BATCH, Deliverer, Outlets
from socialcare.bot.announcements.figures import AnnouncementFigures, period_figures
from socialcare.bot.announcements.views import list_text, status_text
from socialcare.bot.errors import DomainError
from socialcare.bot.reports import Period
from socialcare.bot.team import Person, Team
from socialcare.deps import Deps
from socialcare.handlers import background
from socialcare.handlers.chat import ChatReply, describe_error
from socialcare.storage.budgets import RedisRateBudgets

log = logging.getLogger(__name__)

TICK_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 30.0
_ID = re.compile(r"#?([1-9][0-9]{0,17})")
_LABELS = ("keywords", "topics", "until")
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})$")
_DATE_CLOCK = re.compile(r"^(\d{4}-\d{2}-\d{2})[ T](\d{1,2}):(\d{2})$")


class BadAnnouncement(ValueError):
    """The command's words are not an announcement; the message is a catalog key."""


@dataclass(frozen=True)
class Parsed:
    """An announcement as typed: to whom, what, what it answers, until when."""

    audiences: tuple[str, ...]
    text: str
    keywords: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()
    until: datetime | None = None


def _words(value: str) -> tuple[str, ...]:
    return tuple(w.strip() for w in value.split(",") if w.strip())


def parse_until(value: str, *, team: Team, now: datetime) -> datetime:
    """Read an end time: HH:MM (today), YYYY-MM-DD HH:MM or YYYY-MM-DD (its end)."""
    value = value.strip()
    zone = team.zone
    try:
        if found := _CLOCK.fullmatch(value):
            local = now.astimezone(zone).date()
            return datetime.combine(local, time(int(found[1]), int(found[2])), zone)
        if found := _DATE_CLOCK.fullmatch(value):
            day = datetime.fromisoformat(found[1]).date()
            return datetime.combine(day, time(int(found[2]), int(found[3])), zone)
        day = datetime.fromisoformat(value).date()
        return datetime.combine(day + timedelta(days=1), time(), zone)
    except ValueError:
        raise BadAnnouncement("error.announcement_until") from None


def parse_announce(args: str, *, team: Team, labels: dict[str, str],
                   now: datetime) -> Parsed:
    """Parse `/announce`'s words; `labels` maps each section label (English and the
    team's language) to keywords, topics or until."""
    head, *sections = args.split("|")
    extra: dict[str, str] = {}
    for section in sections:
        label, colon, value = section.partition(":")
        name = labels.get(label.strip().casefold())
        if colon and name is not None:
            extra[name] = value
        else:
            head += "|" + section  # a bar that is part of the text
    first, _, rest = head.strip().partition(" ")
    names = [n.strip() for n in first.split(",")]
    audiences: tuple[str, ...] = ()
    # A comma-separated list, or one audience's name as the config writes it (lower
    # case: "Shops are closed" is a sentence).
    if "," in first or all(n in (ALL, TEAM) or team.audience(n) is not None for n in names):
        audiences, head = tuple(n for n in names if n), rest
    until = parse_until(extra["until"], team=team, now=now) if "until" in extra else None
    return Parsed(audiences=audiences, text=head.strip(),
                  keywords=_words(extra.get("keywords", "")),
                  topics=_words(extra.get("topics", "")), until=until)


def section_labels(deps: Deps) -> dict[str, str]:
    """Return the section labels `/announce` understands: English and the team's."""
    labels = {name: name for name in _LABELS}
    for name in _LABELS:
        labels[deps.catalog(f"announce.label_{name}").casefold()] = name
    return labels


async def publish(parsed: Parsed, person: Person, deps: Deps) -> ChatReply:
    """Announce, and say where it is going."""
    text = deps.catalog
    try:
        made = await service.announce(service.Announce(
            actor=person.id, text=parsed.text, audiences=parsed.audiences,
            keywords=parsed.keywords, topics=parsed.topics, until=parsed.until),
            uow=deps.uow(), clock=deps.clock, team=deps.team)
    except DomainError as error:
        return ChatReply(describe_error(error, deps))
    deps.wake()
    async with deps.uow() as uow:
        copies = (await uow.announcements.copies_of([made.id or 0])).get(made.id or 0, [])
    places = ", ".join(
        text("announce.to_audience", audience=_label(name, deps),
             places=sum(c.audience == name for c in copies))
        for name in made.audiences)
    return ChatReply(text("announce.done", id=made.id, places=places))


def _label(name: str, deps: Deps) -> str:
    audience = deps.team.audience(name)
    return audience.label if audience else deps.catalog("announcement.team")


async def run_announce(args: str, person: Person, deps: Deps) -> ChatReply:
    """Run `/announce [AUDIENCES] TEXT [| keywords: …] [| topics: …] [| until: …]`."""
    if not person.leads:
        return ChatReply(deps.catalog("error.leads_only"))
    try:
        parsed = parse_announce(args, team=deps.team, labels=section_labels(deps),
                                now=deps.clock.now())
    except BadAnnouncement as bad:
        return ChatReply(deps.catalog(str(bad)))
    if not parsed.text:
        return ChatReply(deps.catalog("usage.announce"))
    return await publish(parsed, person, deps)


async def run_announcements(deps: Deps) -> ChatReply:
    """Run `/announcements`: the announcements in force."""
    now = deps.clock.now()
    async with deps.uow() as uow:
        found = await uow.announcements.in_force(now)
    return ChatReply(list_text(found, team=deps.team, catalog=deps.catalog, now=now))


async def status(announcement_id: int, deps: Deps) -> str:
    """Return an announcement's status: per audience, where it went and who has it."""
    now = deps.clock.now()
    found = await service.standing(announcement_id, uow=deps.uow(), team=deps.team)
    return status_text(found.announcement, found.audiences, found.answered, team=deps.team,
                       catalog=deps.catalog, now=now)


async def run_announcement(args: str, person: Person, deps: Deps) -> ChatReply:
    """Run `/announcement N [withdraw | remind | correct TEXT]` (shift leads, admins)."""
    text = deps.catalog
    if not person.leads:
        return ChatReply(text("error.leads_only"))
    words = args.split(maxsplit=2)
    found = _ID.fullmatch(words[0]) if words else None
    verb = words[1].casefold() if len(words) > 1 else ""
    if found is None or verb not in ("", "withdraw", "remind", "correct") or (
            verb == "correct" and len(words) < 3) or (verb in ("withdraw", "remind")
                                                       and len(words) > 2):
        return ChatReply(text("usage.announcement"))
    announcement_id = int(found[1])
    common = {"uow": deps.uow(), "clock": deps.clock, "team": deps.team}
    try:
        if verb == "withdraw":
            await service.withdraw(service.Withdraw(announcement_id, person.id), **common)
            deps.wake()
            return ChatReply(text("announce.withdrawn", id=announcement_id))
        if verb == "correct":
            await service.correct(service.Correct(announcement_id, person.id, words[2]),
                                  **common)
            deps.wake()
            return ChatReply(text("announce.corrected", id=announcement_id))
        if verb == "remind":
            count = await service.remind(service.Remind(announcement_id, person.id), **common)
            deps.wake()
            return ChatReply(text("announce.reminded", id=announcement_id, count=count))
        return ChatReply(await status(announcement_id, deps))
    except DomainError as error:
        return ChatReply(describe_error(error, deps))


async def figures(period: Period, deps: Deps) -> list[AnnouncementFigures]:
    """Return the figures of the announcements made in a period."""
    async with deps.uow() as uow:
        made = await uow.announcements.published_between(period.start, period.end)
        ids = [a.id for a in made if a.id is not None]
        copies = await uow.announcements.copies_of(ids)
        receipts = await uow.announcements.receipts(ids)
        answered = await uow.announcements.answered(ids)
    return period_figures(made, copies, receipts, answered, team=deps.team)


def name_of(messenger: str, user_id: str, given: str, deps: Deps) -> str:
    """Return how someone who pressed Got it is named: as a member of an audience, as a
    person of the roster, else as the messenger names them."""
    for audience in deps.team.audiences:
        for member in audience.members:
            if member.known_as(messenger, user_id):
                return member.name
    person = deps.team.person_by_slack(user_id) if messenger == "slack" else \
        deps.team.person_by_telegram(int(user_id)) if user_id.isdigit() else None
    return person.name if person else given or user_id


async def official_text(announcement_id: int, deps: Deps) -> str | None:
    """Return an announcement's official answer while it is in force, else None."""
    try:
        async with deps.uow() as uow:
            announcement = await uow.announcements.get(announcement_id)
    except DomainError:
        return None
    return announcement.text if announcement.in_force(deps.clock.now()) else None


async def got_it(action: AnnouncementAction, *, messenger: str, channel: str, user_id: str,
                 name: str, deps: Deps) -> str:
    """Record a Got it pressed in a chat (anyone there may: they are of its audience);
    return the answer for the person."""
    try:
        done = await service.acknowledge(service.Acknowledge(
            announcement_id=action.announcement_id, messenger=messenger, channel=channel,
            user_id=user_id, name=name), uow=deps.uow(),
            clock=deps.clock)
    except DomainError as error:
        return describe_error(error, deps)
    return deps.catalog("announce.noted" if done.new else "announce.noted_already",
                        id=done.announcement_id)


async def _run(deps: Deps) -> None:
    """Every tick: end what expired, then deliver what is due.

    Within a round the audiences go side by side; a mail server or webhook that hangs
    holds up its own copies until its timeout (15 s), and the next round waits for
    the round, so that nothing of it is left running when the process stops."""
    deliverer = Deliverer(deps.team, deps.catalog, uow=deps.uow, clock=deps.clock,
                          outlets=Outlets(messengers=deps.messengers,
                                          budgets=RedisRateBudgets(deps.redis),
                                          mailer=deps.mailer,
                                          webhooks=deps.announcement_webhooks))
    backoff = TICK_SECONDS
    while True:
        background.stop_if_asked()
        await deps.foreground.give_way()  # the requests in flight first
        busy = False
        try:
            ended = await service.expire_due(uow=deps.uow(), clock=deps.clock)
            for announcement in ended:
                log.info("announcement #%s ended at its time", announcement.id)
            report = await deliverer.deliver()
            if ended or report.failed or report.gave_up:
                # Cards lose an ended official answer; authors hear of failures.
                deps.wake()
            busy = len(report.reached) + len(report.failed) + len(report.gave_up) >= BATCH
            backoff = TICK_SECONDS
        except Exception:
            background.stop_if_asked()
            log.exception("delivering announcements failed; retrying in %.0f s", backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
        await asyncio.sleep(0 if busy else backoff)


def register(app: web.Application, deps: Deps) -> None:
    """Deliver announcements for as long as the app runs."""
    background.run_while_serving(app, "announcements", lambda: _run(deps))
