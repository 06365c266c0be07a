"""The announcements pages: those in force with the form that announces (to the team
and the audiences chosen), and one announcement's standing per audience with its
actions — through the same domain commands as the chat's `/announce`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.web_urldispatcher import AbstractRoute, UrlDispatcher

from socialcare.bot.announcements import service
from socialcare.bot.announcements.model import Announcement
from socialcare.bot.announcements.views import (
    AnnouncementView,
    audience_text,
    excerpt,
    render_copy,
    when,
)
from socialcare.bot.cards import display_name
from socialcare.bot.errors import AnnouncementNotFound, DomainError
from socialcare.bot.team import Person
from socialcare.console.access import Visitor
from socialcare.console.pages import Flash, Pages, form_action, keep_flash
from socialcare.deps import Deps
from socialcare.handlers import announcing
from socialcare.handlers.chat import describe_error

ACTIONS = ("withdraw", "remind", "correct")


@dataclass(frozen=True)
class Line:
    """An announcement in the list."""

    id: int
    who: str
    time: str
    audiences: str
    excerpt: str


@dataclass(frozen=True)
class Form:
    """What the announcement form holds (as typed, when it is shown again)."""

    text: str = ""
    audiences: tuple[str, ...] = ()
    keywords: str = ""
    topics: str = ""
    until: str = ""


@dataclass(frozen=True)
class StandingPage:
    """One announcement: its copy as the chats show it, and where it stands."""

    announcement: Announcement
    view: AnnouncementView
    audiences: list[list[str]]
    answered: int
    in_force: bool


def field(form: Mapping[str, Any], name: str) -> str:
    """Return a form field as text; anything but text (a file) counts as empty."""
    value = form.get(name, "")
    return value if isinstance(value, str) else ""


def typed(form: Any) -> Form:
    """Read the announcement form as typed."""
    chosen = tuple(v for v in form.getall("audience", []) if isinstance(v, str))
    return Form(text=field(form, "text"), audiences=chosen, keywords=field(form, "keywords"),
                topics=field(form, "topics"), until=field(form, "until"))


async def in_force(deps: Deps) -> list[Line]:
    """Return the announcements in force, newest first."""
    now = deps.clock.now()
    async with deps.uow() as uow:
        found = await uow.announcements.in_force(now)
    return [Line(id=a.id or 0, who=display_name(a.author, deps.team, deps.catalog),
                 time=when(a.created_at, deps.team.zone, now),
                 audiences=", ".join(_label(n, deps) for n in a.audiences),
                 excerpt=excerpt(a.text, 120)) for a in found]


def _words(value: str) -> tuple[str, ...]:
    return tuple(w.strip() for w in value.split(",") if w.strip())


def _label(name: str, deps: Deps) -> str:
    audience = deps.team.audience(name)
    return audience.label if audience else deps.catalog("announcement.team")


async def publish(form: Form, person: Person, deps: Deps) -> tuple[Flash, int | None]:
    """Announce what the form holds; say how it went (and the announcement's id)."""
    text = deps.catalog
    try:
        until = announcing.parse_until(form.until, team=deps.team, now=deps.clock.now()) \
            if form.until.strip() else None
    except announcing.BadAnnouncement as bad:
        return Flash(text(str(bad)), ok=False), None
    try:
        made = await service.announce(service.Announce(
            actor=person.id, text=form.text, audiences=form.audiences,
            keywords=_words(form.keywords), topics=_words(form.topics), until=until),
            uow=deps.uow(), clock=deps.clock, team=deps.team)
    except DomainError as error:
        return Flash(describe_error(error, deps), ok=False), None
    deps.wake()
    return Flash(text("console.announcements.done", id=made.id)), made.id


async def standing(announcement_id: int, deps: Deps) -> StandingPage:
    """Read an announcement and where it stands (raises AnnouncementNotFound)."""
    now = deps.clock.now()
    found = await service.standing(announcement_id, uow=deps.uow(), team=deps.team)
    announcement = found.announcement
    return StandingPage(
        announcement=announcement,
        view=render_copy(announcement, team=deps.team, catalog=deps.catalog, now=now),
        audiences=[audience_text(s, team=deps.team, catalog=deps.catalog, now=now)
                   for s in found.audiences],
        answered=found.answered, in_force=announcement.in_force(now))


async def act(announcement_id: int, action: str, form: Mapping[str, Any], person: Person,
              deps: Deps) -> Flash:
    """Withdraw, remind or correct an announcement; say how it went."""
    text = deps.catalog
    common = {"uow": deps.uow(), "clock": deps.clock, "team": deps.team}
    try:
        if action == "withdraw":
            await service.withdraw(service.Withdraw(announcement_id, person.id), **common)
            done = text("announce.withdrawn", id=announcement_id)
        elif action == "remind":
            count = await service.remind(service.Remind(announcement_id, person.id), **common)
            done = text("announce.reminded", id=announcement_id, count=count)
        else:
            await service.correct(service.Correct(announcement_id, person.id,
                                                  field(form, "text")), **common)
            done = text("announce.corrected", id=announcement_id)
    except DomainError as error:
        return Flash(describe_error(error, deps), ok=False)
    deps.wake()
    return Flash(done)


Guard = Callable[..., Callable[[web.Request], Awaitable[web.StreamResponse]]]


def _leads(person: Person) -> bool:
    return person.leads


def routes(router: UrlDispatcher, signed_in: Guard, pages: Pages,
           deps: Deps) -> list[AbstractRoute]:
    """Add the announcements' routes behind the console's sign-in; return them."""

    async def listing(request: web.Request, visitor: Visitor, *, status: int = 200,
                      flash: Flash | None = None, form: Form | None = None) -> web.Response:
        return await pages.page(request, "announcements.html", visitor, status=status,
                                flash=flash, lines=await in_force(deps),
                                audiences=deps.team.audiences, form=form or Form(),
                                may_announce=visitor.person.leads)

    async def show_list(request: web.Request, visitor: Visitor) -> web.StreamResponse:
        return await listing(request, visitor)

    async def announce(request: web.Request, visitor: Visitor) -> web.StreamResponse:
        form = typed(await request.post())
        flash, made = await publish(form, visitor.person, deps)
        if made is None:
            return await listing(request, visitor, status=400, flash=flash, form=form)
        await keep_flash(deps, visitor, flash)
        raise web.HTTPSeeOther(f"/announcements/{made}")

    async def one(request: web.Request, visitor: Visitor, *, status: int = 200,
                  flash: Flash | None = None) -> web.Response:
        try:
            page = await standing(int(request.match_info["announcement_id"]), deps)
        except AnnouncementNotFound as missing:
            return await pages.page(request, "message.html", visitor, status=404,
                                    message=deps.catalog(missing.key, **missing.params))
        return await pages.page(request, "announcement.html", visitor, status=status,
                                flash=flash, page=page)

    async def show_one(request: web.Request, visitor: Visitor) -> web.StreamResponse:
        return await one(request, visitor)

    return [
        router.add_get("/announcements", signed_in(show_list)),
        router.add_post("/announcements", signed_in(announce, allowed=_leads)),
        router.add_get(r"/announcements/{announcement_id:\d{1,18}}",
                       signed_in(show_one, allowed=_leads)),
        router.add_post(r"/announcements/{announcement_id:\d{1,18}}/{action:[a-z]{1,20}}",
                        signed_in(form_action("announcement_id", ACTIONS, act, one,
                                              "/announcements", deps), allowed=_leads)),
    ]
