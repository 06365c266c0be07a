"""A fake VK API (``https://api.vk.com/method/<name>``) for the mention collector.

Usage::

    async with FakeVK() as vk:
        vk.add_group(1, "VK API", screen_name="apiclub")
        post = vk.add_post(-1, "Kaspi не работает", datetime(2026, 11, 25, 9, tzinfo=UTC))
        # GET {vk.url}/method/newsfeed.search?q=kaspi&v=5.199&access_token={vk.token}

It speaks VK's wire format: GET query or POST form, ``access_token`` and ``v`` parameters,
answers ``{"response": ...}`` or, for every API error, HTTP 200 with ``{"error":
{"error_code", "error_msg", "request_params"}}`` (request_params echo the call without the
token, plus ``method`` and ``oauth``, as VK does). Shapes follow VKCOM/vk-api-schema v5.199
(``newsfeed_search_extended_response``, ``wall_wallpost_full``, ``wall_wall_comment``,
``comment_thread``, ``wall_createComment_response``) and the sample
``vk_newsfeed_search.json``.

Methods: ``newsfeed.search``, ``wall.get``, ``wall.getComments``, ``wall.createComment``.
Walls share one id sequence per owner for posts and comments, as on VK.

Limits and faults: more than `requests_per_second` (3) calls a second per token answer error 6
(toggle `rate_limits_enabled`; the window runs on the base's clock). ``fail_next_vk(method,
code)`` plays VK errors 6 / 9 / 29 (or any code); ``fail_next(method, 5xx)`` answers an nginx
HTML error page; ``fail_next(method, 429)`` and chaos "ratelimited" become error 6, since VK
never answers HTTP 429. See `tests.fakes.server` for slow/timeout/chaos faults.

Knowingly simplified: the query language is plain words (all must occur, case-insensitive
substring) and alternatives joined by `` OR ``; no morphology, phrases or exclusions. Search
``count`` is the number of posts matching in the time window (capped at 1000, VK's ceiling),
``total_count`` the number matching the query at any time. Counts over a method's maximum are
clamped, not rejected. Missing posts answer error 100. No attachments, reposts or pinned posts.
"""

from __future__ import annotations

import contextvars
import hashlib
import itertools
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from aiohttp import web

from tests.fakes.server import (
    Clock,
    FakeServer,
    Fault,
    Limit,
    Reply,
    SlidingWindow,
    read_fields,
)

API_VERSION = "5.199"
DEFAULT_TOKEN = "vk1.a.FakeSocialCareUserToken_0123456789abcdef"
DEFAULT_TOKEN_OWNER = 501  # the user the default token belongs to
DAY = 24 * 60 * 60
SEARCH_MAX_COUNT = 200
SEARCH_DEFAULT_COUNT = 30
SEARCH_RESULT_CEILING = 1000  # VK returns at most 1000 search results
WALL_MAX_COUNT = 100
WALL_DEFAULT_COUNT = 20
COMMENTS_MAX_COUNT = 100
COMMENTS_DEFAULT_COUNT = 10
THREAD_MAX_ITEMS = 10
DEFAULT_AVATAR = "https://vk.com/images/camera_{size}.png"

# Texts of the errors the fake answers (VKCOM/vk-api-schema errors.json descriptions).
ERROR_MESSAGES = {
    1: "Unknown error occurred",
    3: "Unknown method passed",
    5: "User authorization failed",
    6: "Too many requests per second",
    8: "Invalid request",
    9: "Flood control",
    10: "Internal server error",
    15: "Access denied",
    29: "Rate limit reached",
    100: "One of the parameters specified was missing or invalid",
    212: "Access to post comments denied",
    213: "Access to status replies denied",
    223: "Too many replies",
}

# Set by the request handler, read when an error echoes the request's parameters.
_request_params: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "vk_request_params", default=None
)


class VKApiFailure(Exception):
    """A VK API error, answered as HTTP 200 ``{"error": {...}}``."""

    def __init__(self, code: int, message: str | None = None) -> None:
        self.code = code
        self.message = message or ERROR_MESSAGES.get(code, "Unknown error occurred")
        super().__init__(self.message)


def invalid_param(detail: str) -> VKApiFailure:
    """Build error 100 with VK's "One of the parameters ..." prefix."""
    return VKApiFailure(100, f"{ERROR_MESSAGES[100]}: {detail}")


def unix_time(value: datetime | int) -> int:
    """Turn an aware datetime (or a Unix time) into VK's Unix seconds."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass an aware one (e.g. tzinfo=UTC)")
        return int(value.timestamp())
    return int(value)


def matches_query(query: str, text: str) -> bool:
    """Tell whether `text` matches VK-style `query`: words, and alternatives joined by OR."""
    folded = text.casefold()
    for alternative in re.split(r"\s+OR\s+", query.strip()):
        words = alternative.split()
        if words and all(word.casefold() in folded for word in words):
            return True
    return False


@dataclass
class VKPost:
    """A wall post as the fake stores it."""

    owner_id: int
    id: int
    from_id: int
    text: str
    date: int  # Unix seconds
    likes: int = 0
    reposts: int = 0
    views: int = 0
    signer_id: int | None = None

    @property
    def url(self) -> str:
        """Return the post's public address, ``https://vk.com/wall{owner}_{id}``."""
        return f"https://vk.com/wall{self.owner_id}_{self.id}"

    @property
    def at(self) -> datetime:
        """Return the post date as an aware UTC datetime."""
        return datetime.fromtimestamp(self.date, UTC)


@dataclass
class VKComment:
    """A comment on a wall post; replies live in the thread of their top-level comment."""

    owner_id: int
    post_id: int
    id: int
    from_id: int
    text: str
    date: int  # Unix seconds
    reply_to_comment: int | None = None
    reply_to_user: int | None = None
    parents_stack: list[int] = field(default_factory=list)
    likes: int = 0
    guid: str | None = None  # the createComment guid that made it, if any

    @property
    def thread_id(self) -> int | None:
        """Return the top-level comment whose thread holds this reply (None: top level)."""
        return self.parents_stack[0] if self.parents_stack else None

    @property
    def at(self) -> datetime:
        """Return the comment date as an aware UTC datetime."""
        return datetime.fromtimestamp(self.date, UTC)


class FakeVK(FakeServer):
    """A VK API with seeded walls, served at `url` (the ``https://api.vk.com`` stand-in)."""

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        token_owner_id: int = DEFAULT_TOKEN_OWNER,
        requests_per_second: int = 3,
        now: Callable[[], datetime] | None = None,
        clock: Clock | None = None,
        rate_limits: bool = True,
    ) -> None:
        super().__init__(clock=clock, rate_limits=rate_limits)
        self.token = token
        self.tokens: dict[str, int] = {token: token_owner_id}  # token -> the user (or -group)
        self.now: Callable[[], datetime] = now or (lambda: datetime.now(UTC))
        self.profiles: dict[int, dict[str, Any]] = {}
        self.groups: dict[int, dict[str, Any]] = {}
        self.created_comments: list[VKComment] = []
        self._posts: dict[tuple[int, int], VKPost] = {}
        self._comments: dict[tuple[int, int], VKComment] = {}  # (owner_id, comment id)
        self._ids: dict[int, itertools.count[int]] = {}
        self._per_token = SlidingWindow(requests_per_second, 1.0)
        self._methods: dict[str, Callable[[dict[str, str]], dict[str, Any]]] = {
            "newsfeed.search": self._newsfeed_search,
            "wall.get": self._wall_get,
            "wall.getComments": self._wall_get_comments,
            "wall.createComment": self._wall_create_comment,
            "photos.getWallUploadServer": self._photos_get_wall_upload_server,
            "photos.saveWallPhoto": self._photos_save_wall_photo,
        }
        # Wall photos: upload server number -> bytes posted there; (owner, id) -> bytes;
        # comment id -> its attachments.
        self.uploads: dict[int, bytes] = {}
        self.wall_photos: dict[tuple[int, int], bytes] = {}
        self.comment_attachments: dict[int, str] = {}
        self._photo_ids = itertools.count(457239017)

    # ------------------------------------------------------------------ server plumbing

    @property
    def url(self) -> str:
        """Return the API origin; methods are at ``{url}/method/<name>``."""
        return self.root_url

    def add_routes(self, app: web.Application) -> None:
        """Register ``/method/<name>`` for GET and POST."""
        app.router.add_route("*", "/method/{method}", self._handle)
        app.router.add_post("/upload/wall/{server}", self._handle_wall_upload)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        fields, _ = await read_fields(request)
        params = {name: str(value) for name, value in fields.items()}
        _request_params.set(params)
        handler = self._methods.get(method)
        failure = self._refusal(params) if handler is not None else VKApiFailure(3)
        if handler is None or failure is not None:
            reply = Reply(200, self.error_body(method, failure or VKApiFailure(3)))
            self.log(method, params, reply)
            return web.json_response(reply.body)
        call = handler

        async def apply() -> Reply:
            try:
                result = call(params)
            except VKApiFailure as exc:
                return Reply(200, self.error_body(method, exc))
            return Reply(200, {"response": result}, applied=True)

        return await self.run_call(request, method, params, apply)

    def _refusal(self, params: dict[str, str]) -> VKApiFailure | None:
        """Check the version and the token, as VK does before running a method."""
        if not params.get("v"):
            return VKApiFailure(8, "Invalid request: v (version) is required")
        token = params.get("access_token", "")
        if not token:
            return VKApiFailure(5, "User authorization failed: no access_token passed.")
        if token not in self.tokens:
            return VKApiFailure(5, "User authorization failed: invalid access_token (4).")
        return None

    def error_body(self, method: str, failure: VKApiFailure) -> dict[str, Any]:
        """Build VK's error envelope, echoing the request's parameters but not its token."""
        echoed = [
            {"key": key, "value": value}
            for key, value in (_request_params.get() or {}).items()
            if key != "access_token"
        ]
        echoed += [{"key": "method", "value": method}, {"key": "oauth", "value": "1"}]
        return {
            "error": {
                "error_code": failure.code,
                "error_msg": failure.message,
                "request_params": echoed,
            }
        }

    def fault_reply(self, method: str, fault: Fault) -> Reply:
        """Answer an injected fault: VK errors in HTTP 200, 5xx as nginx's HTML page."""
        if fault.status == 200:
            code, _, message = (fault.error or "1").partition("|")
            if not code.isdigit():  # fail_next(method, 200, error="some text"): a plain error 1
                code, message = "1", fault.error or ""
            return Reply(200, self.error_body(method, VKApiFailure(int(code), message or None)))
        if fault.status == 429:
            return self.ratelimited_reply(method, fault.retry_after)
        try:
            phrase = HTTPStatus(fault.status).phrase
        except ValueError:
            phrase = "Error"
        page = (
            f"<html>\r\n<head><title>{fault.status} {phrase}</title></head>\r\n<body>\r\n"
            f"<center><h1>{fault.status} {phrase}</h1></center>\r\n<hr><center>nginx</center>\r\n"
            "</body>\r\n</html>\r\n"
        )
        return Reply(fault.status, page, headers={"Content-Type": "text/html"})

    def ratelimited_reply(self, method: str, retry_after: int) -> Reply:
        """Answer error 6 in HTTP 200, as VK does (no Retry-After)."""
        return Reply(200, self.error_body(method, VKApiFailure(6)))

    def limits_for(self, method: str, params: dict[str, Any]) -> list[Limit]:
        """Count every call against its token's requests-per-second window."""
        return [(self._per_token, params.get("access_token", ""))]

    # ------------------------------------------------------------------ faults

    def fail_next_vk(
        self, method: str = "*", code: int = 6, *, message: str | None = None, times: int = 1
    ) -> None:
        """Answer the next `times` calls of `method` with VK error `code` (6, 9, 29, ...).

        The call is not applied; the answer is HTTP 200 ``{"error": {"error_code": code, ...}}``
        with VK's text for the code unless `message` is given.
        """
        error = str(code) if message is None else f"{code}|{message}"
        self.fail_next(method, 200, error=error, times=times)

    # ------------------------------------------------------------------ seeding

    def add_token(self, token: str, owner_id: int = DEFAULT_TOKEN_OWNER) -> None:
        """Accept `token` too, acting as user `owner_id` (negative: a community)."""
        self.tokens[token] = owner_id

    def add_profile(
        self, user_id: int, first_name: str, last_name: str, *, screen_name: str | None = None
    ) -> dict[str, Any]:
        """Add a user (``users_user_full`` as extended=1 answers carry it)."""
        profile = {
            "id": user_id,
            "first_name": first_name,
            "last_name": last_name,
            "can_access_closed": True,
            "is_closed": False,
            "sex": 0,
            "screen_name": screen_name or f"id{user_id}",
            "photo_50": DEFAULT_AVATAR.format(size=50),
            "photo_100": DEFAULT_AVATAR.format(size=100),
            "online": 0,
        }
        self.profiles[user_id] = profile
        return profile

    def add_group(
        self, group_id: int, name: str, *, screen_name: str | None = None, kind: str = "page"
    ) -> dict[str, Any]:
        """Add a community by its positive id (``groups_group_full``); its wall is -group_id."""
        group_id = abs(group_id)
        group = {
            "id": group_id,
            "name": name,
            "screen_name": screen_name or f"club{group_id}",
            "is_closed": 0,
            "type": kind,
            "is_admin": 0,
            "is_member": 0,
            "is_advertiser": 0,
            "photo_50": f"https://vk.com/images/community_50.png?g={group_id}",
            "photo_100": f"https://vk.com/images/community_100.png?g={group_id}",
            "photo_200": f"https://vk.com/images/community_200.png?g={group_id}",
        }
        self.groups[group_id] = group
        return group

    def _next_id(self, owner_id: int) -> int:
        return next(self._ids.setdefault(owner_id, itertools.count(1)))

    def _reserve_id(self, owner_id: int, used: int) -> None:
        counter = self._ids.setdefault(owner_id, itertools.count(1))
        current = next(counter)
        self._ids[owner_id] = itertools.count(max(current, used + 1))

    def add_post(
        self,
        owner_id: int,
        text: str,
        date: datetime | int,
        *,
        from_id: int | None = None,
        post_id: int | None = None,
        likes: int = 0,
        reposts: int = 0,
        views: int = 0,
        signer_id: int | None = None,
    ) -> VKPost:
        """Put a post on wall `owner_id` (negative: a community); `from_id` defaults to it."""
        if post_id is None:
            post_id = self._next_id(owner_id)
        else:
            self._reserve_id(owner_id, post_id)
        post = VKPost(
            owner_id=owner_id,
            id=post_id,
            from_id=owner_id if from_id is None else from_id,
            text=text,
            date=unix_time(date),
            likes=likes,
            reposts=reposts,
            views=views,
            signer_id=signer_id,
        )
        self._posts[(owner_id, post_id)] = post
        return post

    def add_comment(
        self,
        owner_id: int,
        post_id: int,
        text: str,
        date: datetime | int,
        from_id: int,
        reply_to_comment: int | None = None,
        *,
        likes: int = 0,
    ) -> VKComment:
        """Comment on post `post_id` of wall `owner_id` (a reply with `reply_to_comment`)."""
        if (owner_id, post_id) not in self._posts:
            raise KeyError(f"no post {owner_id}_{post_id}; add_post it first")
        return self._store_comment(
            owner_id, post_id, text, unix_time(date), from_id, reply_to_comment, likes=likes
        )

    def _store_comment(
        self,
        owner_id: int,
        post_id: int,
        text: str,
        date: int,
        from_id: int,
        reply_to_comment: int | None,
        *,
        likes: int = 0,
        guid: str | None = None,
    ) -> VKComment:
        parents: list[int] = []
        reply_to_user = None
        if reply_to_comment is not None:
            parent = self._comments.get((owner_id, reply_to_comment))
            if parent is None or parent.post_id != post_id:
                raise invalid_param("reply_to_comment is invalid")
            # VK threads are two levels deep: a reply to a reply joins the top comment's thread.
            parents = [parent.thread_id or parent.id]
            reply_to_user = parent.from_id
        comment = VKComment(
            owner_id=owner_id,
            post_id=post_id,
            id=self._next_id(owner_id),
            from_id=from_id,
            text=text,
            date=date,
            reply_to_comment=reply_to_comment,
            reply_to_user=reply_to_user,
            parents_stack=parents,
            likes=likes,
            guid=guid,
        )
        self._comments[(owner_id, comment.id)] = comment
        return comment

    # ------------------------------------------------------------------ queries for tests

    def posts(self, owner_id: int | None = None) -> list[VKPost]:
        """Return the seeded posts (of one wall), newest first."""
        posts = [p for p in self._posts.values() if owner_id is None or p.owner_id == owner_id]
        return sorted(posts, key=_newest_first)

    def post(self, owner_id: int, post_id: int) -> VKPost:
        """Return post `post_id` of wall `owner_id` (KeyError when there is none)."""
        return self._posts[(owner_id, post_id)]

    def comments(self, owner_id: int, post_id: int) -> list[VKComment]:
        """Return every comment of a post, replies included, oldest first."""
        found = [
            c for c in self._comments.values() if (c.owner_id, c.post_id) == (owner_id, post_id)
        ]
        return sorted(found, key=lambda c: c.id)

    # ------------------------------------------------------------------ rendering

    def render_post(self, post: VKPost) -> dict[str, Any]:
        """Render a post as ``wall_wallpost_full`` (the fields newsfeed.search answers)."""
        out: dict[str, Any] = {
            "id": post.id,
            "from_id": post.from_id,
            "owner_id": post.owner_id,
            "date": post.date,
            "marked_as_ads": 0,
            "post_type": "post",
            "text": post.text,
        }
        if post.signer_id is not None:
            out["signer_id"] = post.signer_id
        out.update(
            {
                "attachments": [],
                "post_source": {"type": "vk"},
                "comments": {
                    "can_post": 1,
                    "count": len(self.comments(post.owner_id, post.id)),
                    "groups_can_post": True,
                },
                "likes": {"can_like": 1, "count": post.likes, "user_likes": 0, "can_publish": 1},
                "reposts": {"count": post.reposts, "user_reposted": 0},
                "views": {"count": post.views},
                "is_favorite": False,
            }
        )
        return out

    def render_comment(
        self, comment: VKComment, *, need_likes: bool = False, thread_items: int = 0
    ) -> dict[str, Any]:
        """Render a comment as ``wall_wall_comment`` (with its ``comment_thread`` if top)."""
        out: dict[str, Any] = {
            "id": comment.id,
            "from_id": comment.from_id,
            "date": comment.date,
            "text": comment.text,
            "post_id": comment.post_id,
            "owner_id": comment.owner_id,
            "parents_stack": list(comment.parents_stack),
        }
        if comment.reply_to_comment is not None:
            out["reply_to_user"] = comment.reply_to_user
            out["reply_to_comment"] = comment.reply_to_comment
        if need_likes:
            out["likes"] = {
                "can_like": 1,
                "count": comment.likes,
                "user_likes": 0,
                "can_publish": 1,
            }
        if comment.thread_id is None:
            replies = self._thread(comment)
            out["thread"] = {
                "count": len(replies),
                "items": [
                    self.render_comment(reply, need_likes=need_likes)
                    for reply in replies[:thread_items]
                ],
                "can_post": True,
                "show_reply_button": True,
                "groups_can_post": True,
            }
        return out

    def _thread(self, top: VKComment) -> list[VKComment]:
        return [c for c in self.comments(top.owner_id, top.post_id) if c.thread_id == top.id]

    def _extended(self, owner_ids: Iterable[int | None]) -> dict[str, list[dict[str, Any]]]:
        profiles: dict[int, dict[str, Any]] = {}
        groups: dict[int, dict[str, Any]] = {}
        for owner in owner_ids:
            if owner is None or owner == 0:
                continue
            if owner > 0:
                profiles[owner] = self.profiles.get(owner) or _unknown_profile(owner)
            else:
                groups[-owner] = self.groups.get(-owner) or _unknown_group(-owner)
        return {"profiles": list(profiles.values()), "groups": list(groups.values())}

    # ------------------------------------------------------------------ methods

    def _newsfeed_search(self, params: dict[str, str]) -> dict[str, Any]:
        query = params.get("q", "")
        count = min(max(_int(params, "count", SEARCH_DEFAULT_COUNT), 0), SEARCH_MAX_COUNT)
        now = unix_time(self.now())
        start_time = _int(params, "start_time", now - DAY)
        end_time = _int(params, "end_time", now)
        matching = [p for p in self._posts.values() if query and matches_query(query, p.text)]
        found = sorted(
            (p for p in matching if start_time <= p.date <= end_time), key=_newest_first
        )[:SEARCH_RESULT_CEILING]
        start = 0
        page_number = 1
        if params.get("start_from"):
            page_number, position = self._search_cursor(params["start_from"], found)
            start = position + 1
        items = found[start : start + count]
        result: dict[str, Any] = {"items": [self.render_post(p) for p in items]}
        if items and start + len(items) < len(found):
            last = items[-1]
            result["next_from"] = f"{page_number + 1}/{last.owner_id}_{last.id}"
        result["count"] = len(found)
        result["total_count"] = len(matching)
        if _flag(params, "extended"):
            result.update(self._extended(o for p in items for o in (p.from_id, p.owner_id)))
        return result

    def _search_cursor(self, start_from: str, found: list[VKPost]) -> tuple[int, int]:
        """Decode ``next_from`` ("page/owner_post") into (page, index of its last post)."""
        match = re.fullmatch(r"(\d+)/(-?\d+)_(\d+)", start_from)
        post = self._posts.get((int(match[2]), int(match[3]))) if match else None
        if match is None or post is None:
            raise invalid_param("start_from is invalid")
        cursor = _newest_first(post)
        # The posts before the cursor were answered already, even if newer ones arrived since.
        position = sum(1 for p in found if _newest_first(p) <= cursor) - 1
        return int(match[1]), position

    def _owner(self, params: dict[str, str]) -> int:
        if "owner_id" in params:
            return _int(params, "owner_id", required=True)
        domain = params.get("domain", "").lower()
        for profile in self.profiles.values():
            if profile["screen_name"].lower() == domain:
                return int(profile["id"])
        for group in self.groups.values():
            if group["screen_name"].lower() == domain:
                return -int(group["id"])
        if domain:
            raise invalid_param("domain is invalid")
        return self.tokens[params["access_token"]]

    def _wall_get(self, params: dict[str, str]) -> dict[str, Any]:
        owner_id = self._owner(params)
        count = min(max(_int(params, "count", WALL_DEFAULT_COUNT), 0), WALL_MAX_COUNT)
        offset = max(_int(params, "offset", 0), 0)
        wall_filter = params.get("filter", "all")
        posts = self.posts(owner_id)
        if wall_filter == "owner":
            posts = [p for p in posts if p.from_id == owner_id]
        elif wall_filter == "others":
            posts = [p for p in posts if p.from_id != owner_id]
        items = posts[offset : offset + count]
        result: dict[str, Any] = {
            "count": len(posts),
            "items": [self.render_post(p) for p in items],
        }
        if _flag(params, "extended"):
            result.update(self._extended(o for p in items for o in (p.from_id, p.owner_id)))
        return result

    def _post_for(self, params: dict[str, str]) -> VKPost:
        owner_id = _int(params, "owner_id", required=True)
        post_id = _int(params, "post_id", required=True)
        post = self._posts.get((owner_id, post_id))
        if post is None:
            raise invalid_param("post_id is invalid")
        return post

    def _wall_get_comments(self, params: dict[str, str]) -> dict[str, Any]:
        post = self._post_for(params)
        count = min(max(_int(params, "count", COMMENTS_DEFAULT_COUNT), 0), COMMENTS_MAX_COUNT)
        offset = max(_int(params, "offset", 0), 0)
        thread_items = min(max(_int(params, "thread_items_count", 0), 0), THREAD_MAX_ITEMS)
        need_likes = _flag(params, "need_likes")
        every = self.comments(post.owner_id, post.id)
        if params.get("comment_id"):
            top = self._comments.get((post.owner_id, _int(params, "comment_id")))
            if top is None or top.post_id != post.id or top.thread_id is not None:
                raise invalid_param("comment_id is invalid")
            level = self._thread(top)
        else:
            level = [c for c in every if c.thread_id is None]
        if params.get("sort", "asc") == "desc":
            level = level[::-1]
        if params.get("start_comment_id"):
            start_id = _int(params, "start_comment_id")
            ids = [c.id for c in level]
            if start_id not in ids:
                raise invalid_param("start_comment_id is invalid")
            level = level[ids.index(start_id) :]
        items = level[offset : offset + count]
        preview = _int(params, "preview_length", 0)
        rendered = []
        for comment in items:
            item = self.render_comment(comment, need_likes=need_likes, thread_items=thread_items)
            if preview > 0:
                item["text"] = item["text"][:preview]
            rendered.append(item)
        result: dict[str, Any] = {
            "count": len(every),
            "items": rendered,
            "current_level_count": len(level),
            "can_post": True,
            "show_reply_button": True,
            "groups_can_post": True,
        }
        if _flag(params, "extended"):
            authors: list[int | None] = [c.from_id for c in items]
            authors += [
                r["from_id"] for c in rendered for r in c.get("thread", {}).get("items", [])
            ]
            result.update(self._extended(authors))
        return result

    def _wall_create_comment(self, params: dict[str, str]) -> dict[str, Any]:
        post = self._post_for(params)
        message = params.get("message", "")
        if not message.strip() and not params.get("attachments") and not params.get("sticker_id"):
            raise invalid_param("message is empty")
        for attachment in filter(None, params.get("attachments", "").split(",")):
            kind, _, ids = attachment.partition("photo")
            owner, _, photo = ids.partition("_")
            if kind or (_int({"o": owner}, "o"), _int({"p": photo}, "p")) not in self.wall_photos:
                raise invalid_param(f"attachments: no photo {attachment}")
        from_id = self.tokens[params["access_token"]]
        if params.get("from_group"):
            from_id = -abs(_int(params, "from_group"))
        guid = params.get("guid") or None
        if guid is not None:
            for earlier in self.created_comments:
                key = (earlier.owner_id, earlier.post_id, earlier.from_id, earlier.guid)
                if key == (post.owner_id, post.id, from_id, guid):
                    # VK's guid makes a re-sent comment answer the first one instead.
                    return {"comment_id": earlier.id, "parents_stack": earlier.parents_stack}
        reply_to = _int(params, "reply_to_comment") if params.get("reply_to_comment") else None
        comment = self._store_comment(
            post.owner_id,
            post.id,
            message,
            unix_time(self.now()),
            from_id,
            reply_to,
            guid=guid,
        )
        self.created_comments.append(comment)
        attachments = params.get("attachments", "")
        if attachments:
            self.comment_attachments[comment.id] = attachments
        return {"comment_id": comment.id, "parents_stack": list(comment.parents_stack)}

    # Wall photos, in three steps: photos.getWallUploadServer gives an upload_url, the
    # file is POSTed there as multipart field "photo" and answers {server, photo, hash},
    # photos.saveWallPhoto turns those into a photo whose "photo{owner_id}_{id}" a
    # comment attaches. Shapes as documented for the VK API's photos methods, e.g.
    # https://rubydoc.info/github/alsemyonov/vk/Vk/API/Photos/WallUploadResponse and
    # https://rdoc.info/github/alsemyonov/vk/Vk/API/Photos/Methods/SaveWallPhoto
    # (the wall upload server is documented for user tokens, not community ones).

    def _photos_get_wall_upload_server(self, params: dict[str, str]) -> dict[str, Any]:
        owner = self.tokens[params["access_token"]]
        if owner < 0:
            raise VKApiFailure(27, "Group authorization failed: method is unavailable with "
                               "group auth.")
        server = len(self.uploads) + 1
        self.uploads[server] = b""
        return {"upload_url": f"{self.root_url}/upload/wall/{server}", "album_id": -14,
                "user_id": owner}

    async def _handle_wall_upload(self, request: web.Request) -> web.StreamResponse:
        server = int(request.match_info["server"])
        _, files = await read_fields(request)
        upload = files.get("photo")
        if server not in self.uploads or upload is None or not upload.data:
            return web.json_response({"server": server, "photo": "[]", "hash": ""})
        self.uploads[server] = upload.data
        digest = hashlib.md5(upload.data).hexdigest()
        return web.json_response({"server": server, "photo": json.dumps(
            [{"photo": digest, "sizes": [], "kid": digest[:8]}]), "hash": digest})

    def _photos_save_wall_photo(self, params: dict[str, str]) -> Any:
        server = _int(params, "server")
        data = self.uploads.get(server, b"")
        if not data or params.get("hash") != hashlib.md5(data).hexdigest():
            raise invalid_param("photo: the upload is unknown or its hash does not match")
        owner = -abs(_int(params, "group_id")) if params.get("group_id") \
            else self.tokens[params["access_token"]]
        photo_id = next(self._photo_ids)
        self.wall_photos[(owner, photo_id)] = data
        self.uploads[server] = b""  # an upload is saved once
        return [{"id": photo_id, "owner_id": owner, "album_id": -14, "date": unix_time(self.now()),
                 "sizes": [], "text": ""}]


def _newest_first(post: VKPost) -> tuple[int, int, int]:
    return (-post.date, -post.id, post.owner_id)


def _int(params: dict[str, str], name: str, default: int = 0, *, required: bool = False) -> int:
    raw = params.get(name, "")
    if raw == "":
        if required:
            raise invalid_param(f"{name} is undefined")
        return default
    try:
        return int(raw)
    except ValueError:
        raise invalid_param(f"{name} not integer") from None


def _flag(params: dict[str, str], name: str) -> bool:
    return params.get(name, "0").lower() in {"1", "true"}


def _unknown_profile(user_id: int) -> dict[str, Any]:
    return {
        "id": user_id,
        "first_name": "User",
        "last_name": str(user_id),
        "can_access_closed": True,
        "is_closed": False,
        "sex": 0,
        "screen_name": f"id{user_id}",
        "photo_50": DEFAULT_AVATAR.format(size=50),
        "photo_100": DEFAULT_AVATAR.format(size=100),
        "online": 0,
    }


def _unknown_group(group_id: int) -> dict[str, Any]:
    return {
        "id": group_id,
        "name": f"Community {group_id}",
        "screen_name": f"club{group_id}",
        "is_closed": 0,
        "type": "page",
        "is_admin": 0,
        "is_member": 0,
        "is_advertiser": 0,
        "photo_50": f"https://vk.com/images/community_50.png?g={group_id}",
        "photo_100": f"https://vk.com/images/community_100.png?g={group_id}",
        "photo_200": f"https://vk.com/images/community_200.png?g={group_id}",
    }
