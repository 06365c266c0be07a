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
"""

from __future__ import annotations

import asyncio
import calendar
import hashlib
import io
import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urldefrag, urljoin

import aiohttp
import feedparser
from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from socialcare.adapters.collectors.html_text import plain_text
from socialcare.bot.model import Author, RawMention
from socialcare.bot.ports import Clock
from socialcare.bot.sources import Polled, SourceUnavailable
from socialcare.bot.team import Source

log = logging.getLogger(__name__)

MAX_FEED = 10 * 1024 * 1024
TIMEOUT = aiohttp.ClientTimeout(total=60, sock_connect=10, sock_read=30)
# How many item ids the cursor remembers: more than any feed carries at once.
SEEN = 2000
USER_AGENT = "socialcare feed reader (+https://github.com/socialcare)"


class Options(BaseModel):
    """A feed source's options."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: HttpUrl
    # On the first poll, items older than this are history, not mentions to answer.
    backfill_hours: int = Field(default=24, ge=0)


class FeedCollector:
    """Polls one feed."""

    def __init__(self, session: aiohttp.ClientSession, options: Options, *,
                 clock: Clock) -> None:
        self._session = session
        self._options = options
        self._clock = clock

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
            return Polled([], dict(cursor), note="not modified")
        body, response_headers, final_url, truncated = fetched
        parsed = await asyncio.to_thread(_parse, body, response_headers, final_url)
        entries = parsed.get("entries") or []
        problem = _problem(parsed, truncated)
        if not entries and problem is not None:
            raise SourceUnavailable(f"feed unreadable: {problem}")
        now = self._clock.now()
        first = "seen" not in cursor
        seen = list(cursor.get("seen") or [])
        known = set(seen)
        oldest = now - timedelta(hours=self._options.backfill_hours)
        mentions = []
        for entry in entries:
            mention = _mention(source, entry, base=final_url, now=now)
            if mention is None or mention.external_id in known:
                continue
            known.add(mention.external_id)
            seen.append(mention.external_id)
            if first and mention.published_at < oldest:
                continue
            mentions.append(mention)
        if problem is not None:
            log.warning("feed %s: %s; read %d item(s) of it", source.name, problem, len(entries))
        next_cursor: dict[str, Any] = {"seen": seen[-SEEN:]}
        if not truncated:
            next_cursor |= {"etag": response_headers.get("etag"),
                            "modified": response_headers.get("last-modified")}
        return Polled(mentions, next_cursor, note=problem)

    async def _fetch(
        self, url: str, headers: Mapping[str, str]
    ) -> tuple[bytes, dict[str, str], str, bool] | None:
        """GET the feed: None if not modified, else (body, headers, final url, truncated)."""
        try:
            async with self._session.get(url, headers=headers, timeout=TIMEOUT,
                                         max_redirects=5) as response:
                if response.status == 304:
                    return None
                if response.status == 429 or response.status >= 500:
                    wait = response.headers.get("Retry-After")
                    raise SourceUnavailable(
                        f"the feed answered HTTP {response.status}",
                        retry_after=float(wait) if wait and wait.isdigit() else None)
                if response.status >= 400:
                    raise SourceUnavailable(f"the feed answered HTTP {response.status}")
                body = await response.content.read(MAX_FEED + 1)
                response_headers = {k.lower(): v for k, v in response.headers.items()}
                final_url = str(response.url)
        except TimeoutError:
            raise SourceUnavailable(f"the feed gave no answer within "
                                    f"{TIMEOUT.total:.0f} s") from None
        except aiohttp.TooManyRedirects:
            raise SourceUnavailable("the feed redirects too many times") from None
        except aiohttp.ClientError as error:
            raise SourceUnavailable(f"the feed is unreachable: {type(error).__name__}") \
                from None
        truncated = len(body) > MAX_FEED
        return body[:MAX_FEED], response_headers, final_url, truncated


def _parse(body: bytes, headers: dict[str, str], url: str) -> Any:
    # A file object, not bytes: feedparser would take a short body for a file name.
    return feedparser.parse(io.BytesIO(body), response_headers={
        "content-type": headers.get("content-type", "application/xml"),
        "content-location": url,
    })


def _problem(parsed: Any, truncated: bool) -> str | None:
    """Say what is wrong with the feed, if anything."""
    if truncated:
        return f"the feed is over {MAX_FEED // (1024 * 1024)} MB; read its first part"
    if not parsed.get("bozo"):
        return None
    version = parsed.get("version")
    error = parsed.get("bozo_exception")
    reason = type(error).__name__ if error is not None else "malformed"
    detail = str(error).splitlines()[0][:160] if error is not None else ""
    if not version:
        content_type = parsed.get("headers", {}).get("content-type", "")
        if "html" in content_type:
            return f"not a feed: an HTML page ({content_type})"
        return f"not a feed ({reason}: {detail})" if detail else f"not a feed ({reason})"
    return f"malformed feed ({reason}: {detail})" if detail else f"malformed feed ({reason})"


def _mention(source: Source, entry: Any, *, base: str, now: datetime) -> RawMention | None:
    """Turn a feed item into a mention; None if it has nothing to say."""
    title = plain_text(entry.get("title") or "")
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
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        value = entry.get(key)
        if value:
            try:
                return datetime.fromtimestamp(calendar.timegm(value), UTC)
            except (OverflowError, ValueError, OSError):
                continue
    return now
