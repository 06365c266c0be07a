"""HTML pages read by CSS selectors: forum sections and comment threads without a feed.

    [[sources]]
    name = "kolesa-forum"
    kind = "html"
    platform = "forum"
    tier = "extra"
    poll_seconds = 600
    [sources.options]
    url = "https://forum.example.kz/search.php?search_id=newposts"
    item = "div.post"                       # one post or comment
    text = "div.content"
    link = "h3 a"                           # its address (and its id)
    author = ".author a"
    date = ".author time"                   # "вчера в 14:30", a datetime attribute …
    thread = "h3 a"                         # posts of one topic are one case
    next = "li.next a"                      # follow "next" …
    pages = 3                               # … up to 3 pages

Pages are fetched with the feeds' fetcher (`rss.fetch`: conditional GET, a size cap,
the same reasons for failing), after `robots.txt` (read with protego, per host, kept an
hour) allows it, and no sooner after the last request to the same host than
`delay_seconds` (or the site's Crawl-delay, if longer). Parsing (selectolax) and reading
dates run in a worker thread. An item is known by its link (or, without one, by its
text, author and date), so each is handed over once however often it is seen; a
selector that matches nothing fails the poll naming it, and `/sources` shows it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar, Self
from urllib.parse import urldefrag, urljoin, urlsplit

import aiohttp
from protego import Protego
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, field_validator, model_validator
from selectolax.lexbor import LexborHTMLParser, LexborNode, SelectolaxError

from socialcare.adapters.collectors.dates import read_date
from socialcare.adapters.collectors.rss import MAX_FEED, USER_AGENT, fetch
from socialcare.bot.model import Author, RawMention
from socialcare.bot.ports import Clock
from socialcare.bot.sources import Polled, SourceUnavailable
from socialcare.bot.team import Source

ROBOTS_AGENT = "socialcare"
ROBOTS_KEPT = timedelta(hours=1)
MAX_ROBOTS = 512 * 1024
SEEN = 3000
PAGES_KEPT = 50  # validators remembered, per page address
_CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9._:-]+)")


class Options(BaseModel):
    """An html source's options: where the pages are and how to read them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: HttpUrl | None = None
    urls: tuple[HttpUrl, ...] = ()
    item: str = Field(min_length=1)
    text: str = Field(min_length=1)
    link: str | None = None
    author: str | None = None
    date: str | None = None
    thread: str | None = None
    next: str | None = None
    pages: int = Field(default=1, ge=1, le=20)
    delay_seconds: float = Field(default=2.0, ge=0, le=60)
    backfill_hours: int = Field(default=24, ge=0)

    @field_validator("item", "text", "link", "author", "date", "thread", "next")
    @classmethod
    def _selector(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                LexborHTMLParser("<html></html>").css(value)
            except SelectolaxError:
                raise ValueError(f"not a CSS selector: {value!r}") from None
        return value

    @model_validator(mode="after")
    def _addresses(self) -> Self:
        if (self.url is None) == (not self.urls):
            raise ValueError("give url or urls (one of them)")
        return self

    @property
    def addresses(self) -> list[str]:
        """Every first page to read."""
        return [str(self.url)] if self.url is not None else [str(u) for u in self.urls]


@dataclass(frozen=True)
class Page:
    """What one page held: its items (as mentions), the next page's address, a problem."""

    mentions: list[RawMention]
    next_url: str | None
    note: str | None = None


class HtmlCollector:
    """Polls one source's pages (html pages take no replies)."""

    can_publish = False
    # Per host, across every html source of the process: when it may next be asked, the
    # Crawl-delay its robots.txt asks for, and one request at a time.
    _next_request: ClassVar[dict[str, float]] = {}
    _crawl_delay: ClassVar[dict[str, float]] = {}
    _host_locks: ClassVar[dict[str, asyncio.Lock]] = {}

    def __init__(self, session: aiohttp.ClientSession, options: Options, *, clock: Clock,
                 zone: str = "UTC") -> None:
        self._session = session
        self._options = options
        self._clock = clock
        self._zone = zone
        self._robots: dict[str, tuple[Protego | None, datetime]] = {}

    async def poll(self, source: Source, cursor: Mapping[str, Any]) -> Polled:
        """Read the pages and return the items not handed over before."""
        return await self._read(source, cursor, history=False)

    async def preview(self, source: Source) -> Polled:
        """Read the pages once and return every item on them (for `try-source`)."""
        return await self._read(source, {}, history=True)

    async def _read(self, source: Source, cursor: Mapping[str, Any], *,
                    history: bool) -> Polled:
        now = self._clock.now()
        first = "seen" not in cursor
        remembered = list(cursor.get("seen") or [])
        known = set(remembered)
        validators = dict(cursor.get("pages") or {})
        oldest = now - timedelta(hours=self._options.backfill_hours)
        found: list[RawMention] = []
        notes: list[str] = []
        failures: list[SourceUnavailable] = []
        read_any = False
        for start in self._options.addresses:
            address: str | None = start
            try:
                for number in range(self._options.pages):
                    if address is None:
                        break
                    if not await self._allowed(address):
                        notes.append(f"robots.txt disallows {address}")
                        break
                    page = await self._page(source, address,
                                            validators if number == 0 else {}, now)
                    read_any = True
                    if page is None:  # not modified since the last poll
                        break
                    if page.note:
                        notes.append(page.note)
                    for mention in page.mentions:
                        if mention.external_id in known:
                            continue
                        known.add(mention.external_id)
                        remembered.append(mention.external_id)
                        if history or not (first and mention.published_at < oldest):
                            found.append(mention)
                    address = page.next_url
            except SourceUnavailable as failure:
                # One page failing leaves the others: the poll fails only if none was read.
                failures.append(failure)
                notes.append(str(failure))
        if not read_any:
            if failures:
                raise failures[0]
            raise SourceUnavailable("; ".join(notes))
        kept = dict(list(validators.items())[-PAGES_KEPT:])
        # Oldest first: a topic's first post opens its case, its replies follow it up.
        found.sort(key=lambda mention: mention.published_at)
        return Polled(found, {"seen": remembered[-SEEN:], "pages": kept},
                      note="; ".join(notes) or None)

    async def _page(self, source: Source, address: str, validators: dict[str, Any],
                    now: datetime) -> Page | None:
        saved = validators.get(address) or {}
        headers = {"User-Agent": USER_AGENT,
                   "Accept": "text/html, application/xhtml+xml;q=0.9, */*;q=0.5"}
        if saved.get("etag"):
            headers["If-None-Match"] = str(saved["etag"])
        if saved.get("modified"):
            headers["If-Modified-Since"] = str(saved["modified"])
        async with self._turn(address):
            fetched = await fetch(self._session, address, headers, clock=self._clock,
                                  what="the page")
        if fetched is None:
            return None
        page = await asyncio.to_thread(_extract, fetched.body, fetched.headers, fetched.url,
                                       self._options, source=source.name, zone=self._zone,
                                       now=now)
        validators.pop(address, None)
        validators[address] = {"etag": fetched.headers.get("etag"),
                               "modified": fetched.headers.get("last-modified")}
        if fetched.truncated:
            over = f"{address} is over {MAX_FEED // (1024 * 1024)} MB; read its first part"
            return Page(page.mentions, page.next_url, note=over)
        return page

    async def _allowed(self, address: str) -> bool:
        """Ask the host's robots.txt (read once an hour) whether we may fetch `address`."""
        parts = urlsplit(address)
        host = f"{parts.scheme}://{parts.netloc}"
        now = self._clock.now()
        cached = self._robots.get(host)
        if cached is None or now - cached[1] > ROBOTS_KEPT:
            cached = (await self._read_robots(host), now)
            self._robots[host] = cached
        rules = cached[0]
        return rules is None or bool(rules.can_fetch(address, ROBOTS_AGENT))

    async def _read_robots(self, host: str) -> Protego | None:
        """The host's rules; None (allow all) when it has none (RFC 9309: a 4xx)."""
        try:
            async with self._turn(host):
                fetched = await fetch(self._session, host + "/robots.txt",
                                      {"User-Agent": USER_AGENT}, clock=self._clock,
                                      limit=MAX_ROBOTS, what="robots.txt")
        except SourceUnavailable as failure:
            if re.search(r"HTTP 4\d\d", str(failure)) and "429" not in str(failure):
                return None
            # Unreachable robots.txt: RFC 9309 says to take everything as disallowed.
            raise SourceUnavailable(f"{failure}; not fetching pages until it can be read",
                                    retry_after=failure.retry_after) from None
        if fetched is None:
            return None
        rules = Protego.parse(fetched.body.decode("utf-8", errors="replace"))
        delay = rules.crawl_delay(ROBOTS_AGENT)
        if delay:
            HtmlCollector._crawl_delay[urlsplit(host).netloc] = float(delay)
        return rules

    @contextlib.asynccontextmanager
    async def _turn(self, address: str) -> AsyncIterator[None]:
        """Ask a host one request at a time, `delay_seconds` (or its Crawl-delay) after the
        last answer from it."""
        host = urlsplit(address).netloc
        lock = HtmlCollector._host_locks.setdefault(host, asyncio.Lock())
        async with lock:
            wait = HtmlCollector._next_request.get(host, 0.0) - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                yield
            finally:
                delay = max(self._options.delay_seconds,
                            HtmlCollector._crawl_delay.get(host, 0.0))
                HtmlCollector._next_request[host] = time.monotonic() + delay


class SelectorMissed(SourceUnavailable):
    """A selector matched nothing on a page: the site changed, or the selector is wrong."""


def _extract(body: bytes, headers: Mapping[str, str], url: str, options: Options, *,
             source: str, zone: str, now: datetime) -> Page:
    """Read a page's items with the source's selectors (CPU-bound: run in a thread)."""
    charset = _CHARSET.search(headers.get("content-type", ""))
    document: str | bytes = body
    if charset:
        try:
            document = body.decode(charset.group(1), errors="replace")
        except LookupError:
            document = body
    tree = LexborHTMLParser(document, encoding=isinstance(document, bytes))
    items = tree.css(options.item)
    if not items:
        raise SelectorMissed(f"the selector item = {options.item!r} matched nothing on {url}")
    mentions, texts = [], 0
    for node in items:
        text_node = node.css_first(options.text)
        text = _text(text_node)
        texts += text_node is not None
        if not text:
            continue
        link = _href(node, options.link, url)
        author = _text(node.css_first(options.author)) if options.author else ""
        written = _date_text(node.css_first(options.date)) if options.date else ""
        published = read_date(written, zone=zone, now=now) if written else None
        thread = _thread(node, tree, options.thread, url)
        key = link or "sha1:" + hashlib.sha1(
            f"{text}\x00{author}\x00{written}".encode()).hexdigest()
        mentions.append(RawMention(
            source=source, external_id=key[:256], text=text, published_at=published or now,
            url=link, author=Author(name=author or None), thread_id=thread))
    if not texts:
        raise SelectorMissed(f"the selector text = {options.text!r} matched nothing in the "
                             f"{len(items)} item(s) on {url}")
    next_url = _href(tree.root, options.next, url) if options.next and tree.root else None
    return Page(mentions, next_url if next_url != url else None)


def _text(node: LexborNode | None) -> str:
    if node is None:
        return ""
    return " ".join((node.text(separator=" ", strip=True) or "").split())


def _href(node: LexborNode, selector: str | None, base: str) -> str | None:
    if selector is None:
        return None
    found = node.css_first(selector)
    href = (found.attributes.get("href") or "").strip() if found is not None else ""
    return urljoin(base, href) if href else None


def _date_text(node: LexborNode | None) -> str:
    if node is None:
        return ""
    for attribute in ("datetime", "title", "data-time"):
        value = (node.attributes.get(attribute) or "").strip()
        if value:
            return value
    return _text(node)


def _thread(node: LexborNode, tree: LexborHTMLParser, selector: str | None,
            base: str) -> str | None:
    """The thread an item belongs to: the selector's link (or text) in the item, else on
    the page (a topic page's title); None = each item its own case."""
    if selector is None:
        return None
    found = node.css_first(selector) or tree.css_first(selector)
    if found is None:
        return None
    href = (found.attributes.get("href") or "").strip()
    return urldefrag(urljoin(base, href)).url if href else _text(found) or None
