"""A fake TikTok API for Business (``https://business-api.tiktok.com/open_api/v1.3/…``).

Usage::

    async with FakeTikTok(now=clock.now) as tt:
        video = tt.add_video("New tariffs", at)
        tt.add_comment(video, "Kcell, where is my bonus?", username="aida_k", at=at)
        # GET {tt.url}/business/comment/list/?business_id=…&video_id=…  (Access-Token: …)

Endpoints, as the API for Business documents them (business-api.tiktok.com/portal/docs:
"Get video list", "Get comments", "Reply to a comment" —
https://business-api.tiktok.com/portal/docs/reply-to-a-comment/v1.3 — and "Refresh an
access token", `/tt_user/oauth2/refresh_token/`):

* ``GET /business/video/list/`` — ``business_id``, ``fields`` (a JSON array),
  ``max_count`` (≤ 20), ``cursor``; answers ``data.videos`` (``item_id``, ``create_time``,
  ``caption``, ``share_url``), ``data.cursor``, ``data.has_more``, newest first.
* ``GET /business/comment/list/`` — ``business_id``, ``video_id``, ``include_replies``,
  ``sort_field`` (``create_time`` | ``likes``), ``sort_order`` (``asc`` | ``desc``),
  ``cursor`` (an offset), ``max_count`` (≤ 30); answers ``data.comments`` (``comment_id``,
  ``video_id``, ``user_id``, ``create_time`` as Unix seconds in a string, ``text``,
  ``likes``, ``replies``, ``owner``, ``liked``, ``pinned``, ``status``, ``username``,
  ``display_name``, ``profile_image``, ``parent_comment_id`` on replies),
  ``data.cursor``, ``data.has_more``.
* ``POST /business/comment/reply/create/`` — JSON ``business_id``, ``video_id``,
  ``comment_id``, ``text`` (≤ 150 characters); answers ``data`` as a comment (the reply,
  ``owner: true``). Replies go under a top-level comment; a reply to a reply is refused.
* ``POST /tt_user/oauth2/refresh_token/`` — JSON ``client_id``, ``client_secret``,
  ``grant_type = "refresh_token"``, ``refresh_token``; answers ``data.access_token``,
  ``expires_in`` (86,400 s), ``refresh_token`` (a new one), ``refresh_token_expires_in``,
  ``open_id``, ``scope``.

Every answer is HTTP 200 with TikTok's envelope ``{"code", "message", "request_id",
"data"}``; ``code`` 0 is success. Errors: 40001 bad parameter (also a refused refresh),
40100 too many requests, 40102 access token expired, 40105 access token invalid or
revoked. 40105's wording is from answers quoted on Q&A sites; 40100 and 40102 follow the
API's return-code list as commonly cited, which this fake's author could not re-read in
the stored documentation — check them against the portal's "Return codes" page.
The ``Access-Token`` header carries the token (no "Bearer"). Tokens expire
`token_seconds` after they are issued, by `now`.

Rate limit: `requests_per_minute` calls a minute per access token across the read
endpoints (a sliding window on the base's clock), then 40100. ``fail_next(endpoint,
429)`` plays 40100 too; ``fail_next(endpoint, 500)`` an HTTP 500. `expire_tokens()`
makes every issued access token expired at once.

Knowingly simplified: with ``include_replies=true`` replies are listed among the
comments (each with its ``parent_comment_id``) in the same order; ``status`` is always
``PUBLIC``; no hidden, pinned or deleted comments, no photo posts.
"""

from __future__ import annotations

import itertools
import json
import secrets
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from tests.fakes.server import Clock, FakeServer, Fault, Limit, Reply, SlidingWindow

BUSINESS_ID = "-000kcellBusinessOpenId0001"
USERNAME = "kcell_kz"
APP_ID = "7300000000000000001"
APP_SECRET = "tiktok-app-secret-for-tests"
PREFIX = "/open_api/v1.3"
VIDEO_LIST = "business.video.list"
COMMENT_LIST = "business.comment.list"
REPLY_CREATE = "business.comment.reply.create"
REFRESH = "tt_user.oauth2.refresh_token"
PATHS = {
    ("GET", "/business/video/list/"): VIDEO_LIST,
    ("GET", "/business/comment/list/"): COMMENT_LIST,
    ("POST", "/business/comment/reply/create/"): REPLY_CREATE,
    ("POST", "/tt_user/oauth2/refresh_token/"): REFRESH,
}
MESSAGES = {
    40001: "Invalid parameter",
    40100: "Too many requests. Please retry in some time.",
    40102: "Access token has expired.",
    40105: "Access token is incorrect or has been revoked.",
}


class TikTokError(Exception):
    """A TikTok return code other than 0."""

    def __init__(self, code: int, message: str | None = None) -> None:
        super().__init__(message or MESSAGES.get(code, "Error"))
        self.code = code
        self.message = message or MESSAGES.get(code, "Error")


@dataclass
class TikTokVideo:
    """A video of the business account."""

    item_id: str
    caption: str
    at: datetime

    @property
    def share_url(self) -> str:
        """The video's public link."""
        return f"https://www.tiktok.com/@{USERNAME}/video/{self.item_id}"


@dataclass
class TikTokComment:
    """A comment or a reply under a video."""

    comment_id: str
    video_id: str
    text: str
    at: datetime
    username: str
    display_name: str
    user_id: str
    owner: bool = False
    parent_comment_id: str | None = None
    replies: int = 0

    def render(self) -> dict[str, Any]:
        """The comment as the API answers it."""
        body: dict[str, Any] = {
            "comment_id": self.comment_id, "video_id": self.video_id, "user_id": self.user_id,
            "create_time": str(int(self.at.timestamp())), "text": self.text, "likes": 0,
            "replies": self.replies, "owner": self.owner, "liked": False, "pinned": False,
            "status": "PUBLIC", "username": self.username, "display_name": self.display_name,
            "profile_image": f"https://p16.tiktokcdn.example/{self.user_id}.jpeg",
        }
        if self.parent_comment_id:
            body["parent_comment_id"] = self.parent_comment_id
        return body


@dataclass
class _Token:
    value: str
    expires_at: datetime


@dataclass
class _Tokens:
    access: dict[str, _Token] = field(default_factory=dict)
    refresh: set[str] = field(default_factory=set)


class FakeTikTok(FakeServer):
    """The business account's videos and comments, its tokens and its rate limit."""

    def __init__(self, *, now: Callable[[], datetime] | None = None, clock: Clock | None = None,
                 rate_limits: bool = True, requests_per_minute: int = 60,
                 token_seconds: int = 86_400) -> None:
        super().__init__(clock=clock, rate_limits=rate_limits)
        self.now = now or (lambda: datetime.now(UTC))
        self.token_seconds = token_seconds
        self.videos: list[TikTokVideo] = []
        self.comments: list[TikTokComment] = []
        self.replies_created: list[TikTokComment] = []
        self._tokens = _Tokens()
        self._ids = itertools.count(7_400_000_000_000_000_001)
        self._window = SlidingWindow(requests_per_minute, 60.0)
        self.access_token = self.issue_access_token()
        self.refresh_token = self.issue_refresh_token()

    @property
    def url(self) -> str:
        """The API's base URL (`api_url` of a source)."""
        return self.root_url + PREFIX

    # ------------------------------------------------------------------ content and tokens

    def issue_access_token(self) -> str:
        """Issue a new valid access token."""
        value = "act." + secrets.token_hex(16)
        self._tokens.access[value] = _Token(
            value, self.now() + timedelta(seconds=self.token_seconds))
        return value

    def issue_refresh_token(self) -> str:
        """Issue a new valid refresh token."""
        value = "rft." + secrets.token_hex(16)
        self._tokens.refresh.add(value)
        return value

    def expire_tokens(self) -> None:
        """Make every access token issued so far expired."""
        past = self.now() - timedelta(seconds=1)
        for token in self._tokens.access.values():
            token.expires_at = past

    def add_video(self, caption: str, at: datetime) -> TikTokVideo:
        """Publish a video on the business account."""
        video = TikTokVideo(str(next(self._ids)), caption, at)
        self.videos.append(video)
        return video

    def add_comment(self, video: TikTokVideo, text: str, *, username: str, at: datetime,
                    reply_to: TikTokComment | None = None, owner: bool = False,
                    display_name: str | None = None) -> TikTokComment:
        """Add a customer's (or, `owner`, the account's) comment or reply."""
        comment = TikTokComment(
            str(next(self._ids)), video.item_id, text, at, username,
            display_name or username.replace("_", " ").title(),
            user_id=str(zlib.crc32(username.encode())), owner=owner,
            parent_comment_id=reply_to.comment_id if reply_to else None)
        if reply_to is not None:
            reply_to.replies += 1
        self.comments.append(comment)
        return comment

    # ------------------------------------------------------------------ HTTP

    def add_routes(self, app: web.Application) -> None:
        """Serve the endpoints under /open_api/v1.3."""
        app.router.add_route("*", PREFIX + "/{tail:.*}", self._handle)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["tail"]
        method = PATHS.get((request.method, path))
        params: dict[str, Any] = dict(request.query)
        if request.method == "POST":
            try:
                body = json.loads(await request.read() or b"{}")
            except ValueError:
                body = None
            params.update(body if isinstance(body, dict) else {"_body": "not JSON"})
        token = request.headers.get("Access-Token")
        logged = {**params, "_token": token}
        if method is None:
            reply = Reply(404, {"code": 40400, "message": "Not Found", "data": {}})
            self.log(f"{request.method} {path}", logged, reply)
            return _response(reply)

        async def apply() -> Reply:
            try:
                if method != REFRESH:
                    self._check_token(token)
                data, applied = self._apply(method, params)
            except TikTokError as error:
                return Reply(200, self._envelope(error.code, error.message, {}))
            return Reply(200, self._envelope(0, "OK", data), applied=applied)

        return await self.run_call(request, method, logged, apply)

    def _envelope(self, code: int, message: str, data: dict[str, Any]) -> dict[str, Any]:
        return {"code": code, "message": message,
                "request_id": self.now().strftime("%Y%m%d%H%M%S") + secrets.token_hex(6).upper(),
                "data": data}

    def _check_token(self, token: str | None) -> None:
        found = self._tokens.access.get(token or "")
        if found is None:
            raise TikTokError(40105)
        if found.expires_at <= self.now():
            raise TikTokError(40102)

    def limits_for(self, method: str, params: dict[str, Any]) -> list[Limit]:
        """Count the read calls per access token in a one-minute window."""
        if method in (VIDEO_LIST, COMMENT_LIST):
            return [(self._window, params.get("_token"))]
        return []

    def ratelimited_reply(self, method: str, retry_after: int) -> Reply:
        """TikTok's rate limit: HTTP 200, code 40100."""
        return Reply(200, self._envelope(40100, MESSAGES[40100], {}))

    def fault_reply(self, method: str, fault: Fault) -> Reply:
        """A 429 fault is TikTok's 40100; others are bare HTTP errors."""
        if fault.status == 429:
            return self.ratelimited_reply(method, fault.retry_after)
        return Reply(fault.status, {"code": 50000, "message": fault.error or "System error",
                                    "data": {}})

    # ------------------------------------------------------------------ the endpoints

    def _apply(self, method: str, params: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        if method == REFRESH:
            return self._refresh(params), True
        if str(params.get("business_id") or "") != BUSINESS_ID:
            raise TikTokError(40001, "business_id: the account is not authorized for this app")
        if method == VIDEO_LIST:
            return self._video_list(params), False
        if method == COMMENT_LIST:
            return self._comment_list(params), False
        return self._reply(params), True

    def _video_list(self, params: dict[str, Any]) -> dict[str, Any]:
        try:
            fields = json.loads(str(params.get("fields") or "[]"))
        except ValueError:
            raise TikTokError(40001, "fields: must be a JSON array") from None
        count, start = _int(params, "max_count", 20, 1, 20), _int(params, "cursor", 0, 0, 10**6)
        ordered = sorted(self.videos, key=lambda v: v.at, reverse=True)
        page = ordered[start:start + count]
        rendered = [{"item_id": v.item_id, "create_time": int(v.at.timestamp()),
                     "caption": v.caption, "share_url": v.share_url} for v in page]
        if fields:
            rendered = [{k: v for k, v in r.items() if k in fields or k == "item_id"}
                        for r in rendered]
        return {"videos": rendered, "cursor": start + len(page),
                "has_more": start + len(page) < len(ordered)}

    def _comment_list(self, params: dict[str, Any]) -> dict[str, Any]:
        video = str(params.get("video_id") or "")
        if not any(v.item_id == video for v in self.videos):
            raise TikTokError(40001, "video_id: the video does not exist")
        if params.get("sort_field", "create_time") not in ("create_time", "likes") \
                or params.get("sort_order", "desc") not in ("asc", "desc"):
            raise TikTokError(40001, "sort_field or sort_order: not a valid value")
        count, start = _int(params, "max_count", 10, 1, 30), _int(params, "cursor", 0, 0, 10**6)
        replies = str(params.get("include_replies", "false")).lower() == "true"
        found = [c for c in self.comments
                 if c.video_id == video and (replies or c.parent_comment_id is None)]
        found.sort(key=lambda c: (c.at, int(c.comment_id)),
                   reverse=params.get("sort_order", "desc") == "desc")
        page = found[start:start + count]
        return {"comments": [c.render() for c in page], "cursor": start + len(page),
                "has_more": start + len(page) < len(found)}

    def _reply(self, params: dict[str, Any]) -> dict[str, Any]:
        text, target = params.get("text"), str(params.get("comment_id") or "")
        if not isinstance(text, str) or not text.strip() or len(text) > 150:
            raise TikTokError(40001, "text: 1 to 150 characters are required")
        parent = next((c for c in self.comments if c.comment_id == target
                       and c.video_id == str(params.get("video_id") or "")), None)
        if parent is None:
            raise TikTokError(40001, "comment_id: the comment does not exist on this video")
        if parent.parent_comment_id is not None:
            raise TikTokError(40001, "comment_id: replies can only be made to a top comment")
        video = next(v for v in self.videos if v.item_id == parent.video_id)
        reply = self.add_comment(video, text, username=USERNAME, at=self.now(),
                                 reply_to=parent, owner=True, display_name="Kcell")
        self.replies_created.append(reply)
        return reply.render()

    def _refresh(self, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("client_id") != APP_ID or params.get("client_secret") != APP_SECRET:
            raise TikTokError(40001, "client_id or client_secret: invalid app credentials")
        if params.get("grant_type") != "refresh_token":
            raise TikTokError(40001, "grant_type: must be refresh_token")
        old = str(params.get("refresh_token") or "")
        if old not in self._tokens.refresh:
            raise TikTokError(40001, "refresh_token: invalid or expired refresh token")
        self._tokens.refresh.discard(old)  # rotated: the old one stops working
        self.access_token, self.refresh_token = (self.issue_access_token(),
                                                 self.issue_refresh_token())
        return {"access_token": self.access_token, "expires_in": self.token_seconds,
                "refresh_token": self.refresh_token, "refresh_token_expires_in": 31_536_000,
                "open_id": BUSINESS_ID, "scope": "user.info.basic,video.list,comment.list,"
                "comment.list.manage"}


def _int(params: dict[str, Any], name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name, default)
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise TikTokError(40001, f"{name}: must be an integer") from None
    if not low <= value <= high:
        raise TikTokError(40001, f"{name}: must be between {low} and {high}")
    return value


def _response(reply: Reply) -> web.Response:
    return web.json_response(reply.body, status=reply.status, headers=reply.headers)
