"""The console's routes on the built-in server.

    GET  /                      the wallboard          GET  /events       its live updates (SSE)
    GET  /cases/{id}            a case                 POST /cases/{id}/{action}
    GET  /cases/{id}/events     its changes (SSE)
    GET  /escalations/{id}      an escalation and every case it links
    GET  /incidents/{id}        an incident; POST …/{ack|answer|add|remove|resolve} (leads)
    GET  /announcements         those in force; POST: announce (shift leads, admins)
    GET  /announcements/{id}    where one stands; POST …/{withdraw|remind|correct}
    GET  /reports               figures, charts, escalations, digest
    GET  /reports/{chart}.png   GET /reports/cases.csv   GET /reports/digest.md
    GET  /signin  POST /signin  GET|POST /signin/link/{token}
    POST /signout  POST /signout/everywhere (every session of the person)
    GET  /static/…              the stylesheet and the script

Everything but the sign-in pages and the static files needs a session: a page asked
for by a browser redirects to /signin, anything else answers 401. Every POST needs
the session's CSRF token (the sign-in forms: a token in a cookie and the form alike),
or it is refused with 403 and nothing is done.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import web

from socialcare.adapters.charts import CHARTS
from socialcare.bot import cases
from socialcare.bot.errors import CaseNotFound, EscalationNotFound, IncidentNotFound
from socialcare.bot.escalations import Category
from socialcare.bot.reports import BadPeriod
from socialcare.bot.team import Person
from socialcare.console import access
from socialcare.console import announcements_page as announcing
from socialcare.console.access import SignedIn, TooManyAttempts, Visitor
from socialcare.console.case_page import act, case_page
from socialcare.console.clients import client_address
from socialcare.console.escalation_page import escalation_page
from socialcare.console.incident_page import ACTIONS as INCIDENT_ACTIONS
from socialcare.console.incident_page import banners, incident_page, may_run
from socialcare.console.incident_page import run as run_incident
from socialcare.console.pages import (
    Flash,
    Pages,
    form_action,
    keep_flash,
    may_report,
    security_headers,
)
from socialcare.console.reports_page import (
    PERIODS,
    chart,
    csv_file,
    digest_file,
    period_of,
    reports_page,
    week_of,
)
from socialcare.console.streams import (
    STREAMS_PER_SESSION,
    Audience,
    CaseWatch,
    OpenStream,
    Stream,
    TooManyStreams,
)
from socialcare.console.wallboard import KEEPALIVE_SECONDS, LiveBoard, board
from socialcare.deps import Deps
from socialcare.handlers import background, escalating

STATIC = Path(__file__).parent / "static"
SESSION_COOKIE = "sc_session"
SIGNIN_COOKIE = "sc_signin"  # the sign-in forms' CSRF token, before there is a session
# An open event stream checks its session again this often.
# (A sign-out in this process ends its streams at once; one elsewhere, by this.)
RECHECK_SECONDS = 15.0

Handler = Callable[[web.Request, Visitor], Awaitable[web.StreamResponse]]


def _everyone(_person: Person) -> bool:
    return True


def _same(given: object, expected: str) -> bool:
    return isinstance(given, str) and bool(given) and hmac.compare_digest(
        given.encode(), expected.encode())


def _safe_next(value: str | None) -> str:
    """Return where to go after signing in: a path of this site, never another site.

    Browsers drop tabs and newlines from a Location and read a backslash as a slash, so
    "/\t/evil.example" would lead to //evil.example: only printable ASCII is let through."""
    if (not value or not value.startswith("/") or value.startswith("//") or "\\" in value
            or any(not " " < c < "\x7f" for c in value)):
        return "/"
    return value


def _see_other(to: str) -> web.Response:
    return web.Response(status=303, headers={"Location": to})


def _signed_out() -> web.Response:
    response = _see_other("/signin")
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


def _download(body: bytes, content_type: str, filename: str) -> web.Response:
    return web.Response(body=body, content_type=content_type, charset="utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def escalation_url(deps: Deps, escalation_id: int) -> str | None:
    """Return the console page listing an escalation's cases, if the console has an
    address (CONSOLE_URL)."""
    base = access.console_url(deps)
    return None if base is None else f"{base}/escalations/{escalation_id}"


def register(app: web.Application, deps: Deps) -> None:
    """Add the console's routes, its live wallboard and its security headers."""
    pages = Pages(deps)
    live = LiveBoard(deps, pages)
    watch = CaseWatch(deps)
    audience = Audience()
    secure = access.secure_cookies(deps)

    async def stop_streams(_app: web.Application) -> None:
        live.close()
        watch.close()

    app.on_shutdown.append(stop_streams)
    background.run_while_serving(app, "wallboard", live.run)

    def signed_in(handler: Handler, *, allowed: Callable[[Person], bool] = _everyone
                  ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def guarded(request: web.Request) -> web.StreamResponse:
            visitor = await access.visitor(deps, request.cookies.get(SESSION_COOKIE))
            if visitor is None:
                if request.method == "GET" and "text/html" in request.headers.get("Accept", ""):
                    raise web.HTTPSeeOther(f"/signin?next={quote(request.path_qs, safe='')}")
                return web.Response(status=401, text="401: sign in at /signin first\n")
            if request.method == "POST":
                form = await request.post()
                given = form.get("csrf") or request.headers.get("X-CSRF-Token")
                if not _same(given, visitor.csrf):
                    return web.Response(status=403, text="403: the form's CSRF token is "
                                        "missing or wrong; nothing was done\n")
            if not allowed(visitor.person):
                return await pages.page(request, "message.html", visitor, status=403,
                                        message=deps.catalog("console.forbidden"))
            return await handler(request, visitor)

        return guarded

    # ── Sign-in ────────────────────────────────────────────────────────────────────

    def signin_token(request: web.Request) -> str:
        return request.cookies.get(SIGNIN_COOKIE) or secrets.token_urlsafe(24)

    async def signin_page(request: web.Request, name: str, *, status: int = 200,
                          **context: object) -> web.Response:
        token = signin_token(request)
        response = await pages.page(request, name, None, status=status, signin_csrf=token,
                                    **context)
        response.set_cookie(SIGNIN_COOKIE, token, httponly=True, samesite="Strict",
                            secure=secure, path="/signin")
        return response

    async def signin_form_ok(request: web.Request) -> bool:
        form = await request.post()
        return _same(form.get("csrf"), request.cookies.get(SIGNIN_COOKIE, ""))

    def signed(signed_in: SignedIn, to: str) -> web.StreamResponse:
        response = _see_other(to)
        response.set_cookie(SESSION_COOKIE, signed_in.token, httponly=True, samesite="Lax",
                            secure=secure, path="/",
                            max_age=int(access.SESSION_LIFETIME.total_seconds()))
        response.del_cookie(SIGNIN_COOKIE, path="/signin")
        return response

    async def show_signin(request: web.Request) -> web.StreamResponse:
        to = _safe_next(request.query.get("next"))
        if await access.visitor(deps, request.cookies.get(SESSION_COOKIE)) is not None:
            raise web.HTTPSeeOther(to)
        return await signin_page(request, "signin.html", next=to, typed="", error=None)

    async def password_signin(request: web.Request) -> web.StreamResponse:
        if not await signin_form_ok(request):
            return web.Response(status=403, text="403: the sign-in form's CSRF token is "
                                "missing or wrong\n")
        form = await request.post()
        typed, to = str(form.get("person", "")), _safe_next(str(form.get("next", "")))
        try:
            made = await access.sign_in_with_password(
                deps, typed, str(form.get("password", "")),
                client=client_address(request, deps.settings.proxies))
            error = None if made else deps.catalog("console.signin.wrong")
        except TooManyAttempts:
            made, error = None, deps.catalog("console.signin.throttled")
        if made is None:
            return await signin_page(request, "signin.html", status=401, next=to, typed=typed,
                                     error=error)
        return signed(made, to)

    async def show_link(request: web.Request) -> web.StreamResponse:
        token = request.match_info["token"]
        person = await access.link_owner(deps, token)
        return await signin_page(request, "link.html", status=200 if person else 410,
                                 person=person, token=token)

    async def link_signin(request: web.Request) -> web.StreamResponse:
        if not await signin_form_ok(request):
            return web.Response(status=403, text="403: the sign-in form's CSRF token is "
                                "missing or wrong\n")
        made = await access.sign_in_with_link(deps, request.match_info["token"])
        if made is None:
            return await signin_page(request, "link.html", status=410, person=None, token="")
        return signed(made, "/")

    async def signout(request: web.Request, visitor: Visitor) -> web.StreamResponse:
        await access.sign_out(deps, visitor.session)
        audience.end(session=visitor.session.token_hash)
        return _signed_out()

    async def signout_everywhere(request: web.Request, visitor: Visitor) -> web.StreamResponse:
        await access.sign_out_everywhere(deps, visitor.person.id)
        audience.end(person_id=visitor.person.id)
        return _signed_out()

    # ── The wallboard ──────────────────────────────────────────────────────────────

    async def wallboard(request: web.Request, visitor: Visitor) -> web.StreamResponse:
        return await pages.page(request, "wallboard.html", visitor, board=await board(deps),
                                incidents=await banners(deps))

    async def event_stream(request: web.Request, visitor: Visitor, name: str,
                           updates: Stream) -> web.StreamResponse:
        """Send each update as a server-sent event `name` (with keep-alives between) until
        None (the end), the browser leaves, or the session ends."""
        try:
            with audience.opened(visitor.person.id, visitor.session.token_hash,
                                 updates) as stream:
                return await send_events(request, name, stream)
        except TooManyStreams:
            return web.Response(status=429, text="429: this session has "
                                f"{STREAMS_PER_SESSION} live pages open already\n")

    async def send_events(request: web.Request, name: str,
                          stream: OpenStream) -> web.StreamResponse:
        response = web.StreamResponse(headers={
            "Content-Type": "text/event-stream", "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",  # a proxy in front must not hold the events back
        })
        await response.prepare(request)
        loop = asyncio.get_running_loop()
        checked = loop.time()
        token = request.cookies.get(SESSION_COOKIE)
        with contextlib.suppress(ConnectionResetError):
            await response.write(b"retry: 3000\n\n")
            while True:
                try:
                    async with asyncio.timeout(KEEPALIVE_SECONDS):
                        data = await stream.updates.get()
                except TimeoutError:
                    await response.write(b": still here\n\n")
                    data = ""
                if stream.ended:
                    await response.write(b"event: signout\ndata: {}\n\n")
                    break
                if data is None:
                    break
                if data:
                    await response.write(f"event: {name}\ndata: {data}\n\n".encode())
                if loop.time() - checked >= RECHECK_SECONDS:
                    checked = loop.time()
                    if await access.visitor(deps, token) is None:
                        await response.write(b"event: signout\ndata: {}\n\n")
                        break
        return response

    async def events(request: web.Request, visitor: Visitor) -> web.StreamResponse:
        async with live.listen() as updates:  # None when the server is stopping
            return await event_stream(request, visitor, "board", updates)

    async def case_events(request: web.Request, visitor: Visitor) -> web.StreamResponse:
        case_id = int(request.match_info["case_id"])
        async with deps.uow() as uow:
            if not await uow.console.case_mark(case_id):
                return web.Response(status=404, text=f"404: there is no case #{case_id}\n")
        async with watch.listen(case_id, request.query.get("mark", "")) as changes:
            return await event_stream(request, visitor, "changed", changes)

    # ── Cases ──────────────────────────────────────────────────────────────────────

    async def show_case(request: web.Request, visitor: Visitor) -> web.StreamResponse:
        case_id = int(request.match_info["case_id"])
        try:
            page = await case_page(case_id, visitor.person, deps)
        except CaseNotFound:
            return await pages.page(request, "message.html", visitor, status=404,
                                    message=deps.catalog("console.case.not_found", id=case_id))
        asked = request.query.get("official", "")
        pictures = await cases.find_pictures(case_id, uow=deps.uow(), team=deps.team,
                                             publishers=deps.publishers)
        return await pages.page(
            request, "case.html", visitor, page=page, categories=list(Category),
            text_only=pictures.source if pictures.text_only else None,
            directors=escalating.directors(deps.team), saved=deps.team.saved_replies,
            second_line=deps.team.second_line, topics=deps.team.topics, name_of=pages.name_of,
            official_asked=int(asked) if asked.isdigit() and len(asked) <= 18 else None,
        )

    previews: dict[int, bytes] = {}  # saved reply's number → its picture's preview

    async def saved_picture(request: web.Request, _visitor: Visitor) -> web.StreamResponse:
        """Serve a preview of a saved reply's picture (drawn once, off the event loop)."""
        number = int(request.match_info["number"])
        saved = deps.team.saved_replies
        if number >= len(saved) or saved[number].image is None:
            return web.Response(status=404, text="404: no saved reply with a picture there\n")
        if number not in previews:
            from socialcare.adapters.thumbnails import thumbnail_png

            image = Path(str(saved[number].image))
            content = await asyncio.to_thread(image.read_bytes)
            previews[number] = await asyncio.to_thread(thumbnail_png, content)
        return web.Response(body=previews[number], content_type="image/png")

    async def case_action(request: web.Request, visitor: Visitor) -> web.StreamResponse:
        case_id = int(request.match_info["case_id"])
        posted = await request.post()
        form: dict[str, Any] = dict(posted)
        form["topic"] = posted.getall("topic", [])  # checkboxes: one value each
        flash = await act(case_id, request.match_info["action"], form, visitor.person, deps)
        await keep_flash(deps, visitor, flash)
        raise web.HTTPSeeOther(f"/cases/{case_id}")

    # ── Escalations ───────────────────────────────────────────────────────────────

    async def show_escalation(request: web.Request, visitor: Visitor) -> web.StreamResponse:
        escalation_id = int(request.match_info["escalation_id"])
        try:
            page = await escalation_page(escalation_id, deps)
        except EscalationNotFound:
            missing = deps.catalog("console.escalation.not_found", id=escalation_id)
            return await pages.page(request, "message.html", visitor, status=404,
                                    message=missing)
        return await pages.page(request, "escalation.html", visitor, page=page,
                                name_of=pages.name_of)

    async def show_incident(request: web.Request, visitor: Visitor, *, status: int = 200,
                            flash: Flash | None = None) -> web.StreamResponse:
        incident_id = int(request.match_info["incident_id"])
        try:
            page = await incident_page(incident_id, deps)
        except IncidentNotFound:
            missing = deps.catalog("error.no_incident", incident=incident_id)
            return await pages.page(request, "message.html", visitor, status=404,
                                    message=missing)
        return await pages.page(request, "incident.html", visitor, status=status, flash=flash,
                                page=page, may_run=may_run(visitor.person, deps),
                                name_of=pages.name_of)

    # ── Reports ────────────────────────────────────────────────────────────────────

    async def reports(request: web.Request, visitor: Visitor) -> web.StreamResponse:
        week = week_of(request.query.get("week", ""), deps)
        status, flash = 200, None
        try:
            period = period_of(request.query, deps)
        except BadPeriod:
            period = period_of({}, deps)
            status, flash = 400, Flash(deps.catalog("console.reports.bad_period"), ok=False)
        return await pages.page(request, "reports.html", visitor, status=status, flash=flash,
                                page=await reports_page(period, week, deps), periods=PERIODS,
                                name_of=pages.name_of)

    async def report_chart(request: web.Request, _visitor: Visitor) -> web.StreamResponse:
        name = request.match_info["chart"]
        try:
            period = period_of(request.query, deps)
        except BadPeriod:
            return web.Response(status=400, text="400: no such period\n")
        if name not in CHARTS:
            raise web.HTTPNotFound()
        return web.Response(body=await chart(name, period, deps), content_type="image/png")

    async def report_csv(request: web.Request, _visitor: Visitor) -> web.StreamResponse:
        try:
            period = period_of(request.query, deps)
        except BadPeriod:
            return web.Response(status=400, text="400: no such period\n")
        name = period.name.replace("..", "_")
        return _download(await csv_file(period, deps), "text/csv", f"cases-{name}.csv")

    async def report_digest(request: web.Request, _visitor: Visitor) -> web.StreamResponse:
        week = week_of(request.query.get("week", ""), deps)
        return _download(await digest_file(week, deps), "text/markdown",
                         f"digest-{week.key}.md")

    router = app.router
    routes = [
        router.add_get("/signin", show_signin),
        router.add_post("/signin", password_signin),
        router.add_get("/signin/link/{token}", show_link),
        router.add_post("/signin/link/{token}", link_signin),
        router.add_post("/signout", signed_in(signout)),
        router.add_post("/signout/everywhere", signed_in(signout_everywhere)),
        router.add_get("/", signed_in(wallboard)),
        router.add_get("/events", signed_in(events)),
        router.add_get(r"/cases/{case_id:\d{1,18}}", signed_in(show_case)),
        router.add_get(r"/cases/{case_id:\d{1,18}}/events", signed_in(case_events)),
        router.add_post(r"/cases/{case_id:\d{1,18}}/{action:[a-z_]+}",
                        signed_in(case_action)),
        router.add_get(r"/saved-replies/{number:\d{1,3}}.png", signed_in(saved_picture)),
        router.add_get(r"/escalations/{escalation_id:\d{1,18}}", signed_in(show_escalation)),
        router.add_get(r"/incidents/{incident_id:\d{1,18}}", signed_in(show_incident)),
        router.add_post(r"/incidents/{incident_id:\d{1,18}}/{action:[a-z]{1,20}}",
                        signed_in(form_action("incident_id", INCIDENT_ACTIONS, run_incident,
                                              show_incident, "/incidents", deps),
                                  allowed=lambda person: may_run(person, deps))),
        *announcing.routes(router, signed_in, pages, deps),
        router.add_get("/reports", signed_in(reports, allowed=may_report)),
        router.add_get("/reports/cases.csv", signed_in(report_csv, allowed=may_report)),
        router.add_get("/reports/digest.md", signed_in(report_digest, allowed=may_report)),
        router.add_get("/reports/{chart:[a-z]+}.png",
                       signed_in(report_chart, allowed=may_report)),
    ]
    app.on_response_prepare.append(security_headers({route.resource for route in routes
                                                     if route.resource is not None}))
    router.add_static("/static", STATIC, append_version=False)
