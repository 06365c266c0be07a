"""TikTok: comments on the brand's business account videos (TikTok API for Business).

    [[sources]]
    name = "tiktok"
    kind = "tiktok"
    platform = "tiktok"
    tier = "main"
    brand = "Kcell"                         # comments under our videos rarely name us
    poll_seconds = 120
    [sources.options]
    business_id = "-000abc…"                 # the business account's id (open_id)
    access_token_env = "TIKTOK_ACCESS_TOKEN"
    refresh_token_env = "TIKTOK_REFRESH_TOKEN"
    app_id = "7300000000000000000"
    app_secret_env = "TIKTOK_APP_SECRET"

Each poll lists the account's newest `videos` (`/business/video/list/`) and reads each
one's comments, replies included, newest first (`/business/comment/list/`), page by
page down to the newest comment seen there (less a few minutes: comments are listed a
little late). A reply goes out as `/business/comment/reply/create/` under the thread's
top comment (TikTok threads are one level deep).

Errors come as HTTP 200 with a `code`: 40100 is the rate limit (the poll stops, keeps
what it read and waits a minute), 40102 / 40105 an expired or revoked access token: it
is renewed through `/tt_user/oauth2/refresh_token/` (a day's token, a year's refresh
token) and the call made again once. TikTok rotates the refresh token at each renewal
(the old one stops working): the new pair is kept in the database, so a restart or
another process goes on with it, not with the environment's.

Ids: a comment keeps TikTok's `comment_id`; its thread is `{video_id}:{top comment id}`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Self

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, model_validator

from socialcare.adapters.collectors.http import request_json
from socialcare.adapters.collectors.tokens import (
    AccessToken,
    Grant,
    Keeping,
    TokenExpired,
    expires,
)
from socialcare.bot.model import Author, Mention, RawMention
from socialcare.bot.ports import Clock, Published, PublishFailed
from socialcare.bot.sources import Polled, SourceUnavailable
from socialcare.bot.team import Source

RATE_LIMITED = frozenset({40100})
TOKEN_REFUSED = frozenset({40102, 40104, 40105})
RATE_WAIT = 60.0
PAGE = 30
MAX_PAGES = 5
OVERLAP = timedelta(minutes=5)
SEEN = 500  # comment ids remembered per video
VIDEO_FIELDS = ["item_id", "create_time", "caption", "share_url"]


class Options(BaseModel):
    """A TikTok source's options."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    api_url: HttpUrl = HttpUrl("https://business-api.tiktok.com/open_api/v1.3")
    business_id: str = Field(min_length=1)
    access_token_env: str = Field(min_length=1)
    refresh_token_env: str | None = None
    app_id: str | None = None
    app_secret_env: str | None = None
    videos: int = Field(default=20, ge=1, le=20)
    backfill_hours: int = Field(default=24, ge=0)

    @model_validator(mode="after")
    def _refresh_needs_the_app(self) -> Self:
        if self.refresh_token_env and not (self.app_id and self.app_secret_env):
            raise ValueError("refresh_token_env needs app_id and app_secret_env (the app's "
                             "credentials renew the token)")
        return self


class TikTokCollector:
    """Polls one business account's video comments and publishes replies to them."""

    can_publish = True

    def __init__(self, session: aiohttp.ClientSession, options: Options, *, access_token: str,
                 refresh_token: str | None, app_secret: str | None, clock: Clock,
                 keeping: Keeping | None = None) -> None:
        self._session = session
        self._options = options
        self._clock = clock
        self._base = str(options.api_url).rstrip("/")
        self._app_secret = app_secret
        self.token = AccessToken(what="TikTok", clock=clock, token=access_token,
                                 refresh_token=refresh_token,
                                 renew=self._renew if refresh_token else None,
                                 keeping=keeping)

    async def poll(self, source: Source, cursor: Mapping[str, Any]) -> Polled:
        """Read the new comments under the account's newest videos."""
        now = self._clock.now()
        places = {k: dict(v) for k, v in (cursor.get("videos") or {}).items()}
        found: list[RawMention] = []
        videos: list[dict[str, Any]] = []
        reading = None
        try:
            videos = _from(await self._videos(), cursor.get("resume"))
            for video in videos:
                reading = str(video["item_id"])
                found += await self._comments(source, video, places, now)
        except SourceUnavailable as failure:
            if not found:
                raise
            # The next poll starts with the video this one could not read.
            return Polled(found, {"videos": places, "resume": reading},
                          retry_after=failure.retry_after, note=str(failure))
        watched = {str(v["item_id"]) for v in videos}
        return Polled(found, {"videos": {k: v for k, v in places.items() if k in watched}})

    async def publish(self, source: Source, to: Mention, text: str) -> Published:
        """Reply under the thread's top comment, as the business account."""
        video, _, root = to.thread_key.partition(":")
        if not video or not root:
            raise PublishFailed(f"not a TikTok comment thread: {to.thread_key}")
        body = {"business_id": self._options.business_id, "video_id": video,
                "comment_id": root, "text": text}
        try:
            data = await self._api("POST", "/business/comment/reply/create/", body=body,
                                   what="TikTok comment reply")
        except SourceUnavailable as failure:
            raise PublishFailed(str(failure)) from None
        reply_id = data.get("comment_id")
        if not reply_id:
            raise PublishFailed("TikTok comment reply: no comment_id in the answer")
        return Published(external_id=str(reply_id), url=to.url)

    async def _videos(self) -> list[dict[str, Any]]:
        data = await self._api("GET", "/business/video/list/", params={
            "business_id": self._options.business_id, "fields": json.dumps(VIDEO_FIELDS),
            "max_count": self._options.videos}, what="TikTok video list")
        return [v for v in data.get("videos") or [] if isinstance(v, dict) and v.get("item_id")]

    async def _comments(self, source: Source, video: Mapping[str, Any],
                        places: dict[str, dict[str, Any]], now: datetime) -> list[RawMention]:
        video_id = str(video["item_id"])
        place = places.get(video_id) or {}
        seen = list(place.get("seen") or [])
        known = set(seen)
        saved = place.get("newest")
        newest = datetime.fromisoformat(saved) if saved else \
            now - timedelta(hours=self._options.backfill_hours)
        since = newest - OVERLAP if saved else newest
        found: list[RawMention] = []
        params: dict[str, str | int] = {
            "business_id": self._options.business_id, "video_id": video_id,
            "include_replies": "true", "sort_field": "create_time", "sort_order": "desc",
            "max_count": PAGE, "cursor": 0}
        for _ in range(MAX_PAGES):
            data = await self._api("GET", "/business/comment/list/", params=params,
                                   what="TikTok comment list")
            older = False
            for comment in data.get("comments") or []:
                if not isinstance(comment, dict) or not comment.get("comment_id"):
                    continue
                published = _time(comment.get("create_time"), now)
                if published < since:
                    older = True
                    continue
                if str(comment["comment_id"]) in known or _own_top(comment):
                    continue
                known.add(str(comment["comment_id"]))
                seen.append(str(comment["comment_id"]))
                newest = max(newest, published)
                found.append(_mention(source, video, comment, published))
            if older or not data.get("has_more"):
                break
            params["cursor"] = int(data.get("cursor") or 0)
        places[video_id] = {"newest": newest.isoformat(), "seen": seen[-SEEN:]}
        return found

    async def _api(self, method: str, path: str, *, what: str,
                   params: Mapping[str, str | int] | None = None,
                   body: Mapping[str, Any] | None = None) -> dict[str, Any]:
        async def attempt(token: str) -> dict[str, Any]:
            answer = await request_json(self._session, method, self._base + path,
                                        params=params, json_body=body, what=what,
                                        headers={"Access-Token": token}, clock=self._clock)
            return _checked(answer, what)

        return await self.token.call(attempt)

    async def _renew(self, grant: Grant | None) -> Grant:
        """Renew the access token with the refresh token and the app's credentials."""
        refresh = grant.refresh_token if grant else None
        try:
            answer = await request_json(
                self._session, "POST", self._base + "/tt_user/oauth2/refresh_token/",
                json_body={"client_id": self._options.app_id,
                           "client_secret": self._app_secret,
                           "grant_type": "refresh_token", "refresh_token": refresh},
                what="TikTok token refresh", clock=self._clock)
            data = _checked(answer, "TikTok token refresh")
        except SourceUnavailable as failure:
            raise TokenExpired(f"{failure}; authorise the app for the account again and set "
                               "new tokens") from None
        if not data.get("access_token"):
            raise TokenExpired("TikTok token refresh: no access_token in the answer")
        new_refresh = data.get("refresh_token") or refresh
        return Grant(str(data["access_token"]), expires(self._clock, data.get("expires_in")),
                     str(new_refresh) if new_refresh else None)


def _checked(answer: Any, what: str) -> dict[str, Any]:
    """The `data` of a TikTok answer, or the error its `code` says."""
    if not isinstance(answer, dict):
        raise SourceUnavailable(f"{what}: an answer that is not a JSON object")
    code, message = answer.get("code"), str(answer.get("message") or "")[:200]
    if code == 0:
        data = answer.get("data")
        return data if isinstance(data, dict) else {}
    if code in RATE_LIMITED:
        raise SourceUnavailable(f"{what}: rate limited ({code}: {message})", retry_after=RATE_WAIT)
    if code in TOKEN_REFUSED:
        raise TokenExpired(f"{what}: the access token was refused ({code}: {message})")
    raise SourceUnavailable(f"{what}: error {code}: {message}")


def _from(videos: list[dict[str, Any]], first: Any) -> list[dict[str, Any]]:
    """The videos, starting with `first` (where a rate limit stopped the last poll)."""
    at = next((i for i, v in enumerate(videos) if str(v["item_id"]) == first), 0)
    return videos[at:] + videos[:at]


def _own_top(comment: Mapping[str, Any]) -> bool:
    # The account's own comments matter only as answers in a customer's thread.
    return bool(comment.get("owner")) and not comment.get("parent_comment_id")


def _mention(source: Source, video: Mapping[str, Any], comment: Mapping[str, Any],
             published: datetime) -> RawMention:
    video_id = str(video["item_id"])
    comment_id = str(comment["comment_id"])
    parent = str(comment.get("parent_comment_id") or "") or None
    username = comment.get("username")
    return RawMention(
        source=source.name, external_id=comment_id, text=str(comment.get("text") or ""),
        published_at=published, url=video.get("share_url") or None, platform="tiktok",
        author=Author(id=str(comment.get("user_id") or username or "") or None,
                      name=comment.get("display_name") or username,
                      handle=f"@{username}" if username else None,
                      url=f"https://www.tiktok.com/@{username}" if username else None),
        thread_id=f"{video_id}:{parent or comment_id}",
        parent_id=parent,
    )


def _time(value: Any, now: datetime) -> datetime:
    """TikTok gives Unix seconds, as a number or a string."""
    try:
        return datetime.fromtimestamp(int(value), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return now
