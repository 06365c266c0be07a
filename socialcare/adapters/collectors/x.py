"""X: API v2 recent search for the brands, polled with `since_id`; replies as posts.

    [[sources]]
    name = "x"
    kind = "x"
    platform = "x"
    tier = "main"
    poll_seconds = 60
    [sources.options]
    bearer_env = "X_BEARER_TOKEN"      # app-only token: reads search
    user_token_env = "X_USER_TOKEN"    # OAuth 2.0 user token (tweet.write): posts replies
    # query = "acme -is:retweet"       # default: the brand keywords, OR-ed, no retweets

Each poll pages through everything newer than the newest post seen. If a page
fails (a 429 with its reset time, say), the cursor keeps the old `since_id` (or
`start_time`) and the page token it stopped at, and the next poll goes on from there: a
burst bigger than one poll is neither skipped nor fed twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from socialcare.adapters.collectors.http import request_json
from socialcare.bot.answers.pictures import MB, Picture, PictureLimits
from socialcare.bot.model import Author, Mention, RawMention
from socialcare.bot.ports import Clock, Published, PublishFailed
from socialcare.bot.sources import Polled, SourceUnavailable
from socialcare.bot.team import Source

TWEET_FIELDS = "created_at,author_id,conversation_id,referenced_tweets,lang"
MAX_PAGES = 10
# Recent search reaches seven days back; a little less, for clocks that differ.
SEARCHABLE = timedelta(days=7) - timedelta(minutes=5)


class Options(BaseModel):
    """An X source's options."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    api_url: HttpUrl = HttpUrl("https://api.x.com")
    bearer_env: str = Field(min_length=1)
    user_token_env: str | None = None
    query: str | None = None
    # The first poll reads back this far; later ones go on from the newest post seen.
    backfill_hours: int = Field(default=24, ge=0, le=24 * 6)


def default_query(keywords: Sequence[str]) -> str:
    """OR the keywords (quoted when they have spaces) and leave out retweets."""
    terms = [f'"{k}"' if " " in k else k for k in dict.fromkeys(k.strip() for k in keywords) if k]
    return f"({' OR '.join(terms)}) -is:retweet"


class XCollector:
    """Polls X recent search for one source, and publishes its replies."""

    def __init__(self, session: aiohttp.ClientSession, options: Options, *, bearer: str,
                 user_token: str | None, keywords: Sequence[str], clock: Clock) -> None:
        self._session = session
        self._clock = clock
        self._options = options
        self._bearer = bearer
        self._user_token = user_token
        self._query = options.query or default_query(keywords)
        self._base = str(options.api_url).rstrip("/")

    @property
    def can_publish(self) -> bool:
        """Replies need a user token."""
        return self._user_token is not None

    async def poll(self, source: Source, cursor: Mapping[str, Any]) -> Polled:
        """Fetch every post newer than the cursor's, going on where a failed poll stopped."""
        now = self._clock.now()
        oldest = now - SEARCHABLE
        since = cursor.get("since_id")
        token = cursor.get("resume_token")
        newest = cursor.get("resume_newest") or since
        # A resumed walk keeps its start_time: a later one would cut off its oldest pages.
        start = _parse_time(cursor.get("resume_start")) if token else None
        if since and datetime.fromtimestamp(_snowflake_seconds(str(since)), UTC) < oldest:
            # X refuses a since_id older than its seven days (after a quiet week, say):
            # start again from the oldest time it still searches.
            since = token = newest = None
            start = oldest
        params: dict[str, str] = {"query": self._query, "max_results": "100",
                                  "tweet.fields": TWEET_FIELDS, "expansions": "author_id",
                                  "user.fields": "username,name"}
        if since:
            params["since_id"] = str(since)
        else:
            start = max(start or now - timedelta(hours=self._options.backfill_hours), oldest)
            params["start_time"] = start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        found: list[RawMention] = []
        for _ in range(MAX_PAGES):
            if token:
                params["next_token"] = str(token)
            try:
                page = await request_json(
                    self._session, "GET", f"{self._base}/2/tweets/search/recent",
                    params=params, headers=self._auth(self._bearer), what="X recent search",
                    clock=self._clock)
            except SourceUnavailable as failure:
                if not found:
                    raise
                stopped = {"since_id": since, "resume_token": token, "resume_newest": newest,
                           "resume_start": params.get("start_time")}
                return Polled(found, stopped, retry_after=failure.retry_after,
                              note=str(failure))
            page = page if isinstance(page, dict) else {}
            users = _users(page)
            found += [_post(source, item, users) for item in page.get("data") or []]
            meta = page.get("meta") or {}
            if not token and meta.get("newest_id") and _newer(meta["newest_id"], newest):
                newest = meta["newest_id"]
            token = meta.get("next_token")
            if not token:
                return Polled(found, {"since_id": newest})
        return Polled(found, {"since_id": since, "resume_token": token, "resume_newest": newest,
                              "resume_start": params.get("start_time")},
                      note="more pages than one poll reads")

    def picture_limits(self, source: Source, to: Mention | None = None) -> PictureLimits | None:
        """Images up to 5 MB (https://docs.x.com/x-api/media); the user token needs the
        media.write scope besides tweet.write."""
        if self._user_token is None:
            return None
        return PictureLimits(max_bytes=5 * MB,
                             types=("image/png", "image/jpeg", "image/gif", "image/webp"))

    async def publish_picture(self, source: Source, to: Mention, text: str,
                              picture: Picture) -> Published:
        """Upload the image (POST /2/media/upload), then post the reply with it."""
        if self._user_token is None:
            raise PublishFailed("no user_token_env is set for this X source")
        form = aiohttp.FormData()
        form.add_field("media", picture.content, filename=picture.filename,
                       content_type=picture.content_type or "application/octet-stream")
        form.add_field("media_category", "tweet_image")
        try:
            answer = await request_json(
                self._session, "POST", f"{self._base}/2/media/upload", data=form,
                headers=self._auth(self._user_token), what="X media upload",
                clock=self._clock)
        except SourceUnavailable as failure:
            raise PublishFailed(str(failure)) from None
        data = answer.get("data") if isinstance(answer, dict) else None
        if not isinstance(data, dict) or not data.get("id"):
            raise PublishFailed("X media upload: no media id in the answer")
        return await self._post(to, text, str(data["id"]))

    async def publish(self, source: Source, to: Mention, text: str) -> Published:
        """Post the reply under the customer's post."""
        return await self._post(to, text, None)

    async def _post(self, to: Mention, text: str, media_id: str | None) -> Published:
        if self._user_token is None:
            raise PublishFailed("no user_token_env is set for this X source")
        post: dict[str, Any] = {"text": text, "reply": {"in_reply_to_tweet_id": to.external_id}}
        if media_id is not None:
            post["media"] = {"media_ids": [media_id]}
        try:
            answer = await request_json(
                self._session, "POST", f"{self._base}/2/tweets", json_body=post,
                headers=self._auth(self._user_token), what="X post", clock=self._clock)
        except SourceUnavailable as failure:
            raise PublishFailed(str(failure)) from None
        data = answer.get("data") if isinstance(answer, dict) else None
        if not isinstance(data, dict) or not data.get("id"):
            raise PublishFailed("X post: no id in the answer")
        return Published(external_id=str(data["id"]),
                         url=f"https://x.com/i/web/status/{data['id']}")

    @staticmethod
    def _auth(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}


def _parse_time(value: Any) -> datetime | None:
    """Read a start_time kept in the cursor ("2026-11-25T10:00:00Z")."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def _newer(candidate: str, than: str | None) -> bool:
    # Post ids are 64-bit numbers sent as text.
    return than is None or int(candidate) > int(than)


def _users(page: Mapping[str, Any]) -> dict[str, Author]:
    return {
        str(user["id"]): Author(id=str(user["id"]), name=user.get("name"),
                                handle="@" + user["username"] if user.get("username") else None,
                                url=f"https://x.com/{user['username']}"
                                if user.get("username") else None)
        for user in (page.get("includes") or {}).get("users") or [] if user.get("id")
    }


def _post(source: Source, item: Mapping[str, Any], users: Mapping[str, Author]) -> RawMention:
    post_id = str(item["id"])
    author_id = str(item.get("author_id") or "")
    author = users.get(author_id) or Author(id=author_id or None)
    replied = next((str(ref["id"]) for ref in item.get("referenced_tweets") or []
                    if ref.get("type") == "replied_to"), None)
    conversation = str(item.get("conversation_id") or post_id)
    created = item.get("created_at")
    return RawMention(
        source=source.name, external_id=post_id, text=item.get("text") or "",
        published_at=datetime.fromisoformat(created.replace("Z", "+00:00")) if created
        else datetime.fromtimestamp(_snowflake_seconds(post_id), UTC),
        url=f"https://x.com/{author.handle.lstrip('@')}/status/{post_id}" if author.handle
        else f"https://x.com/i/web/status/{post_id}",
        author=author,
        # One customer's posts in one conversation are one case.
        thread_id=f"{conversation}:{author_id}" if author_id else conversation,
        parent_id=replied,
    )


def _snowflake_seconds(post_id: str) -> float:
    """A post id holds its creation time: milliseconds since 2010-11-04 in the high bits."""
    return ((int(post_id) >> 22) + 1288834974657) / 1000
