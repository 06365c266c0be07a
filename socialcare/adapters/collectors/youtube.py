"""YouTube Data API v3: comments on the brands' channels and on new videos naming them.

    [[sources]]
    name = "youtube"
    kind = "youtube"
    platform = "youtube"
    tier = "main"
    poll_seconds = 300
    [sources.options]
    key_env = "YOUTUBE_API_KEY"          # an API key: reads public comments and search
    oauth_token_env = "YOUTUBE_TOKEN"    # an OAuth access token of the brand's channel
    channels = ["UCxxxxxxxxxxxxxxxxxxxxxx"]
    # query = "acme"                     # default: the brand keywords, |-ed
    daily_quota = 10000                  # units a day, reset at midnight Pacific time
    search_cost = 100                    # what one search.list costs (see your console)

Every call costs quota: a page of comment threads 1 unit, a page of a thread's replies 1,
a search 100. A thread answers only its first few replies (`totalReplyCount` says how
many there are); the rest of a busy thread is paged through `comments.list`, but only
when its count has grown past what the cursor remembers for it. The day's
quota is let out evenly over the day (by any hour, no more than that hour's share
plus an hour's head start), so a busy morning cannot spend the evening's polls;
when a call does not fit, the poll stops there, says when it goes on, and the
cursor keeps its place. Search — by far the dearest — runs at most every
`search_minutes`, reading up to three pages of 50 videos; a busier interval is read on
in the next rounds, newest first, from where the last one stopped. The videos it finds
are watched for comments for `watch_days`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from socialcare.adapters.collectors.html_text import plain_text
from socialcare.adapters.collectors.http import ApiRefused, request_json
from socialcare.bot.model import Author, Mention, RawMention
from socialcare.bot.ports import Clock, Published, PublishFailed
from socialcare.bot.sources import Polled, SourceUnavailable
from socialcare.bot.team import Source

log = logging.getLogger(__name__)

PACIFIC = ZoneInfo("America/Los_Angeles")
THREADS_COST = 1
REPLIES_COST = 1
MAX_PAGES = 5
SEARCH_PAGES = 3  # of 50 videos, per search round: at the classic 100 units a page
# Search finds a video some time after it is published: each search looks back this far
# before the newest video seen (the videos already found are not news again).
INDEXING_LAG = timedelta(hours=1)
SEEN = 2000
BUSY_THREADS = 500  # reply counts remembered per place, for threads with unanswered replies
DAY = timedelta(days=1)


class Options(BaseModel):
    """A YouTube source's options."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    api_url: HttpUrl = HttpUrl("https://www.googleapis.com/youtube/v3")
    key_env: str = Field(min_length=1)
    oauth_token_env: str | None = None
    channels: tuple[str, ...] = ()
    query: str | None = None
    search: bool = True
    search_minutes: int = Field(default=60, ge=1)
    watch_days: int = Field(default=7, ge=1)
    daily_quota: int = Field(default=10_000, ge=1)
    search_cost: int = Field(default=100, ge=1)
    backfill_hours: int = Field(default=24, ge=0)


@dataclass
class QuotaBudget:
    """The day's quota, let out evenly over the Pacific-time day."""

    daily: int
    day: str
    used: int

    @classmethod
    def load(cls, daily: int, cursor: Mapping[str, Any], now: datetime) -> QuotaBudget:
        """Today's budget from the cursor (a new day starts from nothing used)."""
        day = now.astimezone(PACIFIC).date().isoformat()
        saved = cursor.get("quota") or {}
        used = int(saved.get("used") or 0) if saved.get("day") == day else 0
        return cls(daily=daily, day=day, used=used)

    def allowance(self, now: datetime) -> int:
        """How many units may have been spent by now: the share of the day gone so far,
        plus an hour's head start, never more than the day's quota."""
        local = now.astimezone(PACIFIC)
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        gone = (local - midnight + timedelta(hours=1)) / DAY
        return min(self.daily, int(self.daily * gone))

    def take(self, cost: int, now: datetime) -> bool:
        """Spend `cost` units if the allowance has room; tell whether it did."""
        if self.used + cost > self.allowance(now):
            return False
        self.used += cost
        return True

    def next_room(self, cost: int, now: datetime) -> datetime:
        """When `cost` more units will fit."""
        local = now.astimezone(PACIFIC)
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        if self.used + cost > self.daily:
            return (midnight + DAY).astimezone(UTC)
        share = (self.used + cost) / self.daily
        return (midnight + share * DAY - timedelta(hours=1)).astimezone(UTC)

    def saved(self) -> dict[str, Any]:
        """The budget's part of the cursor."""
        return {"day": self.day, "used": self.used}


class QuotaSpent(SourceUnavailable):
    """The budget (or YouTube) has no room for the next call."""


class YoutubeCollector:
    """Polls one source's channels, searches and watched videos; publishes replies."""

    def __init__(self, session: aiohttp.ClientSession, options: Options, *, key: str,
                 token: str | None, keywords: Sequence[str], clock: Clock) -> None:
        self._session = session
        self._options = options
        self._key = key
        self._token = token
        self._query = options.query or "|".join(dict.fromkeys(k for k in keywords if k))
        self._clock = clock
        self._base = str(options.api_url).rstrip("/")

    @property
    def can_publish(self) -> bool:
        """Replies need the channel's OAuth token."""
        return self._token is not None

    async def poll(self, source: Source, cursor: Mapping[str, Any]) -> Polled:
        """Read new comments on the channels and watched videos; search when due."""
        now = self._clock.now()
        budget = QuotaBudget.load(self._options.daily_quota, cursor, now)
        places = {k: dict(v) for k, v in (cursor.get("places") or {}).items()}
        videos = {k: v for k, v in (cursor.get("videos") or {}).items()
                  if datetime.fromisoformat(v) > now - timedelta(days=self._options.watch_days)}
        search = dict(cursor.get("search") or {})
        found: list[RawMention] = []

        def state(note: str | None = None, retry_after: float | None = None) -> Polled:
            return Polled(found, {"quota": budget.saved(), "places": places, "videos": videos,
                                  "search": search}, retry_after=retry_after, note=note)

        try:
            for channel in self._options.channels:
                found += await self._threads(source, budget, places, f"channel:{channel}",
                                             {"allThreadsRelatedToChannelId": channel}, now)
            if self._search_due(search, now):
                await self._search(source, budget, search, videos, now, found)
            for video in list(videos):
                found += await self._threads(source, budget, places, f"video:{video}",
                                             {"videoId": video}, now)
        except QuotaSpent as spent:
            if not found:
                raise QuotaSpent(str(spent), retry_after=spent.retry_after) from None
            return state(note=str(spent), retry_after=spent.retry_after)
        except SourceUnavailable:
            if not found:
                raise
            return state(note="stopped early: the API failed")
        return state()

    async def publish(self, source: Source, to: Mention, text: str) -> Published:
        """Reply in the comment's thread, or comment on a video that named the brand."""
        if self._token is None:
            raise PublishFailed("no oauth_token_env is set for this YouTube source")
        headers = {"Authorization": f"Bearer {self._token}"}
        if to.external_id.startswith("video:"):
            video = to.external_id.removeprefix("video:")
            path = "commentThreads"
            body: dict[str, Any] = {"snippet": {"videoId": video, "topLevelComment": {
                "snippet": {"textOriginal": text}}}}
        else:
            # YouTube threads are one level deep: a reply goes under the top comment.
            path = "comments"
            body = {"snippet": {"parentId": to.parent_id or to.external_id,
                                "textOriginal": text}}
        try:
            answer = await request_json(self._session, "POST", f"{self._base}/{path}",
                                        params={"part": "snippet"}, json_body=body,
                                        headers=headers, what=f"YouTube {path}.insert",
                                        clock=self._clock)
        except SourceUnavailable as failure:
            raise PublishFailed(str(failure)) from None
        reply_id = answer.get("id") if isinstance(answer, dict) else None
        if not reply_id:
            raise PublishFailed(f"YouTube {path}.insert: no id in the answer")
        on: str | None = _video_of(answer) or (to.external_id.removeprefix("video:")
                                               if to.external_id.startswith("video:") else None)
        return Published(external_id=str(reply_id),
                         url=f"https://www.youtube.com/watch?v={on}&lc={reply_id}"
                         if on else to.url)

    def _search_due(self, search: Mapping[str, Any], now: datetime) -> bool:
        if not self._options.search or not self._query:
            return False
        last = search.get("at")
        return last is None or now - datetime.fromisoformat(last) >= timedelta(
            minutes=self._options.search_minutes)

    async def _search(self, source: Source, budget: QuotaBudget, search: dict[str, Any],
                      videos: dict[str, str], now: datetime, found: list[RawMention]) -> None:
        """Search for new videos naming the brands, newest first, up to SEARCH_PAGES pages.

        Everything published before `newest` has been read (give or take the search
        index's lag, which each round looks back over again). A round that cannot read
        every page leaves `before`: what was published since then has been read (the
        newest of it is `top`), and the next round goes on below it. The cursor is
        brought up to date after each page, and the page's videos go into `found` at
        once: a round stopped by the quota or an error keeps what it read."""
        newest = datetime.fromisoformat(search.get("newest") or (
            now - timedelta(hours=self._options.backfill_hours)).isoformat())
        top = datetime.fromisoformat(search.get("top") or newest.isoformat())
        params = {"part": "snippet", "q": self._query, "type": "video", "order": "date",
                  "maxResults": "50", "publishedAfter": _rfc3339(newest - INDEXING_LAG)}
        if search.get("before"):
            params["publishedBefore"] = search["before"]
        for _page in range(SEARCH_PAGES):
            await self._spend(budget, self._options.search_cost, now, "search")
            answer = await self._get("search", params)
            search["at"] = now.isoformat()
            oldest = None
            for item in answer.get("items") or []:
                video = (item.get("id") or {}).get("videoId")
                snippet = item.get("snippet") or {}
                if not video or not snippet.get("publishedAt"):
                    continue
                published = _time(snippet["publishedAt"], now)
                top = max(top, published)
                oldest = published if oldest is None else min(oldest, published)
                if video not in videos:
                    videos[video] = now.isoformat()
                    found.append(_video_mention(source, video, snippet, published))
            token = answer.get("nextPageToken")
            if not token:  # read to the end
                search["newest"] = top.isoformat()
                search.pop("before", None)
                search.pop("top", None)
                return
            params["pageToken"] = token
            if oldest is not None:  # a second more: publishedBefore is exclusive
                search["newest"] = newest.isoformat()  # the backfill's start stays put
                search["before"] = _rfc3339(oldest + timedelta(seconds=1))
                search["top"] = top.isoformat()
        log.info("YouTube search for %s: more videos than %d pages; the next round reads "
                 "on from those published before %s", source.name, SEARCH_PAGES,
                 search.get("before"))

    async def _threads(self, source: Source, budget: QuotaBudget,
                       places: dict[str, dict[str, Any]], place: str,
                       which: Mapping[str, str], now: datetime) -> list[RawMention]:
        state = places.get(place) or {}
        counts: dict[str, int] = dict(state.get("replies") or {})
        seen = list(state.get("seen") or [])
        known = set(seen)
        saved = state.get("newest")
        newest = datetime.fromisoformat(saved) if saved else (
            now - timedelta(hours=self._options.backfill_hours))
        # Read a little before the newest seen (late-indexed comments): ids skip the known.
        since = newest - timedelta(minutes=5) if saved else newest
        # What was published before the first look is history, now and on later looks.
        start = state.get("from") or since.isoformat()
        history = datetime.fromisoformat(start)
        found: list[RawMention] = []
        params = {"part": "snippet,replies", "order": "time", "maxResults": "100",
                  "textFormat": "plainText", **which}
        for _ in range(MAX_PAGES):
            await self._spend(budget, THREADS_COST, now, "comment threads")
            answer = await self._get("commentThreads", params)
            older = False
            for thread in answer.get("items") or []:
                for comment in _comments(thread):
                    published = _time(comment["snippet"].get("publishedAt"), now)
                    if comment["id"] in known:
                        continue
                    top = comment is thread["snippet"]["topLevelComment"]
                    if published < since and top:
                        older = True
                    if published < history or (published < since and top):
                        continue
                    known.add(comment["id"])
                    seen.append(comment["id"])
                    newest = max(newest, published)
                    found.append(_mention(source, thread, comment, published))
                for reply, published in await self._unanswered_replies(
                        budget, thread, counts, known, now):
                    if published < history:
                        continue
                    known.add(reply["id"])
                    seen.append(reply["id"])
                    newest = max(newest, published)
                    found.append(_mention(source, thread, reply, published))
            token = answer.get("nextPageToken")
            if older or not token:
                break
            params["pageToken"] = token
        places[place] = {"newest": newest.isoformat(), "seen": seen[-SEEN:], "from": start,
                         "replies": dict(list(counts.items())[-BUSY_THREADS:])}
        return found

    async def _unanswered_replies(
            self, budget: QuotaBudget, thread: Mapping[str, Any], counts: dict[str, int],
            known: set[str], now: datetime) -> list[tuple[dict[str, Any], datetime]]:
        """Page through the replies a thread left out, if its count grew since the last look.

        `counts` holds, per busy thread, the `totalReplyCount` last read in full; it is
        updated here. The replies returned are neither known nor in the thread's answer.
        """
        included = [r["id"] for r in _comments(thread)[1:]]
        total = int(thread["snippet"].get("totalReplyCount") or 0)
        remembered = counts.pop(thread["id"], len(included))
        if total <= len(included):
            return []  # all of them came with the thread: nothing to remember
        counts[thread["id"]] = total  # moved last: threads seen lately are kept longest
        if total <= remembered:
            return []  # no new reply (or some deleted): no call
        expected = total - remembered
        skip = known | set(included)
        params = {"part": "snippet", "parentId": thread["id"], "maxResults": "100",
                  "textFormat": "plainText"}
        replies: list[tuple[dict[str, Any], datetime]] = []
        unknown = 0
        for _ in range(MAX_PAGES):
            await self._spend(budget, REPLIES_COST, now, "page of replies")
            answer = await self._get("comments", params)
            for reply in answer.get("items") or []:
                if reply.get("id") in skip or not reply.get("snippet"):
                    continue
                skip.add(reply["id"])
                unknown += 1
                replies.append((reply, _time(reply["snippet"].get("publishedAt"), now)))
            token = answer.get("nextPageToken")
            # YouTube answers newest first: once as many unknown replies as the count grew
            # by have turned up, the rest were read before (or are older than we look).
            if unknown >= expected or not token:
                break
            params["pageToken"] = token
        return replies

    async def _spend(self, budget: QuotaBudget, cost: int, now: datetime, what: str) -> None:
        if not budget.take(cost, now):
            at = budget.next_room(cost, now)
            raise QuotaSpent(
                f"YouTube quota budget: {budget.used} of {budget.daily} units used today; "
                f"the next {what} fits at {at.strftime('%H:%M')} UTC",
                retry_after=max(60.0, (at - now).total_seconds()))

    async def _get(self, path: str, params: Mapping[str, str]) -> dict[str, Any]:
        try:
            answer = await request_json(self._session, "GET", f"{self._base}/{path}",
                                        params={**params, "key": self._key},
                                        what=f"YouTube {path}.list", clock=self._clock)
        except ApiRefused as refused:
            if refused.status == 403 and "quotaExceeded" in str(refused.body):
                midnight = (self._clock.now().astimezone(PACIFIC) + DAY).replace(
                    hour=0, minute=0, second=0, microsecond=0)
                raise QuotaSpent("YouTube: the day's quota is used up until midnight "
                                 "Pacific time", retry_after=(
                                     midnight - self._clock.now()).total_seconds()) from None
            raise
        return answer if isinstance(answer, dict) else {}


def _comments(thread: Mapping[str, Any]) -> list[dict[str, Any]]:
    top = thread["snippet"]["topLevelComment"]
    return [top, *((thread.get("replies") or {}).get("comments") or [])]


def _mention(source: Source, thread: Mapping[str, Any], comment: Mapping[str, Any],
             published: datetime) -> RawMention:
    snippet = comment["snippet"]
    video = snippet.get("videoId") or thread["snippet"].get("videoId")
    channel = (snippet.get("authorChannelId") or {}).get("value")
    return RawMention(
        source=source.name, external_id=comment["id"],
        text=snippet.get("textOriginal") or plain_text(snippet.get("textDisplay") or ""),
        published_at=published,
        url=f"https://www.youtube.com/watch?v={video}&lc={comment['id']}" if video else None,
        author=Author(id=channel, name=snippet.get("authorDisplayName"),
                      handle=snippet.get("authorDisplayName")
                      if str(snippet.get("authorDisplayName", "")).startswith("@") else None,
                      url=snippet.get("authorChannelUrl")),
        thread_id=thread["id"],
        parent_id=snippet.get("parentId"),
    )


def _video_mention(source: Source, video: str, snippet: Mapping[str, Any],
                   published: datetime) -> RawMention:
    channel = snippet.get("channelId")
    return RawMention(
        source=source.name, external_id=f"video:{video}",
        text="\n\n".join(plain_text(p) for p in (snippet.get("title"),
                                                snippet.get("description")) if p),
        published_at=published, url=f"https://www.youtube.com/watch?v={video}",
        author=Author(id=channel, name=plain_text(snippet.get("channelTitle") or "") or None,
                      url=f"https://www.youtube.com/channel/{channel}" if channel else None),
    )


def _video_of(answer: Any) -> str | None:
    snippet = answer.get("snippet") or {}
    return snippet.get("videoId") or ((snippet.get("topLevelComment") or {}).get(
        "snippet") or {}).get("videoId")


def _time(value: str | None, now: datetime) -> datetime:
    if not value:
        return now
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _rfc3339(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
