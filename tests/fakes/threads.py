"""A fake Threads API (``https://graph.threads.net/v1.0/…``).

Usage::

    async with FakeThreads(now=clock.now) as th:
        post = th.add_post("New tariffs are here", at)            # the brand's post
        th.add_reply(post, "Kcell, my bonus vanished", username="aida_k", at=at)
        # GET {th.url}/{post.id}/conversation?fields=…&access_token={th.token}

Endpoints and shapes from Meta's Threads documentation:

* https://developers.facebook.com/documentation/threads/reference/reply-management —
  ``GET /{media-id}/conversation`` (every reply, nested too, flattened; ``reverse``
  true = newest first, the default; ``before`` / ``after`` cursors) with the fields
  ``id, text, username, timestamp, permalink, replied_to, root_post, is_reply,
  is_reply_owned_by_me``;
* ``GET /{user-id}/threads`` (the profile's posts, newest first) and
  ``GET /{user-id}/mentions`` (posts mentioning the profile);
* https://developers.facebook.com/documentation/threads/retrieve-and-manage-replies/create-replies
  — a reply is ``POST /{user-id}/threads`` with ``media_type=TEXT``, ``text``,
  ``reply_to_id`` (a container id answered), then ``POST /{user-id}/threads_publish``
  with ``creation_id`` (the published reply's id answered); a container is published once;
* https://developers.facebook.com/documentation/threads/retrieve-and-manage-replies —
  1,000 API replies per profile in a moving 24 hours, read at
  ``GET /{user-id}/threads_publishing_limit?fields=reply_quota_usage,reply_config``;
* https://developers.facebook.com/docs/threads/get-started/long-lived-tokens/ —
  ``GET /refresh_access_token?grant_type=th_refresh_token&access_token=…`` (no version in
  the path) refreshes an unexpired long-lived token for 60 days: ``{"access_token",
  "token_type": "bearer", "expires_in"}``; an expired one cannot be refreshed.

Webhooks (https://developers.facebook.com/docs/threads/webhooks): `verify` plays the
subscription check (``GET ?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…``);
`reply_webhook` / `mention_webhook` build a notification as documented — ``{"app_id",
"topic": "moderate" | "interaction", "target_id", "time", "subscription_id",
"has_uid_field": false, "values": {"value": {…the media object…}, "field": "replies" |
"mentions"}}`` — and `deliver` POSTs it serialised as Meta serialises its webhooks and
signed with the Threads app secret (``X-Hub-Signature-256: sha256=<hex HMAC-SHA256>``).
The documentation shows one notification per delivery and does not say how Meta retries.

Lists page as ``{"data": [...], "paging": {"cursors": {"before", "after"}, "next"}}``
(``next`` only when more remain). Errors use the Graph envelope ``{"error": {"message",
"type", "code", "error_subcode", "fbtrace_id"}}``: an expired token is HTTP 400 code 190
(subcode 463), an unknown one 190 too; a rate limit is HTTP 400 code 4 ("Application
request limit reached") after `requests_per_hour` calls an hour per token.
``fail_next(method, 429)`` plays that code 4; other statuses a Graph error of that status.

Knowingly simplified: text posts only; no hidden replies, quotes or reposts; a container
can be published at once (no 30-second processing wait for text).
"""

from __future__ import annotations

import base64
import binascii
import itertools
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web

from tests.fakes.meta import Handshake, WebhookDelivery, meta_json, sign
from tests.fakes.server import Clock, FakeServer, Fault, Limit, Reply, SlidingWindow

USER_ID = "17841400000000001"
APP_ID = "1290000000000001"
APP_SECRET = "threads-app-secret-for-tests"
USERNAME = "kcell_kz"
THREADS, CONVERSATION, MENTIONS = "threads.list", "conversation", "mentions"
CREATE, PUBLISH, LIMIT, REFRESH = "threads.create", "threads_publish", "publishing_limit", \
    "refresh_access_token"
REPLY_QUOTA = 1000
TOKEN_DAYS = 60


class GraphError(Exception):
    """A Graph API error."""

    def __init__(self, status: int, code: int, message: str, *, subcode: int | None = None,
                 kind: str = "OAuthException") -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.subcode, self.kind = subcode, kind

    def body(self) -> dict[str, Any]:
        """The Graph error envelope."""
        error: dict[str, Any] = {"message": self.message, "type": self.kind, "code": self.code,
                                 "fbtrace_id": "A" + secrets.token_hex(10)}
        if self.subcode is not None:
            error["error_subcode"] = self.subcode
        return {"error": error}


@dataclass
class ThreadsPost:
    """A post or a reply on Threads."""

    id: str
    text: str
    username: str
    at: datetime
    replied_to: str | None = None
    root: str | None = None
    mentions_brand: bool = False

    def render(self, fields: set[str]) -> dict[str, Any]:
        """The media object with the fields asked for (``id`` always)."""
        body: dict[str, Any] = {
            "id": self.id, "text": self.text, "username": self.username,
            "timestamp": self.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+0000"),
            "permalink": f"https://www.threads.net/@{self.username}/post/C{self.id[-8:]}",
            "media_product_type": "THREADS", "media_type": "TEXT_POST",
            "is_reply": self.replied_to is not None,
            "is_reply_owned_by_me": self.replied_to is not None and self.username == USERNAME}
        if self.replied_to:
            body["replied_to"] = {"id": self.replied_to}
            body["root_post"] = {"id": self.root}
        return {k: v for k, v in body.items() if k in fields or k == "id"}


class FakeThreads(FakeServer):
    """One brand profile's posts, the replies and mentions around them, its token."""

    def __init__(self, *, now: Callable[[], datetime] | None = None, clock: Clock | None = None,
                 rate_limits: bool = True, requests_per_hour: int = 200) -> None:
        super().__init__(clock=clock, rate_limits=rate_limits)
        self.now = now or (lambda: datetime.now(UTC))
        self.posts: list[ThreadsPost] = []
        self.published: list[ThreadsPost] = []
        self._containers: dict[str, dict[str, str]] = {}
        self._tokens: dict[str, datetime] = {}
        self._ids = itertools.count(18_000_000_000_000_001)
        self._window = SlidingWindow(requests_per_hour, 3600.0)
        self.token = self.issue_token()
        self.app_secret = APP_SECRET
        self.deliveries: list[WebhookDelivery] = []
        self.handshakes: list[Handshake] = []

    @property
    def url(self) -> str:
        """The API's versioned base URL (`api_url` of a source)."""
        return self.root_url + "/v1.0"

    def issue_token(self, *, days: float = TOKEN_DAYS) -> str:
        """Issue a long-lived token valid for `days`."""
        token = "THQVJ" + secrets.token_urlsafe(24)
        self._tokens[token] = self.now() + timedelta(days=days)
        return token

    def expire_tokens(self) -> None:
        """Make every token issued so far expired."""
        for token in self._tokens:
            self._tokens[token] = self.now() - timedelta(seconds=1)

    def add_post(self, text: str, at: datetime, *, username: str = USERNAME,
                 mentions_brand: bool = False) -> ThreadsPost:
        """A post: the brand's own, or (another username) someone's, maybe mentioning it."""
        post = ThreadsPost(str(next(self._ids)), text, username, at,
                           mentions_brand=mentions_brand)
        self.posts.append(post)
        return post

    def add_reply(self, to: ThreadsPost, text: str, *, username: str, at: datetime
                  ) -> ThreadsPost:
        """A reply to a post or to another reply."""
        reply = ThreadsPost(str(next(self._ids)), text, username, at, replied_to=to.id,
                            root=to.root or to.id)
        self.posts.append(reply)
        return reply

    # ------------------------------------------------------------------ webhooks

    def reply_webhook(self, reply: ThreadsPost) -> dict[str, Any]:
        """The `replies` notification of a reply on the profile's post."""
        root = next(p for p in self.posts if p.id == reply.root)
        value = reply.render({"id", "username", "text", "media_type", "permalink",
                              "timestamp", "replied_to", "root_post"})
        value["root_post"] = {"id": root.id, "owner_id": USER_ID, "username": root.username}
        value["shortcode"] = value["permalink"].rsplit("/", 1)[-1]
        return self._notification("moderate", root.id, "replies", value)

    def mention_webhook(self, post: ThreadsPost) -> dict[str, Any]:
        """The `mentions` notification of a post that tags the profile."""
        value = post.render({"id", "username", "text", "media_type", "permalink",
                             "timestamp"})
        value.update(shortcode=value["permalink"].rsplit("/", 1)[-1], is_quote_post=False,
                     has_replies=False)
        return self._notification("interaction", post.id, "mentions", value)

    def _notification(self, topic: str, target: str, field: str,
                      value: dict[str, Any]) -> dict[str, Any]:
        return {"app_id": APP_ID, "topic": topic, "target_id": target,
                "time": int(self.now().timestamp()), "subscription_id": "2345670000000001",
                "has_uid_field": False, "values": {"value": value, "field": field}}

    async def deliver(self, body: dict[str, Any] | bytes, url: str, *,
                      signature: str | None = None) -> WebhookDelivery:
        """POST a notification to the app, signed with the app secret.

        `signature`: None signs correctly; ``"bad"`` signs with a wrong secret;
        ``"missing"`` sends none. A bytes `body` is sent verbatim."""
        raw = body if isinstance(body, bytes) else meta_json(body)
        headers = {"Content-Type": "application/json", "User-Agent": "facebookexternalua"}
        if signature is None:
            headers["X-Hub-Signature-256"] = sign(raw, self.app_secret)
        elif signature == "bad":
            headers["X-Hub-Signature-256"] = sign(raw, self.app_secret + "-wrong")
        elif signature != "missing":
            headers["X-Hub-Signature-256"] = signature
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session, \
                session.post(url, data=raw, headers=headers) as response:
            delivery = WebhookDelivery(body, raw, headers, response.status,
                                       await response.text())
        self.deliveries.append(delivery)
        return delivery

    async def verify(self, url: str, verify_token: str, challenge: str = "1158201444"
                     ) -> tuple[int, str]:
        """GET the callback URL as Meta's subscription check does; return (status, body)."""
        params = {"hub.mode": "subscribe", "hub.verify_token": verify_token,
                  "hub.challenge": challenge}
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session, \
                session.get(url, params=params) as response:
            status, text = response.status, await response.text()
        self.handshakes.append(Handshake(params, status, text))
        return status, text

    # ------------------------------------------------------------------ HTTP

    def add_routes(self, app: web.Application) -> None:
        """The Graph-style routes under /v1.0 and the unversioned token refresh."""
        app.router.add_get("/refresh_access_token", self._refresh)
        app.router.add_route("*", "/v1.0/{node}/{edge}", self._edge)

    async def _edge(self, request: web.Request) -> web.StreamResponse:
        node, edge = request.match_info["node"], request.match_info["edge"]
        fields: dict[str, Any] = dict(request.query)
        if request.method == "POST":
            fields.update({k: str(v) for k, v in (await request.post()).items()})
        method = {("GET", "threads"): THREADS, ("GET", "conversation"): CONVERSATION,
                  ("GET", "mentions"): MENTIONS, ("POST", "threads"): CREATE,
                  ("POST", "threads_publish"): PUBLISH,
                  ("GET", "threads_publishing_limit"): LIMIT}.get((request.method, edge))
        logged = {**fields, "_node": node}
        if method is None:
            reply = Reply(400, GraphError(400, 100, f"Unsupported {request.method} request: "
                                                    f"{edge}", kind="GraphMethodException").body())
            self.log(f"{request.method} {edge}", logged, reply)
            return _json(reply)

        async def apply() -> Reply:
            try:
                self._authorized(fields.get("access_token"))
                body, applied = self._apply(method, node, fields, request)
            except GraphError as error:
                return Reply(error.status, error.body())
            return Reply(200, body, applied=applied)

        return await self.run_call(request, method, logged, apply)

    def _authorized(self, token: str | None) -> None:
        until = self._tokens.get(token or "")
        if until is None:
            raise GraphError(400, 190, "Invalid OAuth access token - Cannot parse access token")
        if until <= self.now():
            raise GraphError(400, 190, "Error validating access token: Session has expired.",
                             subcode=463)

    def _apply(self, method: str, node: str, fields: dict[str, Any],
               request: web.Request) -> tuple[dict[str, Any], bool]:
        if method in (THREADS, MENTIONS, CREATE, PUBLISH, LIMIT) and node not in (USER_ID, "me"):
            raise GraphError(400, 100, "Unsupported get request. Object with ID "
                                       f"'{node}' does not exist", kind="GraphMethodException")
        wanted = set(str(fields.get("fields") or "id").split(","))
        if method == THREADS:
            own = [p for p in self.posts if p.username == USERNAME and p.replied_to is None]
            return self._page(own, wanted, fields, request), False
        if method == MENTIONS:
            return self._page([p for p in self.posts if p.mentions_brand], wanted, fields,
                              request), False
        if method == CONVERSATION:
            if not any(p.id == node and p.replied_to is None for p in self.posts):
                raise GraphError(400, 100, f"Object with ID '{node}' does not exist",
                                 kind="GraphMethodException")
            replies = [p for p in self.posts if p.root == node]
            return self._page(replies, wanted, fields, request,
                              newest_first=fields.get("reverse", "true") != "false"), False
        if method == LIMIT:
            day_ago = self.now() - timedelta(days=1)
            used = sum(1 for p in self.published if p.at > day_ago)
            return {"data": [{"reply_quota_usage": used, "reply_config": {
                "quota_total": REPLY_QUOTA, "quota_duration": 86400}}]}, False
        if method == CREATE:
            return self._create(fields), True
        return self._publish(fields), True

    def _page(self, items: list[ThreadsPost], wanted: set[str], fields: dict[str, Any],
              request: web.Request, *, newest_first: bool = True) -> dict[str, Any]:
        ordered = sorted(items, key=lambda p: (p.at, p.id), reverse=newest_first)
        try:
            limit = max(1, min(100, int(fields.get("limit", 25))))
            start = _offset(fields["after"]) if fields.get("after") else 0
        except (ValueError, binascii.Error):
            raise GraphError(400, 100, "Invalid parameter", kind="OAuthException") from None
        page = ordered[start:start + limit]
        body: dict[str, Any] = {"data": [p.render(wanted) for p in page]}
        if page:
            cursors = {"before": _cursor(start), "after": _cursor(start + len(page))}
            body["paging"] = {"cursors": cursors}
            if start + len(page) < len(ordered):
                query = {k: v for k, v in fields.items() if k != "before"}
                query["after"] = cursors["after"]
                body["paging"]["next"] = f"{request.url.with_query(None)}?{urlencode(query)}"
        return body

    def _create(self, fields: dict[str, Any]) -> dict[str, Any]:
        if fields.get("media_type") != "TEXT":
            raise GraphError(400, 100, "Param media_type must be one of {TEXT, IMAGE, VIDEO, "
                                       "CAROUSEL}", kind="OAuthException")
        text = str(fields.get("text") or "")
        if not text.strip() or len(text.encode()) > 500:
            raise GraphError(400, 100, "Param text must be 1 to 500 characters")
        target = fields.get("reply_to_id")
        if target is not None and not any(p.id == target for p in self.posts):
            raise GraphError(400, 100, f"Object with ID '{target}' does not exist",
                             kind="GraphMethodException")
        container = str(next(self._ids))
        self._containers[container] = {"text": text, "reply_to_id": str(target or "")}
        return {"id": container}

    def _publish(self, fields: dict[str, Any]) -> dict[str, Any]:
        container = self._containers.pop(str(fields.get("creation_id") or ""), None)
        if container is None:
            raise GraphError(400, 24, "The requested resource does not exist",
                             subcode=4279009)
        day_ago = self.now() - timedelta(days=1)
        if container["reply_to_id"] and sum(1 for p in self.published if p.at > day_ago) \
                >= REPLY_QUOTA:
            raise GraphError(400, 4, "Application request limit reached")
        target = next((p for p in self.posts if p.id == container["reply_to_id"]), None)
        if target is not None:
            made = self.add_reply(target, container["text"], username=USERNAME, at=self.now())
        else:
            made = self.add_post(container["text"], self.now())
        self.published.append(made)
        return {"id": made.id}

    async def _refresh(self, request: web.Request) -> web.StreamResponse:
        fields: dict[str, Any] = dict(request.query)

        async def apply() -> Reply:
            if fields.get("grant_type") != "th_refresh_token":
                return Reply(400, GraphError(400, 100, "Invalid grant_type").body())
            token = str(fields.get("access_token") or "")
            until = self._tokens.get(token)
            if until is None or until <= self.now():
                return Reply(400, GraphError(400, 190, "Error validating access token: "
                                                        "Session has expired.",
                                             subcode=463).body())
            new = self.issue_token()
            return Reply(200, {"access_token": new, "token_type": "bearer",
                               "expires_in": TOKEN_DAYS * 86400}, applied=True)

        return await self.run_call(request, REFRESH, fields, apply)

    # ------------------------------------------------------------------ limits and faults

    def limits_for(self, method: str, params: dict[str, Any]) -> list[Limit]:
        """The reads count per token in a sliding hour."""
        if method in (THREADS, CONVERSATION, MENTIONS, LIMIT):
            return [(self._window, params.get("access_token"))]
        return []

    def ratelimited_reply(self, method: str, retry_after: int) -> Reply:
        """Graph's rate limit: HTTP 400, code 4."""
        return Reply(400, GraphError(400, 4, "Application request limit reached").body())

    def fault_reply(self, method: str, fault: Fault) -> Reply:
        """429 as Graph's code 4; any other status as a Graph error of it."""
        if fault.status == 429:
            return self.ratelimited_reply(method, fault.retry_after)
        return Reply(fault.status, GraphError(fault.status, 2, fault.error or
                                              "An unexpected error has occurred.").body())


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def _offset(cursor: str) -> int:
    kind, _, number = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
    if kind != "offset":
        raise ValueError(cursor)
    return int(number)


def _json(reply: Reply) -> web.Response:
    return web.json_response(reply.body, status=reply.status, headers=reply.headers)
