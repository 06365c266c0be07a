"""VK: posts that name the brands (`newsfeed.search`) and comments on the brands' walls.

    [[sources]]
    name = "vk"
    kind = "vk"
    platform = "vk"
    tier = "main"
    poll_seconds = 60
    [sources.options]
    token_env = "VK_SERVICE_TOKEN"      # a service or user token: reads search and walls
    reply_token_env = "VK_GROUP_TOKEN"  # a community token with wall rights: posts replies
    walls = [-12345678]                 # the brands' communities (negative ids)
    group_id = 12345678                 # reply as this community
    # queries = ["acme"]                # default: every brand keyword

Search is polled from the newest post time seen (less a few minutes: VK indexes
late), and the ids seen lately are kept, so a post is neither skipped nor fed
twice. A wall's posts are listed each poll, and only a post whose comment count
changed is read again. VK says "too many requests" (6), "flood control" (9) or
"rate limit reached" (29) in a 200 answer: the poll stops there, keeps what it has,
and waits before the next one.

A post's id is `{owner}_{post}`, a comment's `{owner}_{post}_{comment}`; a reply
is a `wall.createComment` under the post, answering the comment.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from socialcare.adapters.collectors.http import request_json
from socialcare.bot.answers.pictures import MB, Picture, PictureLimits
from socialcare.bot.model import Author, Mention, RawMention
from socialcare.bot.ports import ANTI_SPAM, Published, PublishFailed
from socialcare.bot.sources import Polled, SourceUnavailable
from socialcare.bot.team import Source

VERSION = "5.199"
# VK's own waits, in seconds, for its rate-limit errors.
RATE_ERRORS = {6: 2.0, 9: 600.0, 29: 3600.0}
# "Captcha needed": VK suspects a bot; bulk replies must stop.
CAPTCHA_NEEDED = 14
# VK indexes posts for search a little late: search again this far back.
OVERLAP_SECONDS = 600
SEEN = 3000
MAX_PAGES = 5


class Options(BaseModel):
    """A VK source's options."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    api_url: HttpUrl = HttpUrl("https://api.vk.com/method")
    token_env: str = Field(min_length=1)
    reply_token_env: str | None = None
    # A user token with the photos right: VK documents the wall photo upload server for
    # user tokens, so a picture reply needs it besides the community's reply token.
    photo_token_env: str | None = None
    queries: tuple[str, ...] = ()
    walls: tuple[int, ...] = ()
    group_id: int | None = None
    posts_per_wall: int = Field(default=20, ge=1, le=100)
    calls_per_second: float = Field(default=3.0, gt=0)


class VkError(SourceUnavailable):
    """VK answered with an error object."""

    def __init__(self, method: str, code: int, message: str) -> None:
        wait = RATE_ERRORS.get(code)
        what = "rate limited" if wait else "error"
        super().__init__(f"VK {method}: {what} ({code}: {message})", retry_after=wait)
        self.code = code


class VkCollector:
    """Polls VK search and walls for one source, and publishes its replies."""

    def __init__(self, session: aiohttp.ClientSession, options: Options, *, token: str,
                 reply_token: str | None, queries: Sequence[str],
                 photo_token: str | None = None) -> None:
        self._session = session
        self._options = options
        self._token = token
        self._reply_token = reply_token
        self._photo_token = photo_token
        self._queries = tuple(options.queries) or tuple(queries)
        self._spacing = 1.0 / options.calls_per_second
        self._last_call = 0.0

    @property
    def can_publish(self) -> bool:
        """Replies need a community token."""
        return self._reply_token is not None

    async def poll(self, source: Source, cursor: Mapping[str, Any]) -> Polled:
        """Search, then read the walls; on a rate limit keep what was found so far."""
        state = {"search": dict(cursor.get("search") or {}),
                 "walls": {k: dict(v) for k, v in (cursor.get("walls") or {}).items()}}
        found: list[RawMention] = []
        try:
            for query in self._queries:
                found += await self._search(source, query, state["search"])
            for wall in self._options.walls:
                found += await self._wall(source, wall, state["walls"].setdefault(str(wall), {}))
        except SourceUnavailable as failure:
            if not found:
                raise
            return Polled(found, state, retry_after=failure.retry_after, note=str(failure))
        return Polled(found, state)

    def picture_limits(self, source: Source, to: Mention | None = None) -> PictureLimits | None:
        """Wall photos: JPEG, PNG or GIF up to 50 MB (VK's photo upload limit
        [unverified here]); only with both a reply token and a photo token."""
        if self._reply_token is None or self._photo_token is None \
                or self._options.group_id is None:
            return None
        return PictureLimits(max_bytes=50 * MB, types=("image/png", "image/jpeg", "image/gif"))

    async def publish_picture(self, source: Source, to: Mention, text: str,
                              picture: Picture) -> Published:
        """Upload the picture to the community's wall photos, then comment with it."""
        if self._photo_token is None or self._options.group_id is None:
            raise PublishFailed("no photo_token_env or group_id is set for this VK source")
        group = str(abs(self._options.group_id))
        try:
            server = await self._call("photos.getWallUploadServer", {"group_id": group},
                                      token=self._photo_token)
            upload_url = server.get("upload_url") if isinstance(server, dict) else None
            if not isinstance(upload_url, str):
                raise PublishFailed("VK photos.getWallUploadServer: no upload_url")
            form = aiohttp.FormData()
            form.add_field("photo", picture.content, filename=picture.filename,
                           content_type=picture.content_type or "application/octet-stream")
            uploaded = await request_json(self._session, "POST", upload_url, data=form,
                                          what="VK photo upload")
            if not isinstance(uploaded, dict) or not uploaded.get("hash"):
                raise PublishFailed("VK photo upload: the server kept no photo")
            saved = await self._call("photos.saveWallPhoto", {
                "group_id": group, "server": str(uploaded.get("server", "")),
                "photo": str(uploaded.get("photo", "")), "hash": str(uploaded["hash"]),
            }, token=self._photo_token, method="POST")
        except SourceUnavailable as failure:
            raise PublishFailed(str(failure)) from None
        photo = saved[0] if isinstance(saved, list) and saved else None
        if not isinstance(photo, dict) or "id" not in photo or "owner_id" not in photo:
            raise PublishFailed("VK photos.saveWallPhoto: no photo in the answer")
        return await self._comment(to, text, f"photo{photo['owner_id']}_{photo['id']}")

    async def publish(self, source: Source, to: Mention, text: str) -> Published:
        """Comment under the post, answering the customer's comment."""
        return await self._comment(to, text, None)

    async def _comment(self, to: Mention, text: str, attachment: str | None) -> Published:
        if self._reply_token is None:
            raise PublishFailed("no reply_token_env is set for this VK source")
        parts = to.external_id.split("_")
        if len(parts) not in (2, 3) or not all(p.lstrip("-").isdigit() for p in parts):
            raise PublishFailed(f"not a VK post or comment id: {to.external_id}")
        owner, post = parts[0], parts[1]
        params = {"owner_id": owner, "post_id": post, "message": text}
        if len(parts) == 3:
            params["reply_to_comment"] = parts[2]
        if self._options.group_id is not None:
            params["from_group"] = str(self._options.group_id)
        if attachment is not None:
            params["attachments"] = attachment
        try:
            answer = await self._call("wall.createComment", params, token=self._reply_token,
                                      method="POST")
        except SourceUnavailable as failure:
            captcha = isinstance(failure, VkError) and failure.code == CAPTCHA_NEEDED
            raise PublishFailed(str(failure), reason=ANTI_SPAM if captcha else None) from None
        comment = answer.get("comment_id") if isinstance(answer, dict) else None
        if comment is None:
            raise PublishFailed("VK wall.createComment: no comment_id in the answer")
        return Published(external_id=f"{owner}_{post}_{comment}",
                         url=f"https://vk.com/wall{owner}_{post}?reply={comment}")

    async def _search(self, source: Source, query: str,
                      state: dict[str, Any]) -> list[RawMention]:
        entry = dict(state.get(query) or {})
        seen = list(entry.get("seen") or [])
        known = set(seen)
        newest = int(entry.get("newest") or 0)
        params: dict[str, str] = {"q": query, "count": "200", "extended": "1"}
        if newest:
            params["start_time"] = str(max(0, newest - OVERLAP_SECONDS))
        found = []
        for _ in range(MAX_PAGES):
            answer = await self._call("newsfeed.search", params)
            people = _people(answer)
            for item in answer.get("items") or []:
                mention = _post(source, item, people)
                if mention is None or mention.external_id in known:
                    continue
                known.add(mention.external_id)
                seen.append(mention.external_id)
                newest = max(newest, int(item.get("date") or 0))
                found.append(mention)
            next_from = answer.get("next_from")
            if not next_from:
                break
            params["start_from"] = str(next_from)
        state[query] = {"newest": newest, "seen": seen[-SEEN:]}
        return found

    async def _wall(self, source: Source, wall: int, state: dict[str, Any]) -> list[RawMention]:
        answer = await self._call("wall.get", {
            "owner_id": str(wall), "count": str(self._options.posts_per_wall)})
        counts = dict(state.get("comments") or {})
        last = int(state.get("last_comment") or 0)
        first = "comments" not in state
        found: list[RawMention] = []
        newest = last
        for post in answer.get("items") or []:
            post_id = str(post.get("id"))
            count = int((post.get("comments") or {}).get("count") or 0)
            if counts.get(post_id) == count:
                continue
            if count:
                # The first look only learns where the walls are (the newest comment,
                # replies included); history is not news.
                comments = await self._comments(source, wall, post_id,
                                                after=0 if first else last)
                if not first:
                    found += comments
                for mention in comments:
                    newest = max(newest, int(mention.external_id.rsplit("_", 1)[1]))
            counts[post_id] = count
        keep = {str(p.get("id")) for p in answer.get("items") or []}
        state["comments"] = {k: v for k, v in counts.items() if k in keep}
        state["last_comment"] = newest
        return found

    async def _comments(self, source: Source, wall: int, post: str, *,
                        after: int) -> list[RawMention]:
        found: list[RawMention] = []
        offset = 0
        while True:
            answer = await self._call("wall.getComments", {
                "owner_id": str(wall), "post_id": post, "sort": "desc", "count": "100",
                "offset": str(offset), "extended": "1", "thread_items_count": "10"})
            people = _people(answer)
            items = answer.get("items") or []
            older = False
            for item in items:
                thread = item.get("thread") or {}
                replies = thread.get("items") or []
                if int(thread.get("count") or 0) > len(replies):
                    # VK shows only a thread's first replies: a longer one is read by itself.
                    replies = await self._replies(wall, post, item, people, after=after)
                for comment in [item, *replies]:
                    if int(comment.get("id") or 0) <= after:
                        older = older or comment is item
                        continue
                    found.append(_comment(source, wall, post, comment, people))
            offset += len(items)
            if older or not items or offset >= int(answer.get("count") or 0):
                return found

    async def _replies(self, wall: int, post: str, top: Mapping[str, Any],
                       people: dict[int, Author], *, after: int) -> list[dict[str, Any]]:
        """Read a thread's replies, newest first, down to the first one seen before."""
        replies: list[dict[str, Any]] = []
        while True:
            answer = await self._call("wall.getComments", {
                "owner_id": str(wall), "post_id": post, "comment_id": str(top["id"]),
                "sort": "desc", "count": "100", "offset": str(len(replies)), "extended": "1"})
            people.update(_people(answer))
            items = answer.get("items") or []
            replies += items
            total = int(answer.get("current_level_count") or answer.get("count") or 0)
            if not items or int(items[-1].get("id") or 0) <= after or len(replies) >= total:
                return replies

    async def _call(self, name: str, params: Mapping[str, str], *, token: str | None = None,
                    method: str = "GET") -> Any:
        wait = self._last_call + self._spacing - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        self._last_call = time.monotonic()
        query = {**params, "v": VERSION, "access_token": token or self._token}
        url = f"{str(self._options.api_url).rstrip('/')}/{name}"
        if method == "POST":
            answer = await request_json(self._session, "POST", url, data=query,
                                        what=f"VK {name}")
        else:
            answer = await request_json(self._session, "GET", url, params=query,
                                        what=f"VK {name}")
        if not isinstance(answer, dict):
            raise SourceUnavailable(f"VK {name}: unexpected answer")
        error = answer.get("error")
        if isinstance(error, dict):
            raise VkError(name, int(error.get("error_code") or 0),
                          str(error.get("error_msg") or "unknown error"))
        return answer.get("response") or {}


def _people(answer: Mapping[str, Any]) -> dict[int, Author]:
    """The authors an `extended=1` answer describes, by their from_id."""
    people: dict[int, Author] = {}
    for profile in answer.get("profiles") or []:
        handle = profile.get("screen_name") or f"id{profile.get('id')}"
        name = " ".join(p for p in (profile.get("first_name"), profile.get("last_name")) if p)
        people[int(profile["id"])] = Author(id=str(profile["id"]), name=name or None,
                                            handle=handle, url=f"https://vk.com/{handle}")
    for group in answer.get("groups") or []:
        handle = group.get("screen_name") or f"club{group.get('id')}"
        people[-int(group["id"])] = Author(id=str(-int(group["id"])), name=group.get("name"),
                                           handle=handle, url=f"https://vk.com/{handle}")
    return people


def _author(from_id: int, people: Mapping[int, Author]) -> Author:
    if from_id in people:
        return people[from_id]
    handle = f"id{from_id}" if from_id > 0 else f"club{-from_id}"
    return Author(id=str(from_id), handle=handle, url=f"https://vk.com/{handle}")


def _post(source: Source, item: Mapping[str, Any],
          people: Mapping[int, Author]) -> RawMention | None:
    owner, post = item.get("owner_id"), item.get("id")
    if owner is None or post is None or not (item.get("text") or "").strip():
        return None
    from_id = int(item.get("from_id") or owner)
    return RawMention(
        source=source.name, external_id=f"{owner}_{post}", text=item["text"],
        published_at=datetime.fromtimestamp(int(item.get("date") or 0), UTC),
        url=f"https://vk.com/wall{owner}_{post}", author=_author(from_id, people),
    )


def _comment(source: Source, wall: int, post: str, comment: Mapping[str, Any],
             people: Mapping[int, Author]) -> RawMention:
    from_id = int(comment.get("from_id") or 0)
    comment_id = comment["id"]
    parents = comment.get("parents_stack") or []
    parent = comment.get("reply_to_comment") or (parents[-1] if parents else None)
    return RawMention(
        source=source.name, external_id=f"{wall}_{post}_{comment_id}",
        text=comment.get("text") or "",
        published_at=datetime.fromtimestamp(int(comment.get("date") or 0), UTC),
        url=f"https://vk.com/wall{wall}_{post}?reply={comment_id}",
        author=_author(from_id, people),
        # One customer's comments under one post are one conversation.
        thread_id=f"{wall}_{post}:{from_id}",
        parent_id=f"{wall}_{post}_{parent}" if parent else None,
    )
