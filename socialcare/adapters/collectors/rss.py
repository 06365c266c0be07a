"""RSS and Atom feeds of forums and news portals, read with feedparser over aiohttp.

    [[sources]]
    name = "autoforum"
    kind = "rss"
    platform = "forum"
    tier = "extra"
    poll_seconds = 300
    options = { url = "https://autoforum.example/feed.xml" }

Each poll is a conditional GET (the ETag and Last-Modified of the last answer go in
the cursor), so an unchanged feed costs one 304. The ids of the items already seen
are kept in the cursor too, so a feed that repeats its last fifty items hands the
pipeline only the new ones. Feeds from the wild are broken in every way — bad XML,
wrong encodings, HTML pages, no dates, 10 MB of archive — so the feed is read as far
as feedparser can read it; what cannot be read at all fails the poll with a reason,
and the source's health shows it.

A feed's last problem (over the size limit, malformed, unreadable) is kept in the
cursor with its validators: a `304 Not Modified` repeats it — an unreadable feed fails
again, a partly read one keeps its warning — until the feed's content changes and reads
cleanly. Memory is bounded by the size limit: the body is read (and decompressed, by
aiohttp in bounded steps) no further than the limit, and the parsing, the costliest
part, runs in a worker thread, one feed at a time.
"""

from __future__ import annotations

import asyncio
import calendar
import codecs
import hashlib
import io
import logging
import re
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html.entities import name2codepoint
from typing import Any
from urllib.parse import urldefrag, urljoin

import aiohttp
import feedparser
from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from socialcare.adapters.collectors.dates import read_date
from socialcare.adapters.collectors.html_text import plain_text
from socialcare.adapters.collectors.http import read_body, retry_after_header
from socialcare.bot.model import Author, RawMention
from socialcare.bot.ports import Clock
from socialcare.bot.sources import Polled, SourceUnavailable
from socialcare.bot.team import Source

log = logging.getLogger(__name__)

MAX_FEED = 10 * 1024 * 1024
# Feeds parsed at once, in worker threads: parsing costs several times the feed's size
# in memory, so hostile feeds polled together are parsed one after the other.
_PARSING = threading.BoundedSemaphore(1)
_DECODE_STEP = 256 * 1024
# A feed bigger than two pieces is parsed a piece of whole items at a time (characters).
PIECE = 512 * 1024
_ITEM_START = re.compile(r"<(?:item|entry)[\s>/]", re.IGNORECASE)
_ITEM_END = re.compile(r"</(?:item|entry)\s*>", re.IGNORECASE)
_ROOT_FEED = re.compile(r"<feed[\s>]", re.IGNORECASE)
_ROOT_RDF = re.compile(r"<rdf:RDF[\s>]")
TIMEOUT = aiohttp.ClientTimeout(total=60, sock_connect=10, sock_read=30)
# How many item ids the cursor remembers at least (every id the feed still carries is kept).
SEEN = 2000
USER_AGENT = "socialcare feed reader (+https://github.com/socialcare)"
# What Kazakh and Russian sites wrote before UTF-8, and still send labelled as UTF-8
# or not labelled at all.
LEGACY_ENCODING = "windows-1251"
_BOMS = ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))
_XML_ENCODING = re.compile(rb"^\s*<\?xml[^>]*?encoding=[\"']([A-Za-z0-9._:-]+)[\"']")
# CDATA sections and comments are left as they are; outside them, `&` starts a reference.
_VERBATIM = re.compile(r"(<!\[CDATA\[.*?\]\]>|<!--.*?-->)", re.DOTALL)
_REFERENCE = re.compile(r"&(?:(#[0-9]+|#[xX][0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]*);)?")
_XML_ENTITIES = frozenset({"amp", "lt", "gt", "quot", "apos"})
_DATES = ("published", "updated", "created")
# Where an item's date written in words ("вчера в 14:30") is kept once read.
_TEXT_DATE = "socialcare_text_date"


class Options(BaseModel):
    """A feed source's options."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: HttpUrl
    # On the first poll, items older than this are history, not mentions to answer.
    backfill_hours: int = Field(default=24, ge=0)


class FeedCollector:
    """Polls one feed (feeds take no replies)."""

    can_publish = False

    def __init__(self, session: aiohttp.ClientSession, options: Options, *,
                 clock: Clock, zone: str = "UTC",
                 timeout: aiohttp.ClientTimeout = TIMEOUT) -> None:
        self._session = session
        self._options = options
        self._clock = clock
        self._zone = zone  # of dates the feed writes in words, without an offset
        self._timeout = timeout

    async def poll(self, source: Source, cursor: Mapping[str, Any]) -> Polled:
        """Fetch the feed if it changed and return the items not seen before."""
        url = str(self._options.url)
        headers = {"User-Agent": USER_AGENT, "Accept": "application/rss+xml, "
                   "application/atom+xml, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"}
        if cursor.get("etag"):
            headers["If-None-Match"] = str(cursor["etag"])
        if cursor.get("modified"):
            headers["If-Modified-Since"] = str(cursor["modified"])
        fetched = await self._fetch(url, headers)
        if fetched is None:
            return _unchanged(cursor)
        body, response_headers, final_url, truncated = fetched
        del fetched
        now = self._clock.now()
        # Decoding, parsing and turning items into mentions are CPU work: off the loop.
        read = await asyncio.to_thread(_read, source, body, response_headers, final_url,
                                       truncated, zone=self._zone, now=now)
        del body
        problem = read.problem
        validators = {"etag": response_headers.get("etag"),
                      "modified": response_headers.get("last-modified")}
        if not read.entries and problem is not None:
            # Kept with the validators: unchanged, it fails again without being fetched.
            raise SourceUnavailable(f"feed unreadable: {problem}", cursor={
                **cursor, **validators, "problem": problem, "unreadable": True})
        first = "seen" not in cursor
        remembered = list(cursor.get("seen") or [])
        known = set(remembered)
        carried: dict[str, None] = {}  # the ids in the feed now, in its order
        oldest = now - timedelta(hours=self._options.backfill_hours)
        mentions = []
        for mention in read.mentions:
            if mention.external_id in carried:
                continue
            carried[mention.external_id] = None
            if mention.external_id in known or (first and mention.published_at < oldest):
                continue
            mentions.append(mention)
        if problem is not None:
            log.warning("feed %s: %s; read %d item(s) of it", source.name, problem,
                        read.entries)
        # The ids the feed still carries go last and are all kept, however long the feed:
        # what is forgotten first is what the feed itself has dropped.
        seen = [i for i in remembered if i not in carried] + list(carried)
        # The validators are kept for a feed over the limit too: its first part is all that
        # is ever read of it, so until it changes there is nothing to fetch again.
        # So is the problem: until the feed changes, each 304 repeats it.
        next_cursor: dict[str, Any] = {"seen": seen[-max(SEEN, len(carried)):], **validators,
                                       "problem": problem}
        return Polled(mentions, next_cursor, note=problem)

    async def _fetch(
        self, url: str, headers: Mapping[str, str]
    ) -> tuple[bytes, dict[str, str], str, bool] | None:
        """GET the feed: None if not modified, else (body, headers, final url, truncated)."""
        fetched = await fetch(self._session, url, headers, clock=self._clock,
                              client_timeout=self._timeout)
        if fetched is None:
            return None
        return fetched.body, fetched.headers, fetched.url, fetched.truncated


@dataclass(frozen=True)
class Fetched:
    """A document fetched over HTTP: its first `limit` bytes, its headers (lower-case),
    the URL it ended at, and whether it was longer than the limit."""

    body: bytes
    headers: dict[str, str]
    url: str
    truncated: bool


async def fetch(session: aiohttp.ClientSession, url: str, headers: Mapping[str, str], *,
                clock: Clock, client_timeout: aiohttp.ClientTimeout = TIMEOUT,
                limit: int = MAX_FEED, what: str = "the feed") -> Fetched | None:
    """GET a feed or a page (conditionally, with the headers given): None if not modified.

    Feeds and HTML pages share this one fetcher — its size cap, redirect limit and its
    reasons for failing (`what` names the document in them: "the feed", "the page")."""
    try:
        async with session.get(url, headers=headers, timeout=client_timeout,
                               max_redirects=5) as response:
            if response.status == 304:
                return None
            if response.status == 429 or response.status >= 500:
                wait = response.headers.get("Retry-After")
                raise SourceUnavailable(
                    f"{what} answered HTTP {response.status}",
                    retry_after=None if wait is None else retry_after_header(
                        wait, now=clock.now()))
            if response.status >= 400:
                raise SourceUnavailable(f"{what} answered HTTP {response.status}")
            body = await read_body(response, limit + 1)
            response_headers = {k.lower(): v for k, v in response.headers.items()}
            final_url = str(response.url)
    except TimeoutError:
        seconds = client_timeout.total or client_timeout.sock_read
        raise SourceUnavailable(f"{what} gave no answer in time" + (
            f" ({seconds:g} s)" if seconds else "")) from None
    except aiohttp.TooManyRedirects:
        raise SourceUnavailable(f"{what} redirects too many times") from None
    except aiohttp.ClientError as error:
        raise SourceUnavailable(f"{what} is unreachable: {type(error).__name__}") from None
    truncated = len(body) > limit
    return Fetched(body[:limit] if truncated else body, response_headers, final_url, truncated)


def _unchanged(cursor: Mapping[str, Any]) -> Polled:
    """The answer to a 304: the feed is as it was, and so is its last problem."""
    problem = cursor.get("problem")
    if cursor.get("unreadable"):
        raise SourceUnavailable(f"feed unreadable: {problem} (unchanged since)",
                                cursor=dict(cursor))
    return Polled([], dict(cursor),
                  note=f"{problem} (not modified since)" if problem else "not modified")


@dataclass(frozen=True)
class Read:
    """What a feed's body gave: every item's mention in the feed's order, how many
    items it had, and what is wrong with it (None if nothing)."""

    mentions: list[RawMention]
    entries: int
    problem: str | None


def _read(source: Source, body: bytes, headers: dict[str, str], url: str, truncated: bool,
          *, zone: str, now: datetime) -> Read:
    """Decode, parse and read a feed's items (in a worker thread, one feed at a time).

    A big feed is parsed a piece of items at a time (`_pieces`), each piece's items
    turned into mentions before the next is parsed: the parser's memory is that of a
    piece, not of the whole feed."""
    with _PARSING:
        text = _decode(body, headers.get("content-type", ""))
        del body
        mentions: list[RawMention] = []
        entries = 0
        first: Any = None
        broken: Any = None
        for piece in _pieces(text):
            parsed = _parse(piece, headers, url, zone=zone, now=now)
            del piece
            found = parsed.get("entries") or []
            entries += len(found)
            mentions += [m for m in (_mention(source, entry, base=url, now=now)
                                     for entry in found) if m is not None]
            first = parsed if first is None else first
            if broken is None and parsed.get("bozo"):
                broken = parsed
            del parsed, found
        assert first is not None
        summary = {"version": first.get("version"), "headers": first.get("headers", {}),
                   "bozo": broken is not None,
                   "bozo_exception": None if broken is None else broken.get("bozo_exception")}
        problem = _problem(summary, text, truncated, entries)
        return Read(mentions, entries, problem)


def _pieces(text: str) -> Iterator[str]:
    """Yield the feed whole if it is small, else in pieces of whole items of about
    `PIECE` characters, each a feed of its own: the feed's head (everything before
    its first item), the items, and the closing tags."""
    if len(text) <= 2 * PIECE or (first := _ITEM_START.search(text)) is None:
        yield text
        return
    head, start = text[:first.start()], first.start()
    closing = _closing(head)
    for end in _ITEM_END.finditer(text, start):
        if end.end() - start >= PIECE:
            yield head + text[start:end.end()] + closing
            start = end.end()
    yield head + text[start:]  # the rest, with the feed's own ending (or its cut)


def _closing(head: str) -> str:
    """The tags that close a feed's head: those of its root (and channel)."""
    if _ROOT_FEED.search(head):
        return "</feed>"
    if _ROOT_RDF.search(head):
        return "</rdf:RDF>"
    return "</channel></rss>"


def _decode(body: bytes, content_type: str) -> str:
    """Return the feed's text: in its declared encoding, else UTF-8 (a few broken bytes
    replaced), else the legacy encoding the bytes were most likely written in."""
    declared = next((name for bom, name in _BOMS if body.startswith(bom)), None)
    charset = re.search(r"charset\s*=\s*[\"']?([A-Za-z0-9._:-]+)", content_type or "")
    xml = _XML_ENCODING.match(body[:512])
    declared = declared or (charset.group(1) if charset else None) \
        or (xml.group(1).decode("ascii") if xml else None)
    for encoding in dict.fromkeys(filter(None, (declared, "utf-8"))):
        try:
            return "".join(_decoded(body, encoding)).removeprefix("\ufeff")
        except (LookupError, UnicodeDecodeError):
            continue
    parts = _decoded(body, "utf-8", errors="replace")
    broken = sum(part.count("\ufffd") for part in parts)
    others = sum(len(part) - len(part.encode("ascii", "ignore")) for part in parts) - broken
    # UTF-8 with a few bad bytes (a feed cut mid-character, a pasted fragment) still has
    # far more good multi-byte characters than bad ones; legacy bytes are nearly all bad.
    if others > broken:
        return "".join(parts).removeprefix("\ufeff")
    return "".join(_decoded(body, LEGACY_ENCODING, errors="replace"))


def _decoded(body: bytes, encoding: str, errors: str = "strict") -> list[str]:
    """Decode `body` a step at a time: one call over 10 MB would hold the interpreter
    (and the event loop waiting for it) for tens of milliseconds."""
    decoder = codecs.getincrementaldecoder(encoding)(errors)
    view = memoryview(body)
    parts = [decoder.decode(view[i:i + _DECODE_STEP]) for i in range(0, len(body), _DECODE_STEP)]
    parts.append(decoder.decode(b"", final=True))
    return parts


def _mend_references(text: str) -> str:
    """Escape bare ampersands and spell HTML entities as characters, outside CDATA, so
    that a feed broken only by those is read by the XML parser rather than guessed at."""

    def mend(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return "&amp;"
        if name.startswith("#") or name in _XML_ENTITIES or name not in name2codepoint:
            return match.group(0)
        return f"&#{name2codepoint[name]};"

    parts = _VERBATIM.split(text)
    parts[::2] = [_REFERENCE.sub(mend, part) if "&" in part else part for part in parts[::2]]
    return "".join(parts)


def _parse(text: str, headers: dict[str, str], url: str, *, zone: str, now: datetime) -> Any:
    """Parse the feed, and read the dates feedparser could not (written in words)."""
    media_type = headers.get("content-type", "").split(";")[0].strip() or "application/xml"
    # A file object, not bytes: feedparser would take a short body for a file name.
    parsed = feedparser.parse(io.BytesIO(_mend_references(text).encode()), response_headers={
        "content-type": f"{media_type}; charset=utf-8",
        "content-location": url,
    })
    for entry in parsed.get("entries") or []:
        # dict.get: feedparser's own get() maps "updated" to "published", with a warning.
        if any(dict.get(entry, f"{key}_parsed") for key in _DATES):
            continue
        for key in _DATES:
            written = dict.get(entry, key)
            when = read_date(written, zone=zone, now=now) if isinstance(written, str) else None
            if when is not None:
                entry[_TEXT_DATE] = when
                break
    return parsed


def _problem(parsed: Any, text: str, truncated: bool, entries: int = 0) -> str | None:
    """Say what is wrong with the feed, if anything."""
    if truncated:
        # The items past the limit are never read (an unchanged feed is not fetched
        # again): the note says so rather than lose them silently.
        return (f"the feed is over {MAX_FEED // (1024 * 1024)} MB: read its first "
                f"{entries} item(s); the items after them are not read")
    version = parsed.get("version")
    if version and not parsed.get("bozo"):
        return None
    error = parsed.get("bozo_exception")
    reason = type(error).__name__ if error is not None else "malformed"
    detail = str(error).splitlines()[0][:160] if error is not None else ""
    if not version:
        content_type = parsed.get("headers", {}).get("content-type", "")
        start = text.lstrip()[:100].lower()
        if not start:
            return "not a feed: the answer is empty"
        if "html" in content_type or start.startswith(("<!doctype html", "<html")):
            return "not a feed: an HTML page"
        if start.startswith(("{", "[")):
            return "not a feed: JSON"
        return f"not a feed ({reason}: {detail})" if detail else f"not a feed ({reason})"
    return f"malformed feed ({reason}: {detail})" if detail else f"malformed feed ({reason})"


def _mention(source: Source, entry: Any, *, base: str, now: datetime) -> RawMention | None:
    """Turn a feed item into a mention; None if it has nothing to say."""
    title = " ".join(plain_text(entry.get("title") or "").split())  # a title is one line
    summary = _body(entry)
    text = title if summary in ("", title) else f"{title}\n\n{summary}".strip()
    if not text.strip():
        return None
    link = entry.get("link")
    url = urljoin(base, link) if link else None
    external_id = (entry.get("id") or url
                   or "sha1:" + hashlib.sha1(text.encode()).hexdigest())[:256]
    author_detail = entry.get("author_detail") or {}
    author_url = author_detail.get("href")
    return RawMention(
        source=source.name,
        external_id=external_id,
        text=text,
        published_at=_published(entry, now),
        url=url,
        author=Author(name=plain_text(entry.get("author") or "") or None,
                      url=urljoin(base, author_url) if author_url else None),
        # Posts of one forum topic share the topic's address; each news item is its own.
        thread_id=urldefrag(url).url if url else None,
    )


def _body(entry: Any) -> str:
    content = entry.get("content") or []
    html = content[0].get("value") if content else entry.get("summary")
    return plain_text(html or "")


def _published(entry: Any, now: datetime) -> datetime:
    """The item's own time; an item without one is dated when it was first seen."""
    for key in _DATES:
        # dict.get, as in _parse: feedparser's get() would warn of its fallback.
        value = dict.get(entry, f"{key}_parsed")
        if value:
            try:
                return datetime.fromtimestamp(calendar.timegm(value), UTC)
            except (OverflowError, ValueError, OSError):
                continue
    written = entry.get(_TEXT_DATE)
    return written if isinstance(written, datetime) else now
