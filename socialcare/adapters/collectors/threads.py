"""Threads: replies under the brand's posts and posts that mention it (the Threads API).

    [[sources]]
    name = "threads"
    kind = "threads"
    platform = "threads"
    tier = "main"
    brand = "Kcell"
    poll_seconds = 120
    [sources.options]
    user_id = "17841400000000001"             # the brand profile's Threads user id
    token_env = "THREADS_TOKEN"               # its long-lived access token

Each poll reads the conversation (every reply, nested ones too, newest first) of the
profile's newest `posts`, and the posts that mention the profile (`/mentions`), down to
what it saw before; and how many of the day's 1,000 API replies are used, which
`/sources` shows. One person's replies under one post are one case. A reply goes out as
the documented two steps: a TEXT container with `reply_to_id`, then `threads_publish`.

The long-lived token lasts 60 days and is refreshed (`th_refresh_token`) once a day
while the source runs — once a day in all, whichever process, since the refreshed token
is kept in the database; one that has expired cannot be refreshed: the poll fails saying
so (error 190). Rate limits (errors 4, 17, 32, 613) stop the poll, keep what was read
and wait ten minutes.

With `app_secret_env` and `verify_token_env`, replies and mentions are also delivered
by webhook (see threads_webhooks.py); polling goes on beside them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Self

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, model_validator

from socialcare.adapters.collectors.http import ApiRefused, request_json
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

log = logging.getLogger(__name__)

FIELDS = "id,text,username,timestamp,permalink,replied_to,root_post,is_reply_owned_by_me"
RATE_CODES = frozenset({4, 17, 32, 613})
EXPIRED_CODE = 190
RATE_WAIT = 600.0
REFRESH_EVERY = timedelta(days=1)
MAX_PAGES = 5
OVERLAP = timedelta(minutes=5)
SEEN = 1000
# Threads opened in July 2023: an earlier time is a wrong one, and the item is dated now.
BEGAN = datetime(2023, 7, 1, tzinfo=UTC)


class Options(BaseModel):
    """A Threads source's options."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    api_url: HttpUrl = HttpUrl("https://graph.threads.net/v1.0")
    user_id: str = Field(min_length=1)
    token_env: str = Field(min_length=1)
    posts: int = Field(default=10, ge=1, le=100)
    mentions: bool = True
    backfill_hours: int = Field(default=24, ge=0)
    # Webhooks (optional; polling goes on beside them): the Threads app's secret signs
    # the deliveries, the verify token answers the endpoint check.
    app_secret_env: str | None = None
    verify_token_env: str | None = None

    @model_validator(mode="after")
    def _webhooks_need_both(self) -> Self:
        if (self.app_secret_env is None) != (self.verify_token_env is None):
            raise ValueError("webhooks need both app_secret_env and verify_token_env")
        return self


class ThreadsCollector:
    """Polls one Threads profile's conversations and mentions; publishes replies."""

    can_publish = True

    def __init__(self, session: aiohttp.ClientSession, options: Options, *, token: str,
                 clock: Clock, keeping: Keeping | None = None) -> None:
        self._session = session
        self._options = options
        self._clock = clock
        self._base = str(options.api_url).rstrip("/")
        # The refresh endpoint has no version in its path.
        self._root = self._base.rsplit("/", 1)[0] if self._base.rsplit("/", 1)[-1].startswith(
            "v") else self._base
        self._refresh_tried: datetime | None = None
        self.token = AccessToken(what="Threads", clock=clock, token=token, renew=self._renew,
                                 keeping=keeping)

    async def poll(self, source: Source, cursor: Mapping[str, Any]) -> Polled:
        """Read new replies under the newest posts, and new mentions."""
        now = self._clock.now()
        await self._keep_token_fresh(now)
        places = {k: dict(v) for k, v in (cursor.get("places") or {}).items()}
        found: list[RawMention] = []
        try:
            posts = await self._get(f"/{self._options.user_id}/threads", {
                "fields": "id,timestamp", "limit": self._options.posts}, what="Threads threads")
            for post in posts.get("data") or []:
                if isinstance(post, dict) and post.get("id"):
                    found += await self._read(source, f"/{post['id']}/conversation",
                                              {"reverse": "true"}, places, str(post["id"]), now)
            if self._options.mentions:
                found += await self._read(source, f"/{self._options.user_id}/mentions", {},
                                          places, "mentions", now)
            note = await self._reply_quota()
        except SourceUnavailable as failure:
            if not found:
                raise
            return Polled(found, {"places": places}, retry_after=failure.retry_after,
                          note=str(failure))
        return Polled(found, {"places": places}, note=note)

    async def publish(self, source: Source, to: Mention, text: str) -> Published:
        """Reply to the customer's post: a reply container, then publish it."""
        user = self._options.user_id
        try:
            container = await self._post(f"/{user}/threads", {
                "media_type": "TEXT", "text": text, "reply_to_id": to.external_id},
                what="Threads reply container")
            if not container.get("id"):
                raise PublishFailed("Threads reply container: no id in the answer")
            published = await self._post(f"/{user}/threads_publish",
                                         {"creation_id": str(container["id"])},
                                         what="Threads publish")
        except SourceUnavailable as failure:
            raise PublishFailed(str(failure)) from None
        if not published.get("id"):
            raise PublishFailed("Threads publish: no id in the answer")
        return Published(external_id=str(published["id"]), url=to.url)

    async def _read(self, source: Source, path: str, extra: Mapping[str, str],
                    places: dict[str, dict[str, Any]], place: str,
                    now: datetime) -> list[RawMention]:
        state = places.get(place) or {}
        seen = list(state.get("seen") or [])
        known = set(seen)
        saved = state.get("newest")
        newest = datetime.fromisoformat(saved) if saved else \
            now - timedelta(hours=self._options.backfill_hours)
        since = newest - OVERLAP if saved else newest
        params: dict[str, str | int] = {"fields": FIELDS, "limit": 50, **extra}
        found: list[RawMention] = []
        for _ in range(MAX_PAGES):
            page = await self._get(path, params, what=f"Threads {path.rsplit('/', 1)[-1]}")
            older = False
            for item in page.get("data") or []:
                if not isinstance(item, dict) or not item.get("id") or not item.get("text"):
                    continue
                published = time_of(item.get("timestamp"), now)
                if published < since:
                    older = True
                    continue
                if str(item["id"]) in known:
                    continue
                known.add(str(item["id"]))
                seen.append(str(item["id"]))
                newest = max(newest, published)
                found.append(mention_of(source, item, published,
                                             mention=place == "mentions"))
            after = ((page.get("paging") or {}).get("cursors") or {}).get("after")
            if older or not (page.get("paging") or {}).get("next") or not after:
                break
            params["after"] = str(after)
        places[place] = {"newest": newest.isoformat(), "seen": seen[-SEEN:]}
        return found

    async def _reply_quota(self) -> str | None:
        """How many of the day's API replies are used, as /sources shows it."""
        try:
            answer = await self._get(f"/{self._options.user_id}/threads_publishing_limit",
                                     {"fields": "reply_quota_usage,reply_config"},
                                     what="Threads publishing limit")
        except SourceUnavailable as failure:
            if isinstance(failure, TokenExpired) or failure.retry_after is not None:
                raise
            log.info("Threads: no reply quota to show: %s", failure)  # e.g. a missing scope
            return None
        for row in answer.get("data") or []:
            config = row.get("reply_config") or {} if isinstance(row, dict) else {}
            if "reply_quota_usage" in row and config.get("quota_total"):
                return f"replies: {row['reply_quota_usage']} of {config['quota_total']} a day"
        return None

    async def _keep_token_fresh(self, now: datetime) -> None:
        """Refresh the long-lived token once a day (in whichever process), before it runs out."""
        if self._refresh_tried is not None and now - self._refresh_tried < REFRESH_EVERY:
            return
        self._refresh_tried = now
        try:
            await self.token.refresh(REFRESH_EVERY)
        except SourceUnavailable as failure:
            # Not fatal yet: the token may be too new to refresh, or still good for weeks.
            log.warning("Threads: the access token was not refreshed: %s", failure)

    async def _get(self, path: str, params: Mapping[str, str | int], *,
                   what: str) -> dict[str, Any]:
        return await self._call("GET", path, params, what)

    async def _post(self, path: str, form: Mapping[str, str], *, what: str) -> dict[str, Any]:
        return await self._call("POST", path, form, what)

    async def _call(self, method: str, path: str, fields: Mapping[str, str | int],
                    what: str) -> dict[str, Any]:
        async def attempt(token: str) -> dict[str, Any]:
            with_token = {**fields, "access_token": token}
            try:
                answer = await request_json(
                    self._session, method, self._base + path, what=what, clock=self._clock,
                    params=with_token if method == "GET" else None,
                    data={k: str(v) for k, v in with_token.items()} if method == "POST"
                    else None)
            except ApiRefused as refused:
                raise _graph_error(refused) from None
            return answer if isinstance(answer, dict) else {}

        return await self.token.call(attempt)

    async def _renew(self, grant: Grant | None) -> Grant:
        """Refresh the long-lived token (it must not have expired yet)."""
        current = grant.access_token if grant else ""
        try:
            answer = await request_json(
                self._session, "GET", self._root + "/refresh_access_token",
                params={"grant_type": "th_refresh_token", "access_token": current},
                what="Threads token refresh", clock=self._clock)
        except ApiRefused as refused:
            raise TokenExpired(f"{_graph_error(refused)}; sign in to Threads again and set a "
                               "new long-lived token") from None
        if not isinstance(answer, dict) or not answer.get("access_token"):
            raise TokenExpired("Threads token refresh: no access_token in the answer")
        return Grant(str(answer["access_token"]), expires(self._clock, answer.get("expires_in")))


def _graph_error(refused: ApiRefused) -> SourceUnavailable:
    """Turn a Graph error body into the failure it means."""
    error = (refused.body or {}).get("error") if isinstance(refused.body, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    if code == EXPIRED_CODE:
        return TokenExpired(f"{refused} (code 190)")
    if code in RATE_CODES or refused.status == 429:
        return SourceUnavailable(f"{refused} (rate limited, code {code})",
                                 retry_after=refused.retry_after or RATE_WAIT)
    return refused


def mention_of(source: Source, item: Mapping[str, Any], published: datetime, *,
               mention: bool) -> RawMention:
    """Make a mention of a reply (under the brand's post) or a post mentioning the brand.

    Polled and delivered by webhook alike, so that an item read both ways is one."""
    username = str(item.get("username") or "") or None
    post_id = str(item["id"])
    root = str((item.get("root_post") or {}).get("id") or "") or None
    parent = str((item.get("replied_to") or {}).get("id") or "") or None
    conversation = post_id if mention or root is None else root
    return RawMention(
        source=source.name, external_id=post_id, text=str(item.get("text") or ""),
        published_at=published, url=item.get("permalink") or None, platform="threads",
        author=Author(name=username, handle=f"@{username}" if username else None,
                      url=f"https://www.threads.net/@{username}" if username else None),
        # One person's replies under one post are one conversation.
        thread_id=f"{conversation}:{username}" if username else conversation,
        parent_id=parent if parent and parent != root else None,
    )


def time_of(value: Any, now: datetime) -> datetime:
    """Read a Threads time (ISO 8601 with a +0000 offset); `now` if it is none or absurd."""
    if isinstance(value, str) and value:
        try:
            found = datetime.fromisoformat(value.replace("+0000", "+00:00")
                                           .replace("Z", "+00:00"))
        except ValueError:
            return now
        # A time without an offset is not Threads'; a future one the pipeline makes now.
        return found if found.tzinfo is not None and found >= BEGAN else now
    return now
