"""A fake web site: forum and news pages at any path, its robots.txt, conditional GET.

Usage::

    async with FakeSite() as site:
        site.serve("/search.php?search_id=newposts", page("forum_newposts_1.html"))
        site.robots("User-agent: *\\nDisallow: /private/\\n")
        # GET {site.url("/search.php?search_id=newposts")}

What a web server does for pages (RFC 9110): an ``ETag`` and a ``Last-Modified`` on
every page, ``304 Not Modified`` to a matching ``If-None-Match`` (or, without one, an
``If-Modified-Since`` not older than the page), the ``Content-Type`` given (with its
charset), 404 for anything not served. ``/robots.txt`` is served as text/plain when set
(RFC 9309; 404 otherwise). A path is matched with its query string. Every request is
logged with the server's monotonic time (`requests`), so tests see how far apart the
requests to the host came. ``fail_next(path, status)`` answers a status once.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path

from aiohttp import web

from tests.fakes.server import FakeServer, Fault, Reply

PAGES = Path(__file__).parent / "pages"
HTML = "text/html; charset=utf-8"


def page(name: str) -> bytes:
    """A saved page made for the tests (tests/fakes/pages)."""
    return (PAGES / name).read_bytes()


@dataclass
class _Served:
    body: bytes
    content_type: str
    modified: datetime

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha256(self.body).hexdigest()[:20] + '"'


@dataclass(frozen=True)
class Request:
    """A request as the site saw it."""

    path: str
    at: float  # time.monotonic() when it arrived
    status: int
    headers: dict[str, str]


class FakeSite(FakeServer):
    """Pages served by path (with query), a robots.txt, and a request log."""

    def __init__(self) -> None:
        super().__init__(rate_limits=False)
        self._pages: dict[str, _Served] = {}
        self._robots: str | None = None
        self.requests: list[Request] = []

    def url(self, path: str) -> str:
        """The full address of a path."""
        return self.root_url + path

    def serve(self, path: str, body: bytes, *, content_type: str = HTML,
              modified: datetime | None = None) -> None:
        """Serve `body` at `path` (replacing what was there: a new ETag if it differs)."""
        self._pages[path] = _Served(body, content_type,
                                    (modified or datetime.now(UTC)).replace(microsecond=0))

    def robots(self, text: str | None) -> None:
        """Serve this robots.txt (None: answer 404 for it)."""
        self._robots = text

    def requested(self, path: str) -> list[Request]:
        """The requests of one path, oldest first."""
        return [r for r in self.requests if r.path == path]

    def add_routes(self, app: web.Application) -> None:
        """Answer every GET from the served pages."""
        app.router.add_get("/{tail:.*}", self._get)

    async def _get(self, request: web.Request) -> web.StreamResponse:
        path = request.path_qs
        arrived = time.monotonic()

        async def apply() -> Reply:
            if request.path == "/robots.txt" and self._robots is not None:
                return Reply(200, self._robots, headers={"Content-Type": "text/plain"})
            served = self._pages.get(path)
            if served is None:
                return Reply(404, "<html><body><h1>404 Not Found</h1></body></html>",
                             headers={"Content-Type": HTML})
            validators = {"ETag": served.etag,
                          "Last-Modified": format_datetime(served.modified, usegmt=True)}
            if _not_modified(request, served):
                return Reply(304, "", headers=validators)
            return Reply(200, "", headers={**validators, "Content-Type": served.content_type})

        reply = await self._run(request, path, apply)
        self.requests.append(Request(path, arrived, reply.status, dict(request.headers)))
        if reply.status == 200 and path in self._pages and request.path != "/robots.txt":
            return web.Response(status=200, body=self._pages[path].body, headers=reply.headers)
        if isinstance(reply.body, str):
            return web.Response(status=reply.status, text=reply.body if reply.body else None,
                                headers=reply.headers)
        return web.Response(status=reply.status, headers=reply.headers)

    async def _run(self, request: web.Request, path: str, apply) -> Reply:  # type: ignore[no-untyped-def]
        fault = self._faults.take(path)
        if fault is not None and fault.kind == "error":
            reply = self.fault_reply(path, fault)
            self.log(path, {}, reply, fault=f"injected {fault.status}")
            return reply
        reply: Reply = await apply()
        self.log(path, {}, reply)
        return reply

    def fault_reply(self, method: str, fault: Fault) -> Reply:
        """A bare error page of that status."""
        headers = {"Content-Type": HTML}
        if fault.status == 429:
            headers["Retry-After"] = str(fault.retry_after)
        return Reply(fault.status, f"<html><body><h1>{fault.status}</h1></body></html>",
                     headers=headers)


def _not_modified(request: web.Request, served: _Served) -> bool:
    match = request.headers.get("If-None-Match")
    if match is not None:
        return served.etag in [tag.strip() for tag in match.split(",")]
    since = request.headers.get("If-Modified-Since")
    if since is None:
        return False
    try:
        return served.modified <= parsedate_to_datetime(since)
    except (TypeError, ValueError):
        return False
