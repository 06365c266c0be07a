"""How console pages are made: Jinja2 templates (every value escaped), the team's
words and times, one-shot notices after an action, and the headers every page gets."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiohttp import web
from aiohttp.web_urldispatcher import AbstractResource
from jinja2 import Environment, PackageLoader, StrictUndefined

from socialcare.bot.cards import display_name
from socialcare.bot.team import Person
from socialcare.console.access import Visitor
from socialcare.deps import Deps

FLASH_SECONDS = 60
# No script, style or frame from anywhere else; no inline script at all.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # A sign-in link's token must not travel on in a Referer header.
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def templates() -> Environment:
    """Return the console's template environment (autoescaping everything)."""
    return Environment(loader=PackageLoader("socialcare.console", "templates"),
                       autoescape=True, undefined=StrictUndefined, trim_blocks=True,
                       lstrip_blocks=True)


def may_report(person: Person) -> bool:
    """Tell whether a person may read the reports: the team's rule for its figures."""
    return person.reads_team_figures


def local_time(at: datetime | None, deps: Deps, *, seconds: bool = False) -> str:
    """Show a moment in the team's timezone: the time today, else with the date."""
    if at is None:
        return "—"
    zone = deps.team.zone
    local = at.astimezone(zone)
    clock = "%H:%M:%S" if seconds else "%H:%M"
    if local.date() == deps.clock.now().astimezone(zone).date():
        return local.strftime(clock)
    return local.strftime(f"%d.%m.%Y {clock}")


@dataclass(frozen=True)
class Flash:
    """A one-shot notice shown on the next page: how an action went."""

    text: str
    ok: bool = True


def security_headers(resources: Collection[AbstractResource]) -> Callable[
        [web.Request, web.StreamResponse], Awaitable[None]]:
    """Return an on_response_prepare hook that gives the responses of these resources (the
    console's pages) their security headers, and leaves the app's other routes alone."""

    async def add_headers(request: web.Request, response: web.StreamResponse) -> None:
        if request.match_info.route.resource in resources:
            for name, value in _HEADERS.items():
                response.headers.setdefault(name, value)

    return add_headers


def _flash_key(visitor: Visitor) -> str:
    return f"console:flash:{visitor.session.token_hash}"


async def keep_flash(deps: Deps, visitor: Visitor, flash: Flash) -> None:
    """Keep a notice for the visitor's next page."""
    await deps.redis.set(_flash_key(visitor), json.dumps([flash.text, flash.ok]),
                         ex=FLASH_SECONDS)


async def take_flash(deps: Deps, visitor: Visitor) -> Flash | None:
    """Return (and forget) the notice kept for the visitor, if any."""
    kept = await deps.redis.getdel(_flash_key(visitor))
    if kept is None:
        return None
    text, ok = json.loads(kept)
    return Flash(str(text), bool(ok))


Handler = Callable[[web.Request, Visitor], Awaitable[web.StreamResponse]]
Action = Callable[[int, str, Mapping[str, Any], Person, Deps], Awaitable[Flash]]


def form_action(key: str, actions: Collection[str], run: Action, again: Callable[
        ..., Awaitable[web.StreamResponse]], place: str, deps: Deps) -> Handler:
    """Return the handler of a page's action form, posted to `<place>/{key}/{action}`:
    `run` does the action and says how it went; done, the notice is kept and the visitor
    sent back to the page; refused, the page is shown again (400) with the reason."""

    async def handle(request: web.Request, visitor: Visitor) -> web.StreamResponse:
        number, action = int(request.match_info[key]), request.match_info["action"]
        if action not in actions:
            raise web.HTTPNotFound()
        flash = await run(number, action, await request.post(), visitor.person, deps)
        if not flash.ok:
            return await again(request, visitor, status=400, flash=flash)
        await keep_flash(deps, visitor, flash)
        raise web.HTTPSeeOther(f"{place}/{number}")

    return handle


class Pages:
    """Renders the console's pages with what every page needs."""

    def __init__(self, deps: Deps) -> None:
        self._deps = deps
        self._env = templates()
        text = deps.catalog
        self._env.globals.update(t=text, lang=text.language,
                                 local=lambda at: local_time(at, deps))
        self._env.filters["language_name"] = lambda code: text(f"language.{code}")

    def html(self, name: str, **context: Any) -> str:
        """Render a template to a string."""
        return self._env.get_template(name).render(**context)

    async def page(self, request: web.Request, name: str, visitor: Visitor | None, *,
                   status: int = 200, **context: Any) -> web.Response:
        """Render a whole page for a visitor (or for no one, on the sign-in pages)."""
        flash = await take_flash(self._deps, visitor) if visitor is not None else None
        common: Mapping[str, Any] = {
            "visitor": visitor, "flash": context.pop("flash", None) or flash,
            "can_report": visitor is not None and may_report(visitor.person),
            "role": visitor.person.role.value if visitor else "",
            "now_iso": self._deps.clock.now().isoformat(),
        }
        body = self.html(name, **common, **context)
        return web.Response(text=body, status=status, content_type="text/html",
                            charset="utf-8")

    def name_of(self, actor: str) -> str:
        """Return how an actor is shown (a person's name, a handle, "socialcare")."""
        return display_name(actor, self._deps.team, self._deps.catalog)
