"""A fake Slack Web API that the real slack_sdk and slack_bolt run against, unmodified.

Usage::

    async with FakeSlack() as slack:
        client = AsyncWebClient(token=slack.bot_token, base_url=slack.url)
        await client.chat_postMessage(channel="C0CARE001", text="hi")
        assert slack.latest("C0CARE001").text == "hi"

It speaks the wire format of https://slack.com/api/ (form, JSON or query parameters; answers
``{"ok": true, ...}`` or ``{"ok": false, "error": ...}``), keeps channels, messages (with edit
history), ephemeral messages, views, uploaded files and response_url posts in memory, logs
every call in `calls`, applies Slack's rate limits (toggle `rate_limits_enabled`) and plays the
faults tests ask for (see `tests.fakes.server`).

It also plays Slack towards an app: `block_actions`, `slash_command`, `view_submission` and
`event_callback` build requests signed like Slack's, and `deliver` posts them to the app's
``/slack/events``. The ``response_url`` in those payloads points back at this fake.

Socket Mode: ``apps.connections.open`` (app-level token `app_token` only) hands out a
``ws://`` URL on this fake; the app's SocketModeClient connects there and gets Slack's
``hello``. `socket_send` wraps the same requests in a Socket Mode envelope, sends it to the
newest open connection and waits up to 3 s for the app's ack::

    handler = AsyncSocketModeHandler(app, slack.app_token, web_client=client)
    await handler.connect_async()
    await slack.socket_connected()
    ack = await slack.socket_send(slack.slash_command("/case", "12"))
    assert ack is not None and ack.payload == {"text": "On it"}
    await handler.close_async()

`socket_deliveries` and `socket_acks` record what went out and what came back (with the ack's
latency; a missing ack is recorded as ``timed_out``); `socket_disconnect` plays Slack's
``disconnect`` message (or a dropped socket) so reconnection can be tested.

Knowingly simplified: no workspace-wide postMessage cap, no Enterprise Grid, no scopes
(every token that is valid may call every method), no message formatting or link parsing,
and interactive payloads carry the message without its metadata. Socket Mode: no TLS
(``ws://``), no 10-connection cap, no automatic redelivery of unacked events (send a retry
yourself with ``event_callback(..., retry_num=1, retry_reason="timeout")``), envelopes go to
the newest open connection only, and ``apps.connections.open`` is not rate limited.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import re
import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import WSCloseCode, WSMsgType, web
from slack_sdk.signature import SignatureVerifier

from tests.fakes.server import (
    Clock,
    FakeServer,
    Fault,
    Limit,
    Reply,
    TokenBucket,
    read_fields,
)

# Per-minute tiers per method and workspace (docs.slack.dev rate limits; java-slack-sdk table).
TIER_2, TIER_3, TIER_4 = 20, 50, 100
DEFAULT_TIERS: dict[str, int] = {
    "chat.update": TIER_3,
    "chat.delete": TIER_3,
    "chat.postEphemeral": TIER_4,
    "views.open": TIER_4,
    "views.update": TIER_4,
    "views.push": TIER_4,
    "conversations.open": TIER_3,
    "conversations.history": TIER_3,
    "conversations.replies": TIER_3,
    "users.info": TIER_4,
    "reactions.add": TIER_3,
    "files.info": TIER_4,
}

MAX_BLOCKS_PER_MESSAGE = 50
MAX_BLOCKS_PER_VIEW = 100
MAX_TEXT = 40_000
TRIGGER_TTL = 3.0  # seconds: "use the trigger_id within 3 seconds"
RESPONSE_URL_USES = 5  # "up to 5 times within 30 minutes"
RESPONSE_URL_TTL = 30 * 60.0
SOCKET_ACK_TIMEOUT = 3.0  # seconds Slack waits for a Socket Mode envelope's ack
# Methods that take the app-level (xapp-) token and no other.
APP_TOKEN_METHODS = frozenset({"apps.connections.open"})
# SlackRequest.kind -> (envelope type, accepts_response_payload), as Slack sends them.
SOCKET_ENVELOPES: dict[str, tuple[str, bool]] = {
    "block_actions": ("interactive", False),
    "view_submission": ("interactive", True),
    "slash_command": ("slash_commands", True),
    "event_callback": ("events_api", False),
}


class SlackApiFailure(Exception):
    """An API error the fake answers as ``{"ok": false, "error": ...}``."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


@dataclass
class SlackRateLimits:
    """Rate limits of the fake, after Slack's: 1 post/s per channel (with a burst) and tiers."""

    post_per_channel_per_second: float = 1.0
    post_burst: int = 3
    per_minute: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_TIERS))


@dataclass
class Revision:
    """A former version of an edited message."""

    text: str
    blocks: list[dict[str, Any]]
    metadata: dict[str, Any] | None
    replaced_at: datetime


@dataclass
class SlackMessage:
    """A message in a channel, as the fake stores it, with its edit history."""

    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    user: str
    bot_id: str | None = None
    app_id: str | None = None
    thread_ts: str | None = None
    reply_broadcast: bool = False
    metadata: dict[str, Any] | None = None
    attachments: list[dict[str, Any]] = field(default_factory=list)
    files: list[dict[str, Any]] = field(default_factory=list)
    reactions: dict[str, list[str]] = field(default_factory=dict)
    pinned: bool = False
    deleted: bool = False
    options: dict[str, Any] = field(default_factory=dict)  # unfurl_links, mrkdwn, ...
    edits: list[Revision] = field(default_factory=list)
    edited_ts: str | None = None
    subtype: str | None = None  # "file_share": a person shared files (`files` holds them)

    @property
    def is_reply(self) -> bool:
        """Tell whether the message sits in a thread under another message."""
        return self.thread_ts is not None and self.thread_ts != self.ts

    def action_ids(self) -> list[str]:
        """List the action_ids of the interactive elements in the message's blocks."""
        return [element.get("action_id", "") for _, element in iter_elements(self.blocks)]

    def to_api(self, *, with_metadata: bool = True) -> dict[str, Any]:
        """Render the message as Slack's API returns it."""
        out: dict[str, Any] = {"type": "message", "user": self.user, "text": self.text}
        if self.subtype:
            out["subtype"] = self.subtype
        if self.bot_id:
            out.update(bot_id=self.bot_id, app_id=self.app_id)
        out["ts"] = self.ts
        if self.blocks:
            out["blocks"] = self.blocks
        if self.attachments:
            out["attachments"] = self.attachments
        if self.files:
            out["files"] = self.files
        if self.thread_ts:
            out["thread_ts"] = self.thread_ts
        if self.edited_ts:
            out["edited"] = {"user": self.user, "ts": self.edited_ts}
        if self.reactions:
            out["reactions"] = [
                {"name": name, "users": users, "count": len(users)}
                for name, users in self.reactions.items()
            ]
        if self.pinned:
            out["pinned_to"] = [self.channel]
        if with_metadata and self.metadata is not None:
            out["metadata"] = self.metadata
        return out


@dataclass
class EphemeralMessage:
    """A message only one user sees (chat.postEphemeral or a response_url reply)."""

    channel: str
    user: str
    text: str
    blocks: list[dict[str, Any]]
    message_ts: str
    thread_ts: str | None
    via: str  # "chat.postEphemeral" | "response_url" | "ack"


@dataclass
class StoredView:
    """A modal opened by the app, with its revisions."""

    id: str
    user: str
    view: dict[str, Any]
    revisions: list[dict[str, Any]] = field(default_factory=list)
    closed: bool = False
    errors: dict[str, str] | None = None  # last response_action="errors" of a submission


@dataclass
class ResponseUrlPost:
    """What the app posted to a response_url, and how the fake answered."""

    url_id: str
    body: dict[str, Any]
    at: datetime
    status: int


@dataclass(frozen=True)
class SlackRequest:
    """A request Slack would send to the app's Request URL: raw body and signed headers."""

    kind: str  # "block_actions" | "slash_command" | "view_submission" | "event_callback"
    body: str
    headers: dict[str, str]
    payload: dict[str, Any]


@dataclass(frozen=True)
class Delivery:
    """The app's answer to a delivered SlackRequest."""

    status: int
    text: str
    headers: dict[str, str]

    def json(self) -> Any:
        """Parse the answer as JSON (None when the body is empty)."""
        return json.loads(self.text) if self.text.strip() else None


@dataclass
class SocketConnection:
    """A Socket Mode websocket the app opened on the fake."""

    id: int
    ticket: str
    opened_at: datetime
    hello: dict[str, Any]
    closed_at: datetime | None = None
    close_code: int | None = None  # sent by whichever side closed first
    closed_by: str | None = None  # "app" | "fake"
    disconnects: list[str] = field(default_factory=list)  # reasons sent in "disconnect"

    @property
    def open(self) -> bool:
        """Tell whether the websocket is still connected."""
        return self.closed_at is None


@dataclass(frozen=True)
class SocketAck:
    """An acknowledgement the app sent over Socket Mode: ``{"envelope_id", "payload"?}``."""

    envelope_id: str
    payload: dict[str, Any] | None
    message: dict[str, Any]  # the frame as received
    connection: int  # SocketConnection.id it came in on
    at: datetime
    seconds: float | None  # since the envelope was sent; None for an unknown envelope_id
    late: bool = False  # came after the ack timeout; Slack had given up by then


@dataclass
class SocketDelivery:
    """An envelope the fake sent over Socket Mode, and the app's ack (if any)."""

    envelope: dict[str, Any]
    request: SlackRequest | None
    connection: int
    sent_at: datetime
    ack_timeout: float
    ack: SocketAck | None = None  # a late ack is kept here too, with ``late=True``
    timed_out: bool = False  # no ack within `ack_timeout`: Slack shows the user an error

    @property
    def envelope_id(self) -> str:
        """Return the envelope's id."""
        return str(self.envelope["envelope_id"])

    @property
    def type(self) -> str:
        """Return the envelope type: interactive, slash_commands or events_api."""
        return str(self.envelope["type"])

    @property
    def payload(self) -> dict[str, Any]:
        """Return the payload the envelope carried."""
        return dict(self.envelope["payload"])

    @property
    def acked(self) -> bool:
        """Tell whether the app acked in time."""
        return self.ack is not None and not self.ack.late


def sign(body: str, *, signing_secret: str, timestamp: int | None = None) -> dict[str, str]:
    """Return the X-Slack-Request-Timestamp and X-Slack-Signature headers for `body`."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(signing_secret).generate_signature(timestamp=ts, body=body)
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": signature or ""}


def iter_elements(blocks: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """List (block, element) for every interactive element of `blocks`."""
    found: list[tuple[dict[str, Any], dict[str, Any]]] = []
    for block in blocks:
        if not isinstance(block, dict):
            continue
        elements = list(block.get("elements") or [])
        for key in ("accessory", "element"):
            if isinstance(block.get(key), dict):
                elements.append(block[key])
        found.extend((block, element) for element in elements if "action_id" in element)
    return found


def validate_blocks(blocks: Any, *, limit: int) -> list[str]:
    """Check the Block Kit limits Slack enforces; return Slack-style error strings."""
    if not isinstance(blocks, list):
        return ["must be an array [json-pointer:/blocks]"]
    errors = []
    if len(blocks) > limit:
        errors.append(f"no more than {limit} items allowed [json-pointer:/blocks]")
    block_ids: set[str] = set()
    for i, block in enumerate(blocks):
        where = f"[json-pointer:/blocks/{i}"
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            errors.append(f"missing required field: type {where}]")
            continue
        block_id = block.get("block_id")
        if block_id is not None:
            if block_id in block_ids:
                errors.append(f"duplicate block_id {where}/block_id]")
            if len(block_id) > 255:
                errors.append(f"must be less than 256 characters {where}/block_id]")
            block_ids.add(block_id)
        text = block.get("text")
        text_limit = {"section": 3000, "header": 150}.get(block["type"])
        if text_limit and isinstance(text, dict) and len(text.get("text", "")) > text_limit:
            errors.append(f"must be less than {text_limit + 1} characters {where}/text]")
        if len(block.get("fields") or []) > 10:
            errors.append(f"no more than 10 items allowed {where}/fields]")
        if block["type"] == "actions" and len(block.get("elements") or []) > 25:
            errors.append(f"no more than 25 items allowed {where}/elements]")
        if block["type"] == "context" and len(block.get("elements") or []) > 10:
            errors.append(f"no more than 10 items allowed {where}/elements]")
    for _, element in iter_elements(blocks):
        if len(element.get("action_id", "")) > 255:
            errors.append("must be less than 256 characters [json-pointer:/action_id]")
        if element.get("type") == "button":
            if len(element.get("text", {}).get("text", "")) > 75:
                errors.append("must be less than 76 characters [json-pointer:/text/text]")
            if len(element.get("value", "")) > 2000:
                errors.append("must be less than 2001 characters [json-pointer:/value]")
    return errors


def _flag(value: Any, default: bool = False) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in {"1", "true", "yes"}


JSON_PARAMS = frozenset({"blocks", "attachments", "metadata", "view", "files"})


def _decoded_for_log(name: str, value: Any) -> Any:
    """Decode the JSON-string parameters (blocks, view, ...) so the call log shows structure."""
    if name in JSON_PARAMS and isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _json_param(params: dict[str, Any], name: str, error: str) -> Any:
    value = params.get(name)
    if isinstance(value, str):
        if not value.strip():
            return None
        try:
            return json.loads(value)
        except ValueError as exc:
            raise SlackApiFailure(error) from exc
    return value


class FakeSlack(FakeServer):
    """A Slack workspace served at `url` (ends in ``/api/``) for the real slack_sdk clients."""

    chaos_exempt = frozenset({"auth.test", "apps.connections.open"})

    def __init__(
        self,
        *,
        bot_token: str = "xoxb-fake-socialcare",
        app_token: str = "xapp-1-fake-socialcare",
        signing_secret: str = "fake-signing-secret",
        team_id: str = "T0FAKE001",
        team_domain: str = "socialcare-test",
        bot_user_id: str = "U0BOT0001",
        bot_id: str = "B0BOT0001",
        app_id: str = "A0APP0001",
        limits: SlackRateLimits | None = None,
        clock: Clock | None = None,
        rate_limits: bool = True,
    ) -> None:
        super().__init__(clock=clock, rate_limits=rate_limits)
        self.bot_token = bot_token
        self.valid_tokens = {bot_token}
        self.app_token = app_token
        self.app_tokens = {app_token}  # app-level tokens: apps.connections.open only
        self.signing_secret = signing_secret
        self.team_id = team_id
        self.team_domain = team_domain
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.app_id = app_id
        self.limits = limits or SlackRateLimits()
        self.channels: dict[str, dict[str, Any]] = {}  # id -> conversation object
        self.users: dict[str, dict[str, Any]] = {}
        self.ephemerals: list[EphemeralMessage] = []
        self.views: dict[str, StoredView] = {}
        self.downloads: list[str] = []  # ids of user files the app downloaded
        self.files: dict[str, dict[str, Any]] = {}  # file_id -> {"name", "length", "data", ...}
        self.response_posts: list[ResponseUrlPost] = []
        self.deliveries: list[tuple[SlackRequest, Delivery]] = []
        self.socket_connections: list[SocketConnection] = []
        self.socket_deliveries: list[SocketDelivery] = []
        self.socket_acks: list[SocketAck] = []  # every ack received, in order, late ones too
        self._tickets: dict[str, float] = {}  # unused apps.connections.open tickets
        self._sockets: dict[int, web.WebSocketResponse] = {}  # open ones by connection id
        self._socket_sent: dict[str, tuple[SocketDelivery, float]] = {}  # id -> (, monotonic)
        self._socket_waiters: dict[str, asyncio.Future[SocketAck]] = {}
        self._socket_changed = asyncio.Event()
        self._messages: dict[str, list[SlackMessage]] = {}
        self._dm_by_user: dict[str, str] = {}
        self._triggers: dict[str, dict[str, Any]] = {}
        self._response_urls: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)
        self._last_us = 0
        self._post_bucket = TokenBucket(
            self.limits.post_per_channel_per_second, self.limits.post_burst
        )
        self._tier_windows = {
            method: TokenBucket(per_minute / 60.0, per_minute)
            for method, per_minute in self.limits.per_minute.items()
        }
        self._methods = {
            "auth.test": self._auth_test,
            "apps.connections.open": self._apps_connections_open,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.delete": self._chat_delete,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.getPermalink": self._chat_get_permalink,
            "conversations.open": self._conversations_open,
            "conversations.history": self._conversations_history,
            "conversations.replies": self._conversations_replies,
            "conversations.info": self._conversations_info,
            "pins.add": self._pins_add,
            "pins.remove": self._pins_remove,
            "reactions.add": self._reactions_add,
            "users.info": self._users_info,
            "views.open": self._views_open,
            "views.push": self._views_push,
            "views.update": self._views_update,
            "files.getUploadURLExternal": self._files_get_upload_url,
            "files.completeUploadExternal": self._files_complete_upload,
            "files.info": self._files_info,
        }
        self.add_user(bot_user_id, name="socialcare", real_name="SocialCare", is_bot=True)
        self.add_user("U0USER001", name="alice", real_name="Alice Agent")

    # ------------------------------------------------------------------ server plumbing

    @property
    def url(self) -> str:
        """Return the Web API base URL for ``AsyncWebClient(base_url=...)``."""
        return f"{self.root_url}/api/"

    def add_routes(self, app: web.Application) -> None:
        """Register the Web API, the file upload URLs and the response_url route."""
        app.router.add_route("*", "/api/{method}", self._handle_api)
        app.router.add_post("/upload/v1/{file_id}", self._handle_upload)
        app.router.add_get("/files-pri/{file_id}/{name}", self._handle_download)
        app.router.add_post("/response_url/{url_id}", self._handle_response_url)
        app.router.add_get("/socket-mode/{ticket}", self._handle_socket)

    async def close(self) -> None:
        """Close the Socket Mode connections (going away), then stop the server."""
        for waiter in self._socket_waiters.values():
            if not waiter.done():
                waiter.set_exception(ConnectionError("the fake Slack closed"))
        for connection in self.socket_connections:
            if connection.id in self._sockets:
                await self._close_socket(connection, b"server closing")
        await super().close()

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        try:
            fields, files = await read_fields(request)
        except ValueError:
            return web.json_response({"ok": False, "error": "invalid_json"})
        token = fields.pop("token", None)
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            token = auth.removeprefix("Bearer ").strip()
        params = {name: _decoded_for_log(name, value) for name, value in fields.items()}
        params.update({name: file.describe() for name, file in files.items()})
        if method not in self._methods:
            reply = Reply(200, {"ok": False, "error": "unknown_method", "req_method": method})
            self.log(method, params, reply)
            return web.json_response(reply.body)
        error = self._token_error(method, token)
        if error is not None:
            reply = Reply(200, {"ok": False, "error": error})
            self.log(method, params, reply)
            return web.json_response(reply.body)

        async def apply() -> Reply:
            try:
                body = self._methods[method](fields)
            except SlackApiFailure as failure:
                return Reply(200, {"ok": False, "error": failure.error, **failure.extra})
            return Reply(200, {"ok": True, **body}, applied=True)

        return await self.run_call(request, method, params, apply)

    def _token_error(self, method: str, token: str | None) -> str | None:
        """Return Slack's auth error for `token` calling `method` (None: it may call it)."""
        if not token:
            return "not_authed"
        wanted, other = (
            (self.app_tokens, self.valid_tokens)
            if method in APP_TOKEN_METHODS
            else (self.valid_tokens, self.app_tokens)
        )
        if token in wanted:
            return None
        return "not_allowed_token_type" if token in other else "invalid_auth"

    def fault_reply(self, method: str, fault: Fault) -> Reply:
        """Answer an injected fault as Slack would."""
        if fault.status == 429:
            return self.ratelimited_reply(method, fault.retry_after)
        error = fault.error or {500: "internal_error", 503: "service_unavailable"}.get(
            fault.status, "fatal_error"
        )
        return Reply(fault.status, {"ok": False, "error": error})

    def ratelimited_reply(self, method: str, retry_after: int) -> Reply:
        """Answer HTTP 429 with Retry-After, as Slack does."""
        return Reply(
            429, {"ok": False, "error": "ratelimited"}, headers={"Retry-After": str(retry_after)}
        )

    def limits_for(self, method: str, params: dict[str, Any]) -> list[Limit]:
        """Count chat.postMessage per channel, the tiered methods per workspace."""
        if method == "chat.postMessage":
            return [(self._post_bucket, str(params.get("channel", "")))]
        if method in self._tier_windows:
            return [(self._tier_windows[method], self.team_id)]
        return []

    # ------------------------------------------------------------------ state helpers

    def _next_id(self, prefix: str) -> str:
        return f"{prefix}0{next(self._ids):07d}"

    def _next_ts(self) -> str:
        # Real ts are wall-clock seconds with 6 decimals, unique and increasing per channel.
        self._last_us = max(time.time_ns() // 1000, self._last_us + 1)
        return f"{self._last_us // 1_000_000}.{self._last_us % 1_000_000:06d}"

    def add_user(
        self,
        user_id: str,
        *,
        name: str | None = None,
        real_name: str | None = None,
        tz: str = "Europe/Berlin",
        is_bot: bool = False,
        email: str | None = None,
    ) -> dict[str, Any]:
        """Add (or replace) a workspace member; return its users.info object."""
        name = name or user_id.lower()
        real_name = real_name or name.title()
        user = {
            "id": user_id,
            "team_id": self.team_id,
            "name": name,
            "deleted": False,
            "real_name": real_name,
            "tz": tz,
            "tz_label": tz,
            "tz_offset": 0,
            "is_admin": False,
            "is_bot": is_bot,
            "is_app_user": False,
            "profile": {
                "real_name": real_name,
                "display_name": name,
                "email": email or f"{name}@example.com",
                "team": self.team_id,
            },
        }
        self.users[user_id] = user
        return user

    def add_channel(self, name: str, *, channel_id: str | None = None) -> str:
        """Add a public channel the bot is in; return its id."""
        channel_id = channel_id or self._next_id("C")
        self.channels[channel_id] = {
            "id": channel_id,
            "name": name,
            "is_channel": channel_id.startswith("C"),
            "is_group": channel_id.startswith("G"),
            "is_im": channel_id.startswith("D"),
            "is_member": True,
            "is_archived": False,
            "created": int(time.time()),
        }
        self._messages.setdefault(channel_id, [])
        return channel_id

    def _resolve_channel(self, value: Any) -> str:
        channel = str(value or "").strip()
        if not channel:
            raise SlackApiFailure("channel_not_found")
        if re.fullmatch(r"[UW][A-Z0-9]+", channel):
            return self._open_dm(channel)[0]
        if re.fullmatch(r"[CGD][A-Z0-9]+", channel):
            if channel not in self.channels:
                self.add_channel(f"channel-{channel.lower()}", channel_id=channel)
            return channel
        name = channel.removeprefix("#")
        for channel_id, info in self.channels.items():
            if info["name"] == name:
                return channel_id
        return self.add_channel(name)

    def _open_dm(self, user_id: str) -> tuple[str, bool]:
        if user_id not in self.users:
            raise SlackApiFailure("user_not_found")
        if user_id in self._dm_by_user:
            return self._dm_by_user[user_id], True
        channel_id = self.add_channel(user_id, channel_id=self._next_id("D"))
        self.channels[channel_id]["user"] = user_id
        self._dm_by_user[user_id] = channel_id
        return channel_id, False

    def _find(self, channel: str, ts: Any) -> SlackMessage:
        for message in self._messages.get(channel, []):
            if message.ts == str(ts) and not message.deleted:
                return message
        raise SlackApiFailure("message_not_found")

    # ------------------------------------------------------------------ what tests read

    def messages(self, channel: str, *, include_replies: bool = True) -> list[SlackMessage]:
        """Return the live messages of `channel`, oldest first."""
        return [
            m
            for m in self._messages.get(channel, [])
            if not m.deleted and (include_replies or not m.is_reply)
        ]

    def message(self, channel: str, ts: str) -> SlackMessage:
        """Return the message `ts` of `channel` (KeyError when there is none)."""
        try:
            return self._find(channel, ts)
        except SlackApiFailure:
            raise KeyError((channel, ts)) from None

    def latest(self, channel: str) -> SlackMessage:
        """Return the newest top-level message of `channel`."""
        top = self.messages(channel, include_replies=False)
        if not top:
            raise KeyError(f"no message in {channel}")
        return top[-1]

    def thread(self, channel: str, thread_ts: str) -> list[SlackMessage]:
        """Return the replies under `thread_ts`, oldest first."""
        return [m for m in self.messages(channel) if m.is_reply and m.thread_ts == thread_ts]

    def ephemerals_for(self, user: str) -> list[EphemeralMessage]:
        """Return the ephemeral messages `user` saw, oldest first."""
        return [e for e in self.ephemerals if e.user == user]

    def latest_view(self) -> StoredView:
        """Return the view opened or pushed last."""
        if not self.views:
            raise KeyError("no view was opened")
        return list(self.views.values())[-1]

    def post_as_user(
        self, channel: str, text: str, *, user: str = "U0USER001", thread_ts: str | None = None
    ) -> SlackMessage:
        """Put a message by a human into `channel` (no API call; pair with `message_event`)."""
        channel = self._resolve_channel(channel)
        message = SlackMessage(
            channel=channel,
            ts=self._next_ts(),
            text=text,
            blocks=[],
            user=user,
            thread_ts=thread_ts,
        )
        self._messages[channel].append(message)
        return message

    # ------------------------------------------------------------------ API methods

    def _auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": f"https://{self.team_domain}.slack.com/",
            "team": self.team_domain,
            "user": self.users[self.bot_user_id]["name"],
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _apps_connections_open(self, params: dict[str, Any]) -> dict[str, Any]:
        ticket = secrets.token_hex(16)
        self._tickets[ticket] = self.clock()
        return {"url": f"ws://127.0.0.1:{self.port}/socket-mode/{ticket}"}

    def _message_content(self, params: dict[str, Any]) -> dict[str, Any]:
        content: dict[str, Any] = {}
        if "text" in params and params["text"] is not None:
            content["text"] = str(params["text"])
            if len(content["text"]) > MAX_TEXT:
                raise SlackApiFailure("msg_too_long")
        blocks = _json_param(params, "blocks", "invalid_blocks_format")
        if blocks is not None:
            errors = validate_blocks(blocks, limit=MAX_BLOCKS_PER_MESSAGE)
            if errors:
                raise SlackApiFailure(
                    "invalid_blocks", errors=errors, response_metadata={"messages": errors}
                )
            content["blocks"] = blocks
        attachments = _json_param(params, "attachments", "invalid_attachments")
        if attachments is not None:
            content["attachments"] = attachments
        metadata = _json_param(params, "metadata", "invalid_metadata_format")
        if metadata is not None:
            if not isinstance(metadata, dict) or not isinstance(metadata.get("event_type"), str):
                raise SlackApiFailure("invalid_metadata_format")
            if not isinstance(metadata.get("event_payload", {}), dict):
                raise SlackApiFailure("invalid_metadata_schema")
            content["metadata"] = {
                "event_type": metadata["event_type"],
                "event_payload": metadata.get("event_payload", {}),
            }
        return content

    def _chat_post_message(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._resolve_channel(params.get("channel"))
        content = self._message_content(params)
        if not content.get("text") and not content.get("blocks") and not content.get("attachments"):
            raise SlackApiFailure("no_text")
        thread_ts = params.get("thread_ts") or None
        if thread_ts is not None:
            # A reply to a reply lands in the parent's thread, as on Slack.
            parent = next((m for m in self.messages(channel) if m.ts == str(thread_ts)), None)
            if parent is not None:
                thread_ts = parent.thread_ts or parent.ts
        options = {
            key: _flag(params[key])
            for key in ("unfurl_links", "unfurl_media", "mrkdwn", "link_names")
            if key in params
        }
        message = SlackMessage(
            channel=channel,
            ts=self._next_ts(),
            text=content.get("text", ""),
            blocks=content.get("blocks", []),
            user=self.bot_user_id,
            bot_id=self.bot_id,
            app_id=self.app_id,
            thread_ts=str(thread_ts) if thread_ts else None,
            reply_broadcast=_flag(params.get("reply_broadcast")),
            metadata=content.get("metadata"),
            attachments=content.get("attachments", []),
            options=options,
        )
        self._messages[channel].append(message)
        return {"channel": channel, "ts": message.ts, "message": message.to_api()}

    def _chat_update(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._resolve_channel(params.get("channel"))
        message = self._find(channel, params.get("ts"))
        if message.user != self.bot_user_id:
            raise SlackApiFailure("cant_update_message")
        content = self._message_content(params)
        if not content:
            raise SlackApiFailure("no_text")
        message.edits.append(
            Revision(message.text, message.blocks, message.metadata, datetime.now(UTC))
        )
        # Fields left out keep their value; an empty blocks array removes the blocks.
        message.text = content.get("text", message.text)
        message.blocks = content.get("blocks", message.blocks)
        message.attachments = content.get("attachments", message.attachments)
        message.metadata = content.get("metadata", message.metadata)
        message.edited_ts = self._next_ts()
        return {
            "channel": channel,
            "ts": message.ts,
            "text": message.text,
            "message": message.to_api(),
        }

    def _chat_delete(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._resolve_channel(params.get("channel"))
        message = self._find(channel, params.get("ts"))
        if message.user != self.bot_user_id:
            raise SlackApiFailure("cant_delete_message")
        message.deleted = True
        return {"channel": channel, "ts": message.ts}

    def _chat_post_ephemeral(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._resolve_channel(params.get("channel"))
        user = str(params.get("user") or "")
        if user not in self.users:
            raise SlackApiFailure("user_not_found")
        content = self._message_content(params)
        if not content.get("text") and not content.get("blocks"):
            raise SlackApiFailure("no_text")
        ts = self._next_ts()
        self.ephemerals.append(
            EphemeralMessage(
                channel=channel,
                user=user,
                text=content.get("text", ""),
                blocks=content.get("blocks", []),
                message_ts=ts,
                thread_ts=params.get("thread_ts") or None,
                via="chat.postEphemeral",
            )
        )
        return {"message_ts": ts}

    def _chat_get_permalink(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._resolve_channel(params.get("channel"))
        message = self._find(channel, params.get("message_ts"))
        link = f"https://{self.team_domain}.slack.com/archives/{channel}/p"
        link += message.ts.replace(".", "")
        if message.is_reply:
            link += f"?thread_ts={message.thread_ts}&cid={channel}"
        return {"channel": channel, "permalink": link}

    def _conversations_open(self, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("channel"):
            channel = self._resolve_channel(params["channel"])
            return {"no_op": True, "already_open": True, "channel": {"id": channel}}
        users = [u.strip() for u in str(params.get("users") or "").split(",") if u.strip()]
        if not users:
            raise SlackApiFailure("users_list_not_supplied")
        if len(users) > 8:
            raise SlackApiFailure("too_many_users")
        if len(users) == 1:
            channel, existed = self._open_dm(users[0])
        else:
            for user in users:
                if user not in self.users:
                    raise SlackApiFailure("user_not_found")
            name = "mpdm-" + "--".join(users)
            channel, existed = self.add_channel(name, channel_id=self._next_id("G")), False
        out: dict[str, Any] = {"channel": {"id": channel}}
        if existed:
            out.update(no_op=True, already_open=True)
        return out

    def _history_page(
        self, messages: list[SlackMessage], params: dict[str, Any], *, newest_first: bool
    ) -> dict[str, Any]:
        oldest = float(params.get("oldest") or 0)
        latest = float(params.get("latest") or "inf")
        inclusive = _flag(params.get("inclusive"))
        selected = [
            m
            for m in messages
            if (oldest <= float(m.ts) <= latest if inclusive else oldest < float(m.ts) < latest)
        ]
        if newest_first:
            selected.reverse()
        limit = max(1, min(int(params.get("limit") or 100), 999))
        start = 0
        if params.get("cursor"):
            try:
                start = int(base64.b64decode(str(params["cursor"])).decode().split(":")[1])
            except (ValueError, IndexError) as exc:
                raise SlackApiFailure("invalid_cursor") from exc
        page = selected[start : start + limit]
        more = start + limit < len(selected)
        with_metadata = _flag(params.get("include_all_metadata"))
        rendered = []
        for message in page:
            item = message.to_api(with_metadata=with_metadata)
            replies = self.thread(message.channel, message.ts)
            if replies and not message.is_reply:
                item.update(reply_count=len(replies), latest_reply=replies[-1].ts)
            rendered.append(item)
        cursor = base64.b64encode(f"offset:{start + limit}".encode()).decode() if more else ""
        return {
            "messages": rendered,
            "has_more": more,
            "pin_count": sum(1 for m in messages if m.pinned),
            "response_metadata": {"next_cursor": cursor},
        }

    def _conversations_history(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._resolve_channel(params.get("channel"))
        top = [m for m in self.messages(channel) if not m.is_reply or m.reply_broadcast]
        return self._history_page(top, params, newest_first=True)

    def _conversations_replies(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._resolve_channel(params.get("channel"))
        parent = self._find(channel, params.get("ts"))
        thread = [parent, *self.thread(channel, parent.ts)]
        return self._history_page(thread, params, newest_first=False)

    def _conversations_info(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"channel": self.channels[self._resolve_channel(params.get("channel"))]}

    def _pins_add(self, params: dict[str, Any]) -> dict[str, Any]:
        message = self._find(self._resolve_channel(params.get("channel")), params.get("timestamp"))
        if message.pinned:
            raise SlackApiFailure("already_pinned")
        message.pinned = True
        return {}

    def _pins_remove(self, params: dict[str, Any]) -> dict[str, Any]:
        message = self._find(self._resolve_channel(params.get("channel")), params.get("timestamp"))
        if not message.pinned:
            raise SlackApiFailure("no_pin")
        message.pinned = False
        return {}

    def _reactions_add(self, params: dict[str, Any]) -> dict[str, Any]:
        message = self._find(self._resolve_channel(params.get("channel")), params.get("timestamp"))
        name = str(params.get("name") or "").strip(":")
        if not name:
            raise SlackApiFailure("invalid_name")
        users = message.reactions.setdefault(name, [])
        if self.bot_user_id in users:
            raise SlackApiFailure("already_reacted")
        users.append(self.bot_user_id)
        return {}

    def _users_info(self, params: dict[str, Any]) -> dict[str, Any]:
        user = self.users.get(str(params.get("user") or ""))
        if user is None:
            raise SlackApiFailure("user_not_found")
        return {"user": user}

    # -- views

    def _parse_view(self, params: dict[str, Any]) -> dict[str, Any]:
        view = _json_param(params, "view", "invalid_arguments")
        if not isinstance(view, dict):
            raise SlackApiFailure("invalid_arguments")
        messages = []
        if view.get("type") not in {"modal", "home"}:
            messages.append("[ERROR] must provide a valid view type [json-pointer:/view/type]")
        for key in ("title", "submit", "close"):
            text = (view.get(key) or {}).get("text", "")
            if len(text) > 24:
                messages.append(
                    f"[ERROR] must be less than 25 characters [json-pointer:/view/{key}/text]"
                )
        if view.get("type") == "modal" and not view.get("title"):
            messages.append("[ERROR] missing required field: title [json-pointer:/view]")
        if len(view.get("private_metadata") or "") > 3000:
            messages.append(
                "[ERROR] must be less than 3001 characters [json-pointer:/view/private_metadata]"
            )
        if len(view.get("callback_id") or "") > 255:
            messages.append(
                "[ERROR] must be less than 256 characters [json-pointer:/view/callback_id]"
            )
        messages.extend(
            f"[ERROR] {error}"
            for error in validate_blocks(view.get("blocks", []), limit=MAX_BLOCKS_PER_VIEW)
        )
        if messages:
            raise SlackApiFailure("invalid_arguments", response_metadata={"messages": messages})
        return view

    def _use_trigger(self, trigger_id: Any) -> str:
        trigger = self._triggers.get(str(trigger_id or ""))
        if trigger is None:
            raise SlackApiFailure("invalid_trigger_id")
        if trigger["used"]:
            raise SlackApiFailure("exchanged_trigger_id")
        if self.clock() - trigger["issued"] > TRIGGER_TTL:
            raise SlackApiFailure("expired_trigger_id")
        trigger["used"] = True
        return str(trigger["user"])

    def _store_view(
        self, view: dict[str, Any], *, user: str, previous: StoredView | None
    ) -> dict[str, Any]:
        view_id = self._next_id("V")
        full = {
            "id": view_id,
            "team_id": self.team_id,
            "type": view["type"],
            "blocks": view.get("blocks", []),
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "state": {"values": {}},
            "hash": f"{int(time.time())}.{secrets.token_hex(4)}",
            "title": view.get("title"),
            "clear_on_close": bool(view.get("clear_on_close", False)),
            "notify_on_close": bool(view.get("notify_on_close", False)),
            "close": view.get("close"),
            "submit": view.get("submit"),
            "previous_view_id": previous.id if previous else None,
            "root_view_id": previous.view["root_view_id"] if previous else view_id,
            "app_id": self.app_id,
            "external_id": view.get("external_id", ""),
            "app_installed_team_id": self.team_id,
            "bot_id": self.bot_id,
        }
        self.views[view_id] = StoredView(id=view_id, user=user, view=full)
        return full

    def _views_open(self, params: dict[str, Any]) -> dict[str, Any]:
        view = self._parse_view(params)
        user = self._use_trigger(params.get("trigger_id"))
        return {"view": self._store_view(view, user=user, previous=None)}

    def _views_push(self, params: dict[str, Any]) -> dict[str, Any]:
        view = self._parse_view(params)
        user = self._use_trigger(params.get("trigger_id"))
        open_views = [v for v in self.views.values() if v.user == user and not v.closed]
        if not open_views:
            raise SlackApiFailure("not_found")
        return {"view": self._store_view(view, user=user, previous=open_views[-1])}

    def _views_update(self, params: dict[str, Any]) -> dict[str, Any]:
        view = self._parse_view(params)
        stored = self.views.get(str(params.get("view_id") or ""))
        if stored is None and params.get("external_id"):
            stored = next(
                (v for v in self.views.values() if v.view["external_id"] == params["external_id"]),
                None,
            )
        if stored is None:
            raise SlackApiFailure("not_found")
        if params.get("hash") and params["hash"] != stored.view["hash"]:
            raise SlackApiFailure("hash_conflict")
        self._revise_view(stored, view)
        return {"view": stored.view}

    def _revise_view(self, stored: StoredView, view: dict[str, Any]) -> None:
        stored.revisions.append(stored.view)
        keep = {k: stored.view[k] for k in ("id", "team_id", "previous_view_id", "root_view_id")}
        stored.view = {
            **stored.view,
            **{k: v for k, v in view.items() if k != "id"},
            **keep,
            "state": {"values": {}},
            "hash": f"{int(time.time())}.{secrets.token_hex(4)}",
        }

    # -- files (the files_upload_v2 flow)

    def _files_get_upload_url(self, params: dict[str, Any]) -> dict[str, Any]:
        filename = params.get("filename")
        try:
            length = int(params.get("length") or 0)
        except ValueError as exc:
            raise SlackApiFailure("invalid_arguments") from exc
        if not filename or length <= 0:
            raise SlackApiFailure("invalid_arguments")
        file_id = self._next_id("F")
        self.files[file_id] = {
            "id": file_id,
            "name": filename,
            "length": length,
            "alt_txt": params.get("alt_txt"),
            "data": None,
            "completed": False,
        }
        return {"upload_url": f"{self.root_url}/upload/v1/{file_id}", "file_id": file_id}

    def _files_complete_upload(self, params: dict[str, Any]) -> dict[str, Any]:
        items = _json_param(params, "files", "invalid_arguments")
        if not isinstance(items, list) or not items:
            raise SlackApiFailure("invalid_arguments")
        channels = [c for c in str(params.get("channels") or "").split(",") if c]
        if params.get("channel_id"):
            channels.append(str(params["channel_id"]))
        completed = []
        for item in items:
            stored = self.files.get(str(item.get("id")))
            if stored is None or stored["data"] is None:
                raise SlackApiFailure("file_not_found")
            stored.update(completed=True, title=item.get("title") or stored["name"])
            completed.append(
                {
                    "id": stored["id"],
                    "created": int(time.time()),
                    "name": stored["name"],
                    "title": stored["title"],
                    "mimetype": "application/octet-stream",
                    "size": len(stored["data"]),
                    "user": self.bot_user_id,
                    "channels": [],
                }
            )
        for channel in channels:
            channel_id = self._resolve_channel(channel)
            thread_ts = params.get("thread_ts") or None
            message = SlackMessage(
                channel=channel_id,
                ts=self._next_ts(),
                text=str(params.get("initial_comment") or ""),
                blocks=[],
                user=self.bot_user_id,
                bot_id=self.bot_id,
                app_id=self.app_id,
                thread_ts=str(thread_ts) if thread_ts else None,
                files=completed,
            )
            self._messages[channel_id].append(message)
            for file in completed:
                file["channels"].append(channel_id)
        return {"files": completed}

    async def _handle_upload(self, request: web.Request) -> web.StreamResponse:
        file_id = request.match_info["file_id"]
        stored = self.files.get(file_id)
        if request.content_type == "multipart/form-data":
            _, parts = await read_fields(request)
            data = next(iter(parts.values())).data if parts else b""
        else:
            data = await request.read()
        params = {"file_id": file_id, "size": len(data)}

        async def apply() -> Reply:
            if stored is None:
                return Reply(404, "Not Found")
            stored["data"] = data
            return Reply(200, f"OK - {len(data)}", applied=True)

        return await self.run_call(request, "upload_url", params, apply)

    # A file a user picked in a modal's file_input: the view's state carries it as a file
    # object, and the app downloads `url_private_download` with its bot token in an
    # Authorization header (https://docs.slack.dev/reference/block-kit/block-elements/
    # file-input-element; the file object: https://docs.slack.dev/reference/objects/
    # file-object).
    def add_user_file(self, name: str, data: bytes, *, mimetype: str = "image/png",
                      user: str = "U0USER001") -> dict[str, Any]:
        """Store a file a user uploaded; return its file object as a view state holds it."""
        file_id = f"F{next(self._ids):010d}"
        url = f"{self.root_url}/files-pri/{file_id}/{name}"
        described = {"id": file_id, "name": name, "title": name, "mimetype": mimetype,
                     "filetype": name.rsplit(".", 1)[-1], "size": len(data), "user": user,
                     "url_private": url, "url_private_download": url + "?download=1"}
        self.files[file_id] = {"name": name, "length": len(data), "data": data,
                               "user": user, "channels": [], "object": described}
        return dict(described)

    # A person sharing a file in a channel or thread: a `message` with subtype "file_share"
    # and the file objects in `files[]`, as conversations.history/replies return it
    # (https://docs.slack.dev/reference/events/message/file_share). The `file_shared` event
    # names only file_id, user_id and channel_id, not the thread
    # (https://docs.slack.dev/reference/events/file_shared): the app reads the card's
    # thread with conversations.replies when the reply form opens instead.
    def share_file(self, channel: str, name: str, data: bytes, *, mimetype: str = "image/png",
                   user: str = "U0USER001", thread_ts: str | None = None,
                   text: str = "") -> tuple[SlackMessage, dict[str, Any]]:
        """Put a person's file share into `channel` (in `thread_ts`'s thread, if given)."""
        channel = self._resolve_channel(channel)
        shared = self.add_user_file(name, data, mimetype=mimetype, user=user)
        self.files[shared["id"]]["channels"].append(channel)
        message = SlackMessage(channel=channel, ts=self._next_ts(), text=text, blocks=[],
                               user=user, thread_ts=thread_ts, files=[shared],
                               subtype="file_share")
        self._messages[channel].append(message)
        return message, shared

    # files.info (https://docs.slack.dev/reference/methods/files.info): `file` → the file
    # object; an unknown id is `file_not_found`.
    def _files_info(self, params: dict[str, Any]) -> dict[str, Any]:
        stored = self.files.get(str(params.get("file") or ""))
        if stored is None or "object" not in stored:
            raise SlackApiFailure("file_not_found")
        return {"file": {**stored["object"], "channels": list(stored["channels"])}}

    async def _handle_download(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Bearer {self.bot_token}":
            return web.Response(status=302, headers={"Location": f"{self.root_url}/signin"})
        stored = self.files.get(request.match_info["file_id"])
        if stored is None or stored["name"] != request.match_info["name"]:
            return web.Response(status=404)
        self.downloads.append(request.match_info["file_id"])
        return web.Response(body=stored.get("data") or b"",
                            content_type="application/octet-stream")

    # ------------------------------------------------------------------ playing Slack

    def issue_trigger_id(self, user: str) -> str:
        """Issue a trigger_id for `user`, valid for one views.open/push within 3 s."""
        trigger_id = f"{next(self._ids)}.{int(time.time())}.{secrets.token_hex(8)}"
        self._triggers[trigger_id] = {"user": user, "issued": self.clock(), "used": False}
        return trigger_id

    def issue_response_url(
        self, *, channel: str, user: str, message_ts: str | None = None, ephemeral: bool = False
    ) -> str:
        """Issue a response_url on this fake that records what the app posts to it."""
        url_id = secrets.token_hex(8)
        self._response_urls[url_id] = {
            "channel": channel,
            "user": user,
            "message_ts": message_ts,
            "ephemeral": ephemeral,
            "uses": 0,
            "issued": self.clock(),
        }
        return f"{self.root_url}/response_url/{url_id}"

    def responses(self, response_url: str | None = None) -> list[ResponseUrlPost]:
        """Return what the app posted to response_urls (or to one of them)."""
        if response_url is None:
            return list(self.response_posts)
        url_id = response_url.rstrip("/").rsplit("/", 1)[-1]
        return [p for p in self.response_posts if p.url_id == url_id]

    async def _handle_response_url(self, request: web.Request) -> web.StreamResponse:
        url_id = request.match_info["url_id"]
        try:
            body = await request.json()
        except ValueError:
            body = dict(await request.post())
        target = self._response_urls.get(url_id)
        if target is None:
            status, text = 404, "invalid_url"
        elif target["uses"] >= RESPONSE_URL_USES:
            status, text = 404, "used_url"
        elif self.clock() - target["issued"] > RESPONSE_URL_TTL:
            status, text = 404, "expired_url"
        else:
            target["uses"] += 1
            status, text = 200, "ok"
            self._apply_response(target, body)
        self.response_posts.append(ResponseUrlPost(url_id, body, datetime.now(UTC), status))
        return web.Response(status=status, text=text)

    def _apply_response(
        self, target: dict[str, Any], body: dict[str, Any], *, via: str = "response_url"
    ) -> None:
        channel, user = target["channel"], target["user"]
        original = None
        if target["message_ts"] and not target["ephemeral"]:
            original = next(
                (m for m in self.messages(channel) if m.ts == target["message_ts"]), None
            )
        if _flag(body.get("delete_original")):
            if original is not None:
                original.deleted = True
            return
        if _flag(body.get("replace_original")) and original is not None:
            original.edits.append(
                Revision(original.text, original.blocks, original.metadata, datetime.now(UTC))
            )
            original.text = str(body.get("text", original.text))
            original.blocks = body.get("blocks", original.blocks)
            original.edited_ts = self._next_ts()
            return
        if body.get("response_type") == "in_channel":
            self._messages[channel].append(
                SlackMessage(
                    channel=channel,
                    ts=self._next_ts(),
                    text=str(body.get("text", "")),
                    blocks=body.get("blocks", []),
                    user=self.bot_user_id,
                    bot_id=self.bot_id,
                    app_id=self.app_id,
                    thread_ts=body.get("thread_ts"),
                )
            )
            return
        self.ephemerals.append(
            EphemeralMessage(
                channel=channel,
                user=user,
                text=str(body.get("text", "")),
                blocks=body.get("blocks", []),
                message_ts=self._next_ts(),
                thread_ts=body.get("thread_ts"),
                via=via,
            )
        )

    def _signed(
        self,
        kind: str,
        body: str,
        payload: dict[str, Any],
        *,
        content_type: str,
        timestamp: int | None,
        signing_secret: str | None,
        extra_headers: dict[str, str] | None = None,
    ) -> SlackRequest:
        headers = {"Content-Type": content_type}
        headers.update(
            sign(body, signing_secret=signing_secret or self.signing_secret, timestamp=timestamp)
        )
        headers.update(extra_headers or {})
        return SlackRequest(kind=kind, body=body, headers=headers, payload=payload)

    def _user_ref(self, user: str) -> dict[str, Any]:
        if user not in self.users:
            self.add_user(user)
        name = self.users[user]["name"]
        return {"id": user, "username": name, "name": name, "team_id": self.team_id}

    def block_actions(
        self,
        *,
        action_id: str,
        channel: str,
        message_ts: str | None = None,
        value: str | None = None,
        user: str = "U0USER001",
        block_id: str | None = None,
        check: bool = True,
        timestamp: int | None = None,
        signing_secret: str | None = None,
    ) -> SlackRequest:
        """Build the block_actions request of `user` clicking `action_id` on a message.

        The message defaults to the newest one in `channel`; with ``check`` the button must
        exist in its blocks, and its block_id, text and value are taken from there.
        """
        channel = self._resolve_channel(channel)
        message = self.message(channel, message_ts) if message_ts else self.latest(channel)
        element: dict[str, Any] = {"type": "button", "text": {"type": "plain_text", "text": ""}}
        found_block: dict[str, Any] = {}
        for block, candidate in iter_elements(message.blocks):
            options = [o.get("value") for o in candidate.get("options") or []]
            if candidate.get("action_id") == action_id and (
                value is None or candidate.get("value") == value or value in options
            ):
                found_block, element = block, candidate
                break
        else:
            if check:
                raise ValueError(
                    f"no element with action_id={action_id!r} value={value!r} in message "
                    f"{message.ts}; it has {message.action_ids()}"
                )
        action: dict[str, Any] = {
            "action_id": action_id,
            "block_id": block_id or found_block.get("block_id", "b"),
            "type": element.get("type", "button"),
            "action_ts": f"{time.time():.6f}",
        }
        if "text" in element:
            action["text"] = {**element["text"], "emoji": True}
        action_value = value if value is not None else element.get("value")
        if element.get("type") == "static_select":
            # A select sends the option chosen, not a value of its own.
            option = next((o for o in element.get("options") or []
                           if o.get("value") == action_value), {"value": action_value})
            action["selected_option"] = option
            action.pop("text", None)
            if "placeholder" in element:
                action["placeholder"] = element["placeholder"]
        elif action_value is not None:
            action["value"] = action_value
        payload = {
            "type": "block_actions",
            "user": self._user_ref(user),
            "api_app_id": self.app_id,
            "token": "verification_token",
            "container": {
                "type": "message",
                "message_ts": message.ts,
                "channel_id": channel,
                "is_ephemeral": False,
            },
            "trigger_id": self.issue_trigger_id(user),
            "team": {"id": self.team_id, "domain": self.team_domain},
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": channel, "name": self.channels[channel]["name"]},
            "message": message.to_api(with_metadata=False),
            "state": {"values": {}},
            "response_url": self.issue_response_url(
                channel=channel, user=user, message_ts=message.ts
            ),
            "actions": [action],
        }
        body = urlencode({"payload": json.dumps(payload)})
        return self._signed(
            "block_actions",
            body,
            payload,
            content_type="application/x-www-form-urlencoded",
            timestamp=timestamp,
            signing_secret=signing_secret,
        )

    def slash_command(
        self,
        command: str,
        text: str = "",
        *,
        channel: str = "C0CARE001",
        user: str = "U0USER001",
        timestamp: int | None = None,
        signing_secret: str | None = None,
    ) -> SlackRequest:
        """Build the form-encoded request Slack sends when `user` types `command text`."""
        channel = self._resolve_channel(channel)
        user_ref = self._user_ref(user)
        fields = {
            "token": "verification_token",
            "team_id": self.team_id,
            "team_domain": self.team_domain,
            "channel_id": channel,
            "channel_name": self.channels[channel]["name"],
            "user_id": user,
            "user_name": user_ref["name"],
            "command": command,
            "text": text,
            "api_app_id": self.app_id,
            "is_enterprise_install": "false",
            "response_url": self.issue_response_url(channel=channel, user=user, ephemeral=True),
            "trigger_id": self.issue_trigger_id(user),
        }
        return self._signed(
            "slash_command",
            urlencode(fields),
            fields,
            content_type="application/x-www-form-urlencoded",
            timestamp=timestamp,
            signing_secret=signing_secret,
        )

    def view_submission(
        self,
        view_id: str | None = None,
        *,
        values: dict[str, dict[str, Any]] | None = None,
        user: str | None = None,
        timestamp: int | None = None,
        signing_secret: str | None = None,
    ) -> SlackRequest:
        """Build the view_submission of a view the app opened (default: the latest one).

        `values` maps block_id -> action_id -> value; a plain value is shaped after the
        element in the view (text input, select, date picker, ...), a dict is used as is.
        """
        stored = self.views[view_id] if view_id else self.latest_view()
        user = user or stored.user
        state: dict[str, dict[str, Any]] = {}
        elements = {
            (block.get("block_id"), element.get("action_id")): element
            for block, element in iter_elements(stored.view.get("blocks", []))
        }
        for block_id, actions in (values or {}).items():
            for action_id, value in actions.items():
                element = elements.get((block_id, action_id), {"type": "plain_text_input"})
                state.setdefault(block_id, {})[action_id] = _state_value(element, value)
        view = {**stored.view, "state": {"values": state}}
        payload = {
            "type": "view_submission",
            "team": {"id": self.team_id, "domain": self.team_domain},
            "user": self._user_ref(user),
            "api_app_id": self.app_id,
            "token": "verification_token",
            "trigger_id": self.issue_trigger_id(user),
            "view": view,
            "response_urls": [],
            "is_enterprise_install": False,
            "enterprise": None,
        }
        body = urlencode({"payload": json.dumps(payload)})
        return self._signed(
            "view_submission",
            body,
            payload,
            content_type="application/x-www-form-urlencoded",
            timestamp=timestamp,
            signing_secret=signing_secret,
        )

    def message_event(
        self, message: SlackMessage, *, event_type: str = "message"
    ) -> dict[str, Any]:
        """Build the event (``message`` or ``app_mention``) for a stored message."""
        event = {
            "type": event_type,
            "user": message.user,
            "text": message.text,
            "ts": message.ts,
            "team": self.team_id,
            "channel": message.channel,
            "event_ts": message.ts,
            "channel_type": "im" if message.channel.startswith("D") else "channel",
        }
        if message.thread_ts:
            event["thread_ts"] = message.thread_ts
        return event

    def event_callback(
        self,
        event: dict[str, Any],
        *,
        event_id: str | None = None,
        retry_num: int | None = None,
        retry_reason: str = "http_timeout",
        timestamp: int | None = None,
        signing_secret: str | None = None,
    ) -> SlackRequest:
        """Build an Events API event_callback (JSON); `retry_num` marks a redelivery."""
        payload = {
            "token": "verification_token",
            "team_id": self.team_id,
            "api_app_id": self.app_id,
            "event": event,
            "type": "event_callback",
            "event_id": event_id or f"Ev{secrets.token_hex(5).upper()}",
            "event_time": int(time.time()),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": self.team_id,
                    "user_id": self.bot_user_id,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
            "authed_users": [self.bot_user_id],
        }
        extra = None
        if retry_num is not None:
            extra = {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": retry_reason}
        return self._signed(
            "event_callback",
            json.dumps(payload),
            payload,
            content_type="application/json",
            timestamp=timestamp,
            signing_secret=signing_secret,
            extra_headers=extra,
        )

    async def deliver(self, request: SlackRequest, url: str, *, max_wait: float = 10.0) -> Delivery:
        """POST `request` to the app at `url` (its ``/slack/events``) and act on the ack.

        A view_submission ack with ``response_action`` update/push/clear/errors changes the
        stored view as Slack would; an empty ack closes it.
        """
        client_timeout = aiohttp.ClientTimeout(total=max_wait)
        async with (
            aiohttp.ClientSession(timeout=client_timeout) as session,
            session.post(url, data=request.body.encode(), headers=request.headers) as response,
        ):
            delivery = Delivery(response.status, await response.text(), dict(response.headers))
        self.deliveries.append((request, delivery))
        if delivery.status == 200:
            try:
                body = delivery.json()
            except ValueError:
                body = {"text": delivery.text}
            self._apply_ack(request.kind, request.payload, body if isinstance(body, dict) else None)
        return delivery

    def _apply_ack(self, kind: str, payload: dict[str, Any], ack: dict[str, Any] | None) -> None:
        """Act on the body of an app's ack as Slack does (HTTP answer or Socket Mode payload).

        A view_submission's ``response_action`` changes the stored view; a slash command's
        text/blocks are shown to the user (ephemeral unless ``response_type="in_channel"``).
        Other kinds ignore the body, as Slack does.
        """
        if kind == "view_submission":
            self._apply_view_ack(payload, ack or {})
        elif kind == "slash_command" and ack and (ack.get("text") or ack.get("blocks")):
            target = {
                "channel": payload["channel_id"],
                "user": payload["user_id"],
                "message_ts": None,
                "ephemeral": True,
            }
            self._apply_response(target, ack, via="ack")

    def _apply_view_ack(self, payload: dict[str, Any], ack: dict[str, Any]) -> None:
        stored = self.views.get(payload["view"]["id"])
        if stored is None:
            return
        action = ack.get("response_action")
        if action == "errors":
            stored.errors = ack.get("errors", {})
        elif action == "update":
            self._revise_view(stored, ack.get("view", {}))
        elif action == "push":
            self._store_view(ack.get("view", {}), user=stored.user, previous=stored)
        elif action == "clear":
            for view in self.views.values():
                if view.user == stored.user:
                    view.closed = True
        else:
            stored.closed = True

    # ------------------------------------------------------------------ Socket Mode

    async def _handle_socket(self, request: web.Request) -> web.StreamResponse:
        ticket = request.match_info["ticket"]
        if self._tickets.pop(ticket, None) is None:
            # A URL from apps.connections.open is good for one connection (the SDK asks anew).
            return web.Response(status=401, text="invalid_ticket")
        ws = web.WebSocketResponse(autoping=True)  # answers the SDK's pings with pongs
        await ws.prepare(request)
        connection = SocketConnection(
            id=len(self.socket_connections) + 1,
            ticket=ticket,
            opened_at=datetime.now(UTC),
            hello={},
        )
        self._sockets[connection.id] = ws
        connection.hello = {
            "type": "hello",
            "num_connections": len(self._sockets),
            "debug_info": {
                "host": f"applink-fake-{connection.id}",
                "build_number": 1,
                "approximate_connection_time": 18060,
            },
            "connection_info": {"app_id": self.app_id},
        }
        self.socket_connections.append(connection)
        try:
            await ws.send_json(connection.hello)
            self._socket_event()
            async for frame in ws:
                if frame.type == WSMsgType.TEXT:
                    self._receive_socket_frame(connection, frame.data)
        finally:
            self._sockets.pop(connection.id, None)
            connection.closed_at = datetime.now(UTC)
            if connection.closed_by is None:
                connection.closed_by = "app"
                connection.close_code = None if ws.close_code is None else int(ws.close_code)
            self._socket_event()
        return ws

    def _socket_event(self) -> None:
        """Wake whoever waits for a connection to open or close."""
        self._socket_changed.set()
        self._socket_changed = asyncio.Event()

    async def _wait_socket(self, condition: Any, within: float, what: str) -> None:
        deadline = time.monotonic() + within
        while not condition():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{what} within {within} s")
            changed = self._socket_changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)

    def _receive_socket_frame(self, connection: SocketConnection, data: str) -> None:
        try:
            message = json.loads(data)
        except ValueError:
            return
        if not isinstance(message, dict) or "envelope_id" not in message:
            return
        envelope_id = str(message["envelope_id"])
        sent = self._socket_sent.get(envelope_id)
        waiter = self._socket_waiters.get(envelope_id)
        payload = message.get("payload")
        ack = SocketAck(
            envelope_id=envelope_id,
            payload=payload if isinstance(payload, dict) else None,
            message=message,
            connection=connection.id,
            at=datetime.now(UTC),
            seconds=None if sent is None else time.monotonic() - sent[1],
            late=sent is not None and (waiter is None or waiter.cancelled()),
        )
        self.socket_acks.append(ack)
        if sent is None:
            return
        delivery = sent[0]
        if delivery.ack is None:
            delivery.ack = ack
        if waiter is not None and not waiter.done():
            if delivery.envelope.get("accepts_response_payload"):
                kind = _envelope_kind(delivery.envelope)
                self._apply_ack(kind, delivery.envelope["payload"], ack.payload)
            waiter.set_result(ack)

    def socket_envelope(self, request: SlackRequest) -> dict[str, Any]:
        """Wrap `request`'s payload in the Socket Mode envelope Slack sends for its kind.

        block_actions and view_submission go as ``interactive``, slash commands as
        ``slash_commands`` (form fields as a JSON object) and event callbacks as
        ``events_api`` with ``retry_attempt``/``retry_reason`` (from ``retry_num``).
        """
        envelope_type, accepts_payload = SOCKET_ENVELOPES[request.kind]
        envelope: dict[str, Any] = {
            "envelope_id": str(uuid.uuid4()),
            "payload": request.payload,
            "type": envelope_type,
            "accepts_response_payload": accepts_payload,
        }
        if envelope_type == "events_api":
            envelope["retry_attempt"] = int(request.headers.get("X-Slack-Retry-Num", "0"))
            envelope["retry_reason"] = request.headers.get("X-Slack-Retry-Reason", "")
        return envelope

    async def socket_send(
        self, request: SlackRequest | dict[str, Any], *, ack_timeout: float = SOCKET_ACK_TIMEOUT
    ) -> SocketAck | None:
        """Send `request` over Socket Mode to the newest open connection; return the app's ack.

        `request` is a SlackRequest (wrapped by `socket_envelope`) or a ready envelope dict.
        Waits up to `ack_timeout` seconds (Slack's 3 s) for ``{"envelope_id", "payload"?}``;
        without an ack in time it returns None and the delivery is recorded as ``timed_out``
        (an ack that comes later is still recorded, with ``late=True``, and has no effect).
        An ack in time acts like the HTTP answer in `deliver` when the envelope accepts a
        response payload: view_submission response_action, slash command message.
        """
        if isinstance(request, SlackRequest):
            envelope, slack_request = self.socket_envelope(request), request
        else:
            envelope, slack_request = request, None
        live = [c for c in self.socket_connections if c.open and c.id in self._sockets]
        if not live:
            raise RuntimeError(
                "no app is connected over Socket Mode: start the SocketModeHandler "
                "(connect_async) and `await slack.socket_connected()` first"
            )
        connection = live[-1]
        delivery = SocketDelivery(
            envelope=envelope,
            request=slack_request,
            connection=connection.id,
            sent_at=datetime.now(UTC),
            ack_timeout=ack_timeout,
        )
        envelope_id = delivery.envelope_id
        waiter: asyncio.Future[SocketAck] = asyncio.get_running_loop().create_future()
        self.socket_deliveries.append(delivery)
        self._socket_sent[envelope_id] = (delivery, time.monotonic())
        self._socket_waiters[envelope_id] = waiter
        try:
            await self._sockets[connection.id].send_str(json.dumps(envelope))
            return await asyncio.wait_for(waiter, ack_timeout)
        except TimeoutError:
            delivery.timed_out = True
            return None
        finally:
            self._socket_waiters.pop(envelope_id, None)

    async def socket_connected(self, *, count: int = 1, within: float = 3.0) -> SocketConnection:
        """Wait until `count` Socket Mode connections were opened in all and one is open.

        Returns the newest open connection; ``count=2`` waits for a reconnection.
        """

        def ready() -> bool:
            return len(self.socket_connections) >= count and any(
                c.open for c in self.socket_connections
            )

        await self._wait_socket(ready, within, f"no Socket Mode connection #{count}")
        return [c for c in self.socket_connections if c.open][-1]

    async def socket_disconnected(self, *, within: float = 3.0) -> None:
        """Wait until no Socket Mode connection is open (the app closed its handler)."""

        def idle() -> bool:
            return not any(c.open for c in self.socket_connections)

        await self._wait_socket(idle, within, "a Socket Mode connection stayed open")

    async def socket_disconnect(
        self,
        reason: str | None = "refresh_requested",
        *,
        close: bool = False,
        connection: SocketConnection | None = None,
    ) -> SocketConnection:
        """Play Slack ending a connection (default: the newest open one).

        Sends ``{"type": "disconnect", "reason": ...}`` (Slack's reasons: "warning",
        "refresh_requested", "link_disabled", "too_many_websockets"); the SDK then opens a new
        connection and closes this one. With ``close`` the fake also closes the socket (code
        1001); ``reason=None, close=True`` drops it without a word.
        """
        if connection is None:
            live = [c for c in self.socket_connections if c.open]
            if not live:
                raise RuntimeError("no Socket Mode connection is open")
            connection = live[-1]
        ws = self._sockets.get(connection.id)
        if ws is None:
            raise RuntimeError(f"Socket Mode connection {connection.id} is closed")
        if reason is not None:
            connection.disconnects.append(reason)
            await ws.send_json(
                {
                    "type": "disconnect",
                    "reason": reason,
                    "debug_info": {"host": connection.hello["debug_info"]["host"]},
                }
            )
        if close:
            await self._close_socket(connection, reason.encode() if reason else b"")
        return connection

    async def _close_socket(self, connection: SocketConnection, message: bytes) -> None:
        connection.closed_by, connection.close_code = "fake", int(WSCloseCode.GOING_AWAY)
        await self._sockets[connection.id].close(code=WSCloseCode.GOING_AWAY, message=message)


def _envelope_kind(envelope: dict[str, Any]) -> str:
    """Map a Socket Mode envelope back to the SlackRequest.kind it carries."""
    payload = envelope.get("payload") or {}
    if envelope.get("type") == "slash_commands":
        return "slash_command"
    if envelope.get("type") == "events_api":
        return "event_callback"
    return str(payload.get("type", ""))


def _state_value(element: dict[str, Any], value: Any) -> dict[str, Any]:
    """Shape a submitted value like Slack's view.state.values entry for `element`."""
    kind = element.get("type", "plain_text_input")
    if isinstance(value, dict):
        return {"type": kind, **value}
    if kind in {"static_select", "radio_buttons", "external_select"}:
        options = element.get("options") or []
        option = next((o for o in options if o.get("value") == value), None)
        return {"type": kind, "selected_option": option or {"value": value}}
    if kind == "checkboxes":
        chosen = value if isinstance(value, list) else [value]
        options = [o for o in element.get("options") or [] if o.get("value") in chosen]
        return {"type": kind, "selected_options": options}
    if kind == "users_select":
        return {"type": kind, "selected_user": value}
    if kind == "conversations_select":
        return {"type": kind, "selected_conversation": value}
    if kind == "channels_select":
        return {"type": kind, "selected_channel": value}
    if kind == "datepicker":
        return {"type": kind, "selected_date": value}
    if kind == "timepicker":
        return {"type": kind, "selected_time": value}
    return {"type": kind, "value": value}
