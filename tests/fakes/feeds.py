"""A fake web server for the RSS/Atom feeds of local forums and news portals.

Usage::

    async with FakeFeeds() as feeds:
        async with aiohttp.ClientSession() as http, http.get(feeds.url("dalanews-rss2.xml")) as r:
            body, etag = await r.read(), r.headers["ETag"]
        expected = feeds.corpus["dalanews-rss2.xml"].items      # what a reader must find
        feeds.publish("mentions.xml", [FeedItem("Kcell ...", guid="m-1")])  # a live feed

It serves, at ``/feeds/<name>``:

* the corpus in ``tests/fakes/feed_corpus/`` byte for byte, with the Content-Type of its
  ``manifest.json`` (wrong and missing charsets included; ``null`` sends no Content-Type);
* `HUGE_FEED`, a ~10 MB RSS built on first request by `huge_rss`;
* live feeds that `publish` adds items to, and raw bodies set with `serve`.

It answers like a web server: GET and HEAD only, ETag (a hash of the body) and Last-Modified
on every feed, 304 without a body for a matching If-None-Match or a not-newer
If-Modified-Since (If-None-Match wins when both are sent, RFC 9110 §13.2.2), redirects set with
`redirect` (loops included), 404 for anything else. Every request goes through
`FakeServer.run_call`, so `fail_next` / `slow_next` / `timeout_next` / `set_chaos` work; faults
are keyed by request path, and a bare feed name stands for ``/feeds/<name>``. `requests` lists
every request with its conditional headers and status.

Knowingly different from a real server: no gzip, no Range, no Cache-Control.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime, parsedate_to_datetime
from functools import cache
from http import HTTPStatus
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from aiohttp import hdrs, web

from tests.fakes.server import Call, Clock, FakeServer, Fault, FaultInjector, Reply

CORPUS_DIR = Path(__file__).with_name("feed_corpus")
FEEDS_PREFIX = "/feeds/"
HUGE_FEED = "huge-rss.xml"
RSS_UTF8 = "application/rss+xml; charset=utf-8"
CORPUS_MODIFIED = datetime(2026, 11, 25, 9, 5, tzinfo=UTC)  # Last-Modified of corpus files
KZ_TIME = timezone(timedelta(hours=5), "KZ")  # one zone for all Kazakhstan since 2024-03-01


@dataclass(frozen=True)
class ExpectedItem:
    """An item a robust feed reader must find (see the manifest's ``fields``)."""

    title: str
    guid: str | None = None
    link: str | None = None  # may be relative: to the URL the feed was fetched from
    has_date: bool = False
    published: datetime | None = None
    brands: frozenset[str] = frozenset()
    occurrences: int = 1

    @classmethod
    def from_manifest(cls, entry: Mapping[str, Any]) -> ExpectedItem:
        """Read one manifest item."""
        published = entry.get("published")
        return cls(
            title=entry["title"],
            guid=entry.get("guid"),
            link=entry.get("link"),
            has_date=entry["has_date"],
            published=datetime.fromisoformat(published) if published else None,
            brands=frozenset(entry.get("brands", ())),
            occurrences=entry.get("occurrences", 1),
        )


@dataclass(frozen=True)
class CorpusFeed:
    """A corpus file and what its manifest says about it."""

    name: str
    kind: str  # rss2 | atom | rss1 | html | empty | json
    content_type: str | None
    encoding: str
    well_formed: bool
    covers: tuple[str, ...]
    note: str
    items: tuple[ExpectedItem, ...]
    optional_items: tuple[ExpectedItem, ...] = ()

    @property
    def path(self) -> Path:
        """Return the file's path on disk."""
        return CORPUS_DIR / self.name

    def read_bytes(self) -> bytes:
        """Return the body exactly as served."""
        return self.path.read_bytes()


@cache
def load_corpus() -> dict[str, CorpusFeed]:
    """Read ``feed_corpus/manifest.json`` (name → CorpusFeed)."""
    manifest = json.loads((CORPUS_DIR / "manifest.json").read_text(encoding="utf-8"))
    return {
        name: CorpusFeed(
            name=name,
            kind=entry["kind"],
            content_type=entry["content_type"],
            encoding=entry["encoding"],
            well_formed=entry["well_formed"],
            covers=tuple(entry["covers"]),
            note=entry["note"],
            items=tuple(ExpectedItem.from_manifest(it) for it in entry["items"]),
            optional_items=tuple(
                ExpectedItem.from_manifest(it) for it in entry.get("optional_items", ())
            ),
        )
        for name, entry in manifest["feeds"].items()
    }


@dataclass(frozen=True)
class FeedItem:
    """An item of a live feed (see `FakeFeeds.publish`)."""

    title: str
    guid: str | None = None
    link: str | None = None
    description: str = ""  # text; it is XML-escaped, so HTML in it reaches readers as HTML
    published: datetime | None = None  # None: stamped with the time of publishing
    author: str | None = None


def render_rss(title: str, link: str, items: Iterable[FeedItem]) -> bytes:
    """Render a UTF-8 RSS 2.0 document, items in the given order."""
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/">\n<channel>\n'
        f"<title>{escape(title)}</title>\n<link>{escape(link)}</link>\n"
        f"<description>{escape(title)}</description>\n"
    ]
    for item in items:
        fields = [f"<title>{escape(item.title)}</title>"]
        if item.link is not None:
            fields.append(f"<link>{escape(item.link)}</link>")
        if item.guid is not None:
            permalink = "true" if item.guid == item.link else "false"
            fields.append(f'<guid isPermaLink="{permalink}">{escape(item.guid)}</guid>')
        if item.published is not None:
            fields.append(f"<pubDate>{format_datetime(item.published)}</pubDate>")
        if item.author is not None:
            fields.append(f"<dc:creator>{escape(item.author)}</dc:creator>")
        if item.description:
            fields.append(f"<description>{escape(item.description)}</description>")
        parts.append("<item>\n" + "\n".join(fields) + "\n</item>\n")
    parts.append("</channel>\n</rss>\n")
    return "".join(parts).encode("utf-8")


@dataclass(frozen=True)
class GeneratedFeed:
    """A generated feed: its body and the items in it."""

    body: bytes
    items: tuple[ExpectedItem, ...]
    content_type: str = RSS_UTF8


HUGE_BRAND_LEADS = (
    ("Kcell расширил покрытие 4G вдоль трассы Алматы — Бишкек", frozenset({"kcell"})),
    ("activ абоненттеріне түнгі интернет тегін болады", frozenset({"activ"})),
    ("Абоненты Кселл жалуются на задержку SMS в Астане", frozenset({"kcell"})),
    ("Актив Казахстан снижает цены на роуминг в Турции", frozenset({"activ"})),
)
HUGE_FILLER_TITLES = (
    "Сводка происшествий по Алматы, выпуск {n}",
    "Ауа райы болжамы, {n}-шығарылым: Астана және облыстар",
    "Regional business digest, issue {n}",
    "Курс тенге и цены на топливо, выпуск {n}",
)
HUGE_PARAGRAPH = (
    "<p>Городские службы сообщают о плановых работах на сетях водоснабжения и теплоснабжения. "
    "Жителей просят заранее запастись водой и следить за объявлениями в подъездах. "
    "Қала тұрғындарына алдын ала су жинап алу ұсынылады. "
    "Residents are advised to follow updates on the city administration's website.</p>"
)


@cache
def huge_rss(target_bytes: int = 10_000_000) -> GeneratedFeed:
    """Build a valid RSS 2.0 of about `target_bytes` whose first items mention the brands.

    Deterministic: item ``i`` has guid and link ``https://dalanews.kz/archive/2026/<i>`` and a
    date 3 minutes before item ``i - 1``; only the first ``len(HUGE_BRAND_LEADS)`` items
    mention Kcell or activ.
    """
    head = (
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0">\n<channel>\n'
        "<title>Dala News — архив</title>\n<link>https://dalanews.kz/</link>\n"
        "<description>Все новости за месяц</description>\n"
    ).encode()
    tail = b"</channel>\n</rss>\n"
    description = escape(HUGE_PARAGRAPH * 4)
    newest = datetime(2026, 11, 25, 14, 0, tzinfo=KZ_TIME)
    chunks, items, size = [head], [], len(head) + len(tail)
    i = 0
    while size < target_bytes:
        if i < len(HUGE_BRAND_LEADS):
            title, brands = HUGE_BRAND_LEADS[i]
        else:
            template = HUGE_FILLER_TITLES[i % len(HUGE_FILLER_TITLES)]
            title, brands = template.format(n=i), frozenset()
        url = f"https://dalanews.kz/archive/2026/{i}"
        published = newest - timedelta(minutes=3 * i)
        chunk = (
            f"<item>\n<title>{escape(title)}</title>\n<link>{url}</link>\n"
            f'<guid isPermaLink="true">{url}</guid>\n'
            f"<pubDate>{format_datetime(published)}</pubDate>\n"
            f"<description>{description}</description>\n</item>\n"
        ).encode()
        chunks.append(chunk)
        size += len(chunk)
        items.append(ExpectedItem(title, url, url, True, published.astimezone(UTC), brands))
        i += 1
    chunks.append(tail)
    return GeneratedFeed(b"".join(chunks), tuple(items))


@dataclass(frozen=True)
class FeedRequest:
    """One request as the fake saw and answered it."""

    path: str
    http_method: str
    query: str
    if_none_match: str | None
    if_modified_since: str | None
    user_agent: str | None
    status: int | None  # None: the connection was dropped (timeout faults)
    body_bytes: int  # body bytes sent: 0 for 304, HEAD and dropped connections
    location: str | None
    fault: str | None
    at: datetime

    @property
    def conditional(self) -> bool:
        """Tell whether the request carried If-None-Match or If-Modified-Since."""
        return self.if_none_match is not None or self.if_modified_since is not None

    @classmethod
    def from_call(cls, call: Call) -> FeedRequest:
        """Read a request back from the base's call log."""
        summary = call.response if isinstance(call.response, dict) else {}
        if isinstance(call.response, str):
            summary = {"bytes": len(call.response.encode())}
        return cls(
            path=call.method,
            http_method=call.params["http_method"],
            query=call.params["query"],
            if_none_match=call.params["if_none_match"],
            if_modified_since=call.params["if_modified_since"],
            user_agent=call.params["user_agent"],
            status=call.status,
            body_bytes=summary.get("bytes", 0),
            location=summary.get("location"),
            fault=call.fault,
            at=call.at,
        )


def feed_path(name_or_path: str) -> str:
    """Return the request path of a feed (``"x.xml"`` → ``"/feeds/x.xml"``); paths pass."""
    if name_or_path == "*" or name_or_path.startswith("/"):
        return name_or_path
    return FEEDS_PREFIX + name_or_path


class _PathFaults(FaultInjector):
    """Key queued faults by request path, so tests may name a feed instead."""

    def queue(self, method: str, fault: Fault, times: int) -> None:
        super().queue(feed_path(method), fault, times)


class _UntypedResponse(web.Response):
    """A response with no Content-Type at all (aiohttp would add application/octet-stream)."""

    async def _prepare_headers(self) -> None:
        await super()._prepare_headers()
        self.headers.pop(hdrs.CONTENT_TYPE, None)


@dataclass
class _Feed:
    content_type: str | None
    modified: datetime
    build: Callable[[], bytes]
    live: list[FeedItem] | None = None  # newest first; None for static bodies
    keep: int = 50
    etag_enabled: bool = True
    last_modified_enabled: bool = True
    _body: bytes | None = field(default=None, repr=False)
    _etag: str = ""

    def body(self) -> bytes:
        if self._body is None:
            self._body = self.build()
            self._etag = '"' + hashlib.sha256(self._body).hexdigest()[:24] + '"'
        return self._body

    def etag(self) -> str:
        self.body()
        return self._etag

    def changed(self, modified: datetime) -> None:
        self._body = None
        self.modified = modified


def _page(status: int) -> str:
    """Return an nginx-style HTML page for `status`."""
    try:
        phrase = f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        phrase = str(status)
    return (
        f"<html>\r\n<head><title>{phrase}</title></head>\r\n<body>\r\n"
        f"<center><h1>{phrase}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n"
        "</html>\r\n"
    )


def _whole_seconds(at: datetime) -> datetime:
    """Return `at` in UTC without microseconds (HTTP dates carry whole seconds)."""
    return at.astimezone(UTC).replace(microsecond=0)


class FakeFeeds(FakeServer):
    """Feeds of local forums and news portals served over HTTP at ``/feeds/<name>``."""

    def __init__(
        self,
        *,
        corpus: bool = True,
        now: Callable[[], datetime] | None = None,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(clock=clock, rate_limits=False)
        self._faults = _PathFaults(self.chaos_exempt)
        self.now = now or (lambda: datetime.now(UTC))
        # Retry-After as an HTTP-date (`now` + the wait) rather than seconds: RFC 9110 allows
        # either, and CDNs and proxies in front of feeds send dates.
        self.retry_after_dates = False
        self.corpus: dict[str, CorpusFeed] = dict(load_corpus()) if corpus else {}
        self._feeds: dict[str, _Feed] = {}
        self._redirects: dict[str, tuple[str, int, bool]] = {}
        for name, entry in self.corpus.items():
            self._feeds[name] = _Feed(entry.content_type, CORPUS_MODIFIED, entry.read_bytes)
        if corpus:
            self._feeds[HUGE_FEED] = _Feed(RSS_UTF8, CORPUS_MODIFIED, lambda: huge_rss().body)

    async def __aenter__(self) -> FakeFeeds:
        await self.start()
        return self

    # ------------------------------------------------------------------ addresses

    def path(self, name: str) -> str:
        """Return the request path of feed `name`."""
        return feed_path(name)

    def url(self, name_or_path: str) -> str:
        """Return the full URL of a feed name or a path."""
        return self.root_url + feed_path(name_or_path)

    @property
    def names(self) -> list[str]:
        """Return the names of the feeds served now."""
        return sorted(self._feeds)

    # ------------------------------------------------------------------ content

    def serve(
        self,
        name: str,
        body: bytes,
        *,
        content_type: str | None = RSS_UTF8,
        at: datetime | None = None,
    ) -> None:
        """Serve `body` as feed `name` (replacing it: a new ETag when the bytes differ)."""
        modified = _whole_seconds(at) if at else self._next_modified(self._feeds.get(name))
        self._feeds[name] = _Feed(content_type, modified, lambda: body)

    def create_live(
        self,
        name: str,
        *,
        title: str | None = None,
        link: str = "https://forum.example.kz/",
        keep: int = 50,
        content_type: str | None = RSS_UTF8,
    ) -> None:
        """Start an empty live RSS feed showing its newest `keep` items."""
        items: list[FeedItem] = []
        self._feeds[name] = _Feed(
            content_type,
            self._next_modified(self._feeds.get(name)),
            lambda: render_rss(title or name, link, items[:keep]),
            live=items,
            keep=keep,
        )

    def publish(
        self,
        name: str,
        items: Iterable[FeedItem | Mapping[str, Any]],
        *,
        at: datetime | None = None,
    ) -> list[FeedItem]:
        """Add `items` on top of live feed `name` (created when missing); return them.

        The first of `items` ends up on top. Items without `published` get the publishing
        time; Last-Modified becomes `at` (default: now, and always later than before).
        """
        if name not in self._feeds:
            self.create_live(name)
        feed = self._feeds[name]
        if feed.live is None:
            raise ValueError(f"{name} is not a live feed; use serve() to replace its body")
        modified = _whole_seconds(at) if at else self._next_modified(feed)
        added = [item if isinstance(item, FeedItem) else FeedItem(**item) for item in items]
        added = [item if item.published is not None else _stamped(item, modified) for item in added]
        feed.live[:0] = added
        feed.changed(modified)
        return added

    def live_items(self, name: str) -> list[FeedItem]:
        """Return the items live feed `name` shows now, newest first."""
        feed = self._feeds[name]
        if feed.live is None:
            raise ValueError(f"{name} is not a live feed")
        return feed.live[: feed.keep]

    def touch(self, name: str, *, at: datetime | None = None) -> None:
        """Move Last-Modified forward without changing the bytes (the ETag stays)."""
        feed = self._feeds[name]
        feed.modified = _whole_seconds(at) if at else self._next_modified(feed)

    def set_validators(self, name: str, *, etag: bool = True, last_modified: bool = True) -> None:
        """Choose whether feed `name` is served with ETag and Last-Modified."""
        feed = self._feeds[name]
        feed.etag_enabled = etag
        feed.last_modified_enabled = last_modified

    def remove(self, name: str) -> None:
        """Stop serving feed `name` (it answers 404)."""
        self._feeds.pop(name, None)

    def redirect(
        self, from_path: str, to_path: str, *, status: int = 301, absolute: bool = True
    ) -> None:
        """Answer `from_path` (a path or feed name) with a redirect to `to_path`.

        `to_path` is a path, a feed name or a full URL; with ``absolute=False`` Location
        carries the bare path, as some servers send it. Two redirects may form a loop.
        """
        if status not in (301, 302, 303, 307, 308):
            raise ValueError(f"{status} is not a redirect status")
        self._redirects[feed_path(from_path)] = (to_path, status, absolute)

    def remove_redirect(self, from_path: str) -> None:
        """Stop redirecting `from_path`."""
        self._redirects.pop(feed_path(from_path), None)

    def _next_modified(self, feed: _Feed | None) -> datetime:
        # Last-Modified has whole seconds: a change within the same second must still look
        # newer, or a reader polling with If-Modified-Since alone would miss it.
        now = _whole_seconds(self.now())
        if feed is not None and now <= feed.modified:
            return feed.modified + timedelta(seconds=1)
        return now

    # ------------------------------------------------------------------ request log

    @property
    def requests(self) -> list[FeedRequest]:
        """Return every request so far, oldest first."""
        return [FeedRequest.from_call(call) for call in self.calls]

    def requests_to(self, name_or_path: str) -> list[FeedRequest]:
        """Return the requests of one feed name or path, oldest first."""
        path = feed_path(name_or_path)
        return [request for request in self.requests if request.path == path]

    # ------------------------------------------------------------------ serving

    def add_routes(self, app: web.Application) -> None:
        """Answer every path: feeds, redirects, and 404 for the rest."""
        app.router.add_route("*", "/{tail:.*}", self._handle)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        params = {
            "http_method": request.method,
            "query": request.query_string,
            "if_none_match": request.headers.get(hdrs.IF_NONE_MATCH),
            "if_modified_since": request.headers.get(hdrs.IF_MODIFIED_SINCE),
            "user_agent": request.headers.get(hdrs.USER_AGENT),
        }
        built: list[web.Response] = []

        async def apply() -> Reply:
            response = self._respond(request)
            built.append(response)
            body = response.body if isinstance(response.body, bytes) else b""
            sent = 0 if request.method == "HEAD" or response.status == 304 else len(body)
            summary = {"bytes": sent, "etag": response.headers.get(hdrs.ETAG)}
            if hdrs.LOCATION in response.headers:
                summary["location"] = response.headers[hdrs.LOCATION]
            return Reply(response.status, summary)

        answer = await self.run_call(request, request.path, params, apply)
        # run_call answers JSON or text; a feed is raw bytes with its own headers, so the
        # response built by apply() replaces the summary run_call made from the Reply.
        return built[0] if built else answer

    def _respond(self, request: web.Request) -> web.Response:
        if request.method not in (hdrs.METH_GET, hdrs.METH_HEAD):
            return web.Response(
                status=405,
                text=_page(405),
                content_type="text/html",
                headers={hdrs.ALLOW: "GET, HEAD"},
            )
        redirect = self._redirects.get(request.path)
        if redirect is not None:
            to_path, status, absolute = redirect
            location = to_path
            if not to_path.startswith(("http://", "https://")):
                location = (self.root_url if absolute else "") + feed_path(to_path)
            return web.Response(
                status=status,
                text=_page(status),
                content_type="text/html",
                headers={hdrs.LOCATION: location},
            )
        name = request.path.removeprefix(FEEDS_PREFIX)
        feed = self._feeds.get(name) if request.path.startswith(FEEDS_PREFIX) else None
        if feed is None:
            return web.Response(status=404, text=_page(404), content_type="text/html")
        body = feed.body()
        headers: dict[str, str] = {}
        if feed.etag_enabled:
            headers[hdrs.ETAG] = feed.etag()
        if feed.last_modified_enabled:
            headers[hdrs.LAST_MODIFIED] = format_datetime(feed.modified, usegmt=True)
        if _not_modified(request, feed):
            return web.Response(status=304, headers=headers)
        if feed.content_type is None:
            return _UntypedResponse(body=body, headers=headers)
        headers[hdrs.CONTENT_TYPE] = feed.content_type
        return web.Response(body=body, headers=headers)

    def fault_reply(self, method: str, fault: Fault) -> Reply:
        """Answer an injected error with an nginx-style page (429 and 503 carry Retry-After)."""
        headers: dict[str, str] = {hdrs.CONTENT_TYPE: "text/html"}
        if fault.status in (429, 503) and self.retry_after_dates:
            until = _whole_seconds(self.now() + timedelta(seconds=fault.retry_after))
            headers[hdrs.RETRY_AFTER] = format_datetime(until, usegmt=True)
        elif fault.status in (429, 503):
            headers[hdrs.RETRY_AFTER] = str(fault.retry_after)
        return Reply(fault.status, fault.error or _page(fault.status), headers)


def _stamped(item: FeedItem, at: datetime) -> FeedItem:
    return FeedItem(item.title, item.guid, item.link, item.description, at, item.author)


def _not_modified(request: web.Request, feed: _Feed) -> bool:
    """Evaluate If-None-Match, else If-Modified-Since, as RFC 9110 §13.2.2 orders them."""
    if_none_match = request.headers.get(hdrs.IF_NONE_MATCH)
    if if_none_match is not None:
        tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        return "*" in tags or (feed.etag_enabled and feed.etag() in tags)
    if_modified_since = request.headers.get(hdrs.IF_MODIFIED_SINCE)
    if if_modified_since is None or not feed.last_modified_enabled:
        return False
    try:
        since = parsedate_to_datetime(if_modified_since)
    except (TypeError, ValueError):
        return False  # an invalid date is ignored
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    return feed.modified <= since
