"""A fake Telegram Bot API that the real python-telegram-bot runs against, unmodified.

Usage::

    async with FakeTelegram() as tg:
        bot = Bot(tg.token, base_url=tg.url)          # or ApplicationBuilder().base_url(tg.url)
        await bot.send_message(-1001234567890, "<b>New case</b>", parse_mode="HTML")
        assert tg.last_message(-1001234567890).text == "New case"

It speaks the wire format of https://api.telegram.org/bot<token>/<method> (query, form, JSON or
multipart; answers ``{"ok": true, "result": ...}`` or ``{"ok": false, "error_code": N,
"description": ...}``), keeps chats and messages (raw HTML, parsed text, entities, inline
keyboard, edit history), validates HTML like the real parser, applies Telegram's flood limits
(toggle `rate_limits_enabled`), logs every call in `calls` and plays the faults tests ask for
(see `tests.fakes.server`).

It also plays Telegram towards an app: the ``*_update`` helpers build Update JSON shaped like
real captures, `push_update` queues them for getUpdates (long polling with offset
confirmation) and `deliver_webhook` POSTs them to an app's webhook.

Knowingly different from Telegram: a bare "&" that starts no entity is rejected by default
(Telegram keeps it literally; set ``strict_ampersand=False`` to match); Markdown parse modes
are stored unchecked; no automatic URL/hashtag entities; no service messages (pins, joins);
``allowed_updates`` is recorded but does not filter.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

import aiohttp
from aiohttp import web

from tests.fakes.server import (
    Clock,
    FakeServer,
    Fault,
    Limit,
    Reply,
    TokenBucket,
    UploadedFile,
    read_fields,
)

DEFAULT_GROUP = -1001234567890
DEFAULT_USER: dict[str, Any] = {
    "id": 1001,
    "is_bot": False,
    "first_name": "Alice",
    "username": "alice_agent",
    "language_code": "en",
}
MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_CALLBACK_DATA = 64
CALLBACK_QUERY_TTL = 15.0  # seconds; Telegram does not document it (5-15 s is reported)

NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are"
    " exactly the same as a current content and reply markup of the message"
)
QUERY_TOO_OLD = "Bad Request: query is too old and response timeout expired or query ID is invalid"
CONFLICT_OTHER_POLL = (
    "Conflict: terminated by other getUpdates request; make sure that only one bot instance"
    " is running"
)
CONFLICT_WEBHOOK = (
    "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete"
    " the webhook first"
)

# Methods that send or edit a message: they count against the flood limits.
FLOOD_METHODS = frozenset(
    {
        "sendmessage",
        "sendphoto",
        "senddocument",
        "editmessagetext",
        "editmessagereplymarkup",
        "editmessagecaption",
        "copymessage",
        "forwardmessage",
    }
)
INT_FIELDS = frozenset(
    {
        "message_id",
        "offset",
        "limit",
        "timeout",
        "message_thread_id",
        "reply_to_message_id",
        "cache_time",
        "max_connections",
        "user_id",
    }
)
JSON_FIELDS = frozenset(
    {
        "reply_markup",
        "entities",
        "caption_entities",
        "link_preview_options",
        "reply_parameters",
        "commands",
        "scope",
        "allowed_updates",
    }
)
BOOL_FIELDS = frozenset(
    {
        "disable_notification",
        "protect_content",
        "show_alert",
        "drop_pending_updates",
        "allow_sending_without_reply",
        "disable_web_page_preview",
    }
)
CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
HTML_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "span": "spoiler",
    "tg-spoiler": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
ATTRIBUTE = re.compile(r"""([^\s=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?""")
COMMAND = re.compile(r"(?<![\w/])/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?")
MENTION = re.compile(r"(?<![\w@])@[A-Za-z0-9_]{4,32}")


class TelegramApiFailure(Exception):
    """An API error the fake answers as ``{"ok": false, "error_code": ..., ...}``."""

    def __init__(self, code: int, description: str, parameters: dict[str, Any] | None = None):
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters


def bad_request(description: str) -> TelegramApiFailure:
    """Build a 400 error with Telegram's "Bad Request: " prefix."""
    return TelegramApiFailure(400, f"Bad Request: {description}")


def utf16_len(text: str) -> int:
    """Count `text` in UTF-16 code units, the unit of Telegram entity offsets."""
    return len(text.encode("utf-16-le")) // 2


def _decode_entity(source: str, start: int) -> tuple[str, int] | None:
    """Decode the HTML entity at `start` ("&...;"); None when there is no supported one."""
    end = source.find(";", start + 1, start + 12)
    if end == -1:
        return None
    name = source[start + 1 : end]
    if name in NAMED_ENTITIES:
        return NAMED_ENTITIES[name], end + 1
    try:
        if re.fullmatch(r"#[0-9]{1,7}", name):
            return chr(int(name[1:])), end + 1
        if re.fullmatch(r"#[xX][0-9a-fA-F]{1,6}", name):
            return chr(int(name[2:], 16)), end + 1
    except (ValueError, OverflowError):
        return None
    return None


def _decode_attribute(value: str) -> str:
    out, i = [], 0
    while i < len(value):
        decoded = _decode_entity(value, i) if value[i] == "&" else None
        if decoded:
            out.append(decoded[0])
            i = decoded[1]
        else:
            out.append(value[i])
            i += 1
    return "".join(out)


@dataclass
class _OpenTag:
    name: str
    attrs: dict[str, str]
    offset: int  # UTF-16 offset in the plain text
    byte_offset: int


def parse_html(source: str, *, strict_ampersand: bool = True) -> tuple[str, list[dict[str, Any]]]:
    """Parse Bot API HTML into plain text and entities; raise ValueError like Telegram's parser.

    The error text is what follows "Bad Request: can't parse entities: " in Telegram's answer.
    """
    text: list[str] = []
    entities: list[dict[str, Any]] = []
    stack: list[_OpenTag] = []
    offset = 0  # UTF-16 units of plain text so far
    i = 0

    def byte_at(index: int) -> int:
        return len(source[:index].encode())

    while i < len(source):
        char = source[i]
        if char == "&":
            decoded = _decode_entity(source, i)
            if decoded is not None:
                text.append(decoded[0])
                offset += utf16_len(decoded[0])
                i = decoded[1]
                continue
            if strict_ampersand:
                raise ValueError(f'Unescaped "&" at byte offset {byte_at(i)}; use "&amp;"')
        if char != "<":
            text.append(char)
            offset += utf16_len(char)
            i += 1
            continue
        close = source.find(">", i)
        is_end = source.startswith("</", i)
        if close == -1:
            kind = "end" if is_end else "start"
            raise ValueError(f"Unclosed {kind} tag at byte offset {byte_at(i)}")
        inner = source[i + 1 : close]
        if is_end:
            name = inner[1:].strip().lower()
            if not stack:
                raise ValueError(f"Unexpected end tag at byte offset {byte_at(i)}")
            tag = stack.pop()
            if name and name != tag.name:
                raise ValueError(
                    f'Unmatched end tag at byte offset {byte_at(i)}, expected "</{tag.name}>",'
                    f' found "</{name}>"'
                )
            entity = _entity_for(tag, offset - tag.offset, "".join(text))
            if entity is not None:
                entities.append(entity)
        else:
            name = re.split(r"\s", inner, maxsplit=1)[0].lower()
            if name not in HTML_TAGS:
                raise ValueError(f'Unsupported start tag "{name}" at byte offset {byte_at(i)}')
            attrs = {
                m.group(1).lower(): _decode_attribute(m.group(2) or m.group(3) or m.group(4) or "")
                for m in ATTRIBUTE.finditer(inner[len(name) :].rstrip("/"))
            }
            if name == "span" and attrs.get("class") != "tg-spoiler":
                raise ValueError(
                    f'Tag "span" must have class "tg-spoiler" at byte offset {byte_at(i)}'
                )
            stack.append(_OpenTag(name, attrs, offset, byte_at(i)))
        i = close + 1
    if stack:
        raise ValueError(f'Can\'t find end tag corresponding to start tag "{stack[-1].name}"')
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(text), entities


def _entity_for(tag: _OpenTag, length: int, text_so_far: str) -> dict[str, Any] | None:
    if length <= 0:
        return None
    entity: dict[str, Any] = {"type": HTML_TAGS[tag.name], "offset": tag.offset, "length": length}
    if tag.name == "a":
        entity["url"] = tag.attrs.get("href") or text_so_far[-length:]
    elif tag.name == "code" and tag.attrs.get("class", "").startswith("language-"):
        entity["language"] = tag.attrs["class"].removeprefix("language-")
    elif tag.name == "blockquote" and "expandable" in tag.attrs:
        entity["type"] = "expandable_blockquote"
    elif tag.name == "tg-emoji":
        emoji_id = tag.attrs.get("emoji-id", "")
        if not emoji_id.isdigit():
            raise ValueError("Invalid custom emoji identifier specified")
        entity["custom_emoji_id"] = emoji_id
    return entity


def detect_entities(text: str) -> list[dict[str, Any]]:
    """Find the bot_command and mention entities Telegram adds to a user's plain text."""
    found = []
    for pattern, kind in ((COMMAND, "bot_command"), (MENTION, "mention")):
        for match in pattern.finditer(text):
            found.append(
                {
                    "offset": utf16_len(text[: match.start()]),
                    "length": utf16_len(match.group()),
                    "type": kind,
                }
            )
    return sorted(found, key=lambda e: e["offset"])


def make_user(
    user_id: int = 1001,
    first_name: str = "Alice",
    *,
    username: str | None = "alice_agent",
    last_name: str | None = None,
) -> dict[str, Any]:
    """Build a Telegram User object of a human."""
    user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
    if last_name:
        user["last_name"] = last_name
    if username:
        user["username"] = username
    user["language_code"] = "en"
    return user


@dataclass
class TelegramRevision:
    """A former version of an edited message."""

    text: str | None
    raw_text: str | None
    entities: list[dict[str, Any]]
    reply_markup: dict[str, Any] | None
    replaced_at: datetime


@dataclass
class TelegramMessage:
    """A message in a chat as the fake stores it: raw HTML, parsed text, keyboard, history."""

    chat_id: int
    message_id: int
    sender: dict[str, Any]
    date: datetime
    text: str | None = None  # plain text after entity parsing
    raw_text: str | None = None  # the text as sent (the HTML markup with parse_mode=HTML)
    parse_mode: str | None = None
    entities: list[dict[str, Any]] = field(default_factory=list)
    caption: str | None = None
    raw_caption: str | None = None
    caption_entities: list[dict[str, Any]] = field(default_factory=list)
    reply_markup: dict[str, Any] | None = None
    reply_to_message_id: int | None = None
    message_thread_id: int | None = None
    link_preview_options: dict[str, Any] | None = None
    media: dict[str, Any] | None = None  # {"kind", "filename", "size", "content_type", ...}
    pinned: bool = False
    deleted: bool = False
    edit_date: datetime | None = None
    edits: list[TelegramRevision] = field(default_factory=list)

    @property
    def from_bot(self) -> bool:
        """Tell whether a bot sent the message."""
        return bool(self.sender.get("is_bot"))

    def keyboard(self) -> list[list[dict[str, Any]]]:
        """Return the inline keyboard rows (empty when there is none)."""
        return list((self.reply_markup or {}).get("inline_keyboard") or [])

    def buttons(self) -> list[tuple[str, str | None]]:
        """List (text, callback_data) of every inline button, row by row."""
        return [(b.get("text", ""), b.get("callback_data")) for row in self.keyboard() for b in row]

    def callback_data(self) -> list[str]:
        """List the callback_data of the inline buttons."""
        return [data for _, data in self.buttons() if data is not None]


@dataclass
class CallbackQuery:
    """A button press sent to the app, and the app's answer to it."""

    id: str
    user: dict[str, Any]
    chat_id: int
    message_id: int
    data: str
    issued: float
    answered: bool = False
    answer: dict[str, Any] | None = None  # text, show_alert, url, cache_time


@dataclass(frozen=True)
class WebhookDelivery:
    """An update POSTed to the app's webhook and the app's answer."""

    update: dict[str, Any]
    status: int
    text: str


class FakeTelegram(FakeServer):
    """A Telegram Bot API for one bot, served at `url` (PTB's ``base_url``)."""

    chaos_exempt = frozenset({"getMe", "getUpdates"})
    errors_count_against_limits = False  # flood control counts messages sent or edited

    def __init__(
        self,
        *,
        token: str = "123456789:AAFakeSocialCareTokenForTests_abcdefg",
        bot_username: str = "socialcare_test_bot",
        bot_name: str = "SocialCare",
        per_chat_per_second: float = 1.0,
        per_chat_burst: int = 3,
        per_group_per_minute: int = 20,
        overall_per_second: int = 30,
        strict_ampersand: bool = True,
        clock: Clock | None = None,
        rate_limits: bool = True,
    ) -> None:
        super().__init__(clock=clock, rate_limits=rate_limits)
        self.token = token
        self.bot_id = int(token.split(":", 1)[0])
        self.bot_user: dict[str, Any] = {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": bot_name,
            "username": bot_username,
        }
        self.strict_ampersand = strict_ampersand
        self.chats: dict[int, dict[str, Any]] = {}
        self.callback_queries: dict[str, CallbackQuery] = {}
        self.commands: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.chat_actions: list[tuple[int, str]] = []
        self.webhook: dict[str, Any] = {"url": ""}
        self.webhook_deliveries: list[WebhookDelivery] = []
        self.kicked: set[int] = set()
        self._messages: dict[int, list[TelegramMessage]] = {}
        self._next_message_id: dict[int, int] = {}
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(700_000_001)
        self._query_ids = itertools.count(4_278_655_576_057_498_001)
        self._file_ids = itertools.count(1)
        # Files users sent: file_id -> (file_path, bytes).
        self.user_files: dict[str, tuple[str, bytes]] = {}
        self._poller: asyncio.Future[str] | None = None
        self._per_chat = TokenBucket(per_chat_per_second, per_chat_burst)
        # Token buckets that start full, as python-telegram-bot's own limiter keeps them
        # (aiolimiter: 20 at once, then one every 3 s), not windows that let 20 through
        # and then nothing for a minute.
        self._per_group = TokenBucket(per_group_per_minute / 60.0, per_group_per_minute)
        self._overall = TokenBucket(float(overall_per_second), overall_per_second)
        handlers = {
            "getMe": self._get_me,
            "sendMessage": self._send_message,
            "editMessageText": self._edit_message_text,
            "editMessageReplyMarkup": self._edit_message_reply_markup,
            "editMessageCaption": self._edit_message_caption,
            "deleteMessage": self._delete_message,
            "answerCallbackQuery": self._answer_callback_query,
            "sendPhoto": self._send_photo,
            "getFile": self._get_file,
            "sendDocument": self._send_document,
            "pinChatMessage": self._pin_chat_message,
            "unpinChatMessage": self._unpin_chat_message,
            "setMyCommands": self._set_my_commands,
            "getMyCommands": self._get_my_commands,
            "deleteMyCommands": self._delete_my_commands,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "sendChatAction": self._send_chat_action,
            "getChat": self._get_chat,
            "getUpdates": self._get_updates,
        }
        # Bot API method names are case-insensitive.
        self._methods = {name.lower(): (name, handler) for name, handler in handlers.items()}

    # ------------------------------------------------------------------ server plumbing

    @property
    def url(self) -> str:
        """Return PTB's ``base_url`` (the token is appended by PTB)."""
        return f"{self.root_url}/bot"

    @property
    def file_url(self) -> str:
        """Return PTB's ``base_file_url``: files users sent are served there."""
        return f"{self.root_url}/file/bot"

    def add_routes(self, app: web.Application) -> None:
        """Register ``/bot<token>/<method>`` and ``/file/bot<token>/<file_path>``."""
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)

    # Users' photos: getFile gives a file_path, the bytes are at
    # {base_file_url}{token}/{file_path} (https://core.telegram.org/bots/api#getfile: a
    # bot downloads files up to 20 MB).
    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return web.json_response(_error_body(TelegramApiFailure(401, "Unauthorized")),
                                     status=401)
        found = next((data for file_id, (path, data) in self.user_files.items()
                      if path == request.match_info["path"]), None)
        if found is None:
            return web.json_response(_error_body(TelegramApiFailure(404, "Not Found")),
                                     status=404)
        return web.Response(body=found, content_type="application/octet-stream")

    async def _get_file(self, params: dict[str, Any], files: dict[str, Any]) -> Any:
        file_id = str(params.get("file_id", ""))
        if file_id not in self.user_files:
            raise bad_request("invalid file_id")
        path, data = self.user_files[file_id]
        return {"file_id": file_id, "file_unique_id": "U" + file_id[-8:],
                "file_size": len(data), "file_path": path}

    def photo_reply_update(self, to: TelegramMessage, data: bytes, caption: str | None = None,
                           *, from_user: dict[str, Any] | None = None) -> dict[str, Any]:
        """Build a user's photo (with a caption) sent in reply to message `to`."""
        sender = from_user or DEFAULT_USER
        number = next(self._file_ids)
        file_id = f"AgACAgIAAxkUser{number:08d}"
        self.user_files[file_id] = (f"photos/file_{number}.jpg", data)
        info = {"file_id": file_id, "file_unique_id": f"AQADUser{number:08d}",
                "file_size": len(data)}
        # Telegram sends every size it made; the last is the largest (the original here).
        api = {"photo": [{**info, "width": 90, "height": 90},
                         {**info, "width": 800, "height": 800}]}
        media = {"kind": "photo", "filename": None, "size": len(data), "content_type": None,
                 "data": data, "reference": None, "api": api}
        message = self._new_message(to.chat_id, sender, caption=caption, raw_caption=caption,
                                    reply_to_message_id=to.message_id, media=media)
        return self._next_update("message", self.render(message))

    async def close(self) -> None:
        """Answer a waiting getUpdates, then stop the server."""
        if self._poller is not None and not self._poller.done():
            self._poller.set_result("closing")
        await super().close()

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        token = request.match_info["token"]
        requested = request.match_info["method"]
        try:
            fields, files = await read_fields(request)
            params = self._coerce(fields)
        except TelegramApiFailure as failure:
            return web.json_response(_error_body(failure), status=failure.code)
        except ValueError:
            failure = bad_request("can't parse JSON encoded request")
            return web.json_response(_error_body(failure), status=400)
        logged = dict(params)
        logged.update({name: file.describe() for name, file in files.items()})
        if token != self.token:
            reply = Reply(401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
            self.log(requested, logged, reply)
            return web.json_response(reply.body, status=401)
        known = self._methods.get(requested.lower())
        if known is None:
            reply = Reply(404, {"ok": False, "error_code": 404, "description": "Not Found"})
            self.log(requested, logged, reply)
            return web.json_response(reply.body, status=404)
        method, handler = known

        async def apply() -> Reply:
            try:
                result = await handler(params, files)
            except TelegramApiFailure as failure:
                return Reply(failure.code, _error_body(failure))
            return Reply(200, {"ok": True, "result": result}, applied=method != "getUpdates")

        return await self.run_call(request, method, logged, apply)

    def _coerce(self, fields: dict[str, Any]) -> dict[str, Any]:
        params: dict[str, Any] = {}
        for name, value in fields.items():
            if isinstance(value, str):
                if name in JSON_FIELDS:
                    try:
                        value = json.loads(value) if value else None
                    except ValueError as exc:
                        what = "reply keyboard markup" if name == "reply_markup" else name
                        raise bad_request(f"can't parse {what} JSON object") from exc
                elif name in INT_FIELDS or (name == "chat_id" and re.fullmatch(r"-?\d+", value)):
                    try:
                        value = int(value)
                    except ValueError as exc:
                        raise bad_request(f"invalid {name} specified") from exc
                elif name in BOOL_FIELDS:
                    value = value.lower() in {"true", "1"}
            params[name] = value
        return params

    def fault_reply(self, method: str, fault: Fault) -> Reply:
        """Answer an injected fault as the Bot API would."""
        if fault.status == 429:
            return self.ratelimited_reply(method, fault.retry_after)
        try:
            phrase = HTTPStatus(fault.status).phrase
        except ValueError:
            phrase = "Error"
        description = fault.error or phrase
        body = {"ok": False, "error_code": fault.status, "description": description}
        return Reply(fault.status, body)

    def ratelimited_reply(self, method: str, retry_after: int) -> Reply:
        """Answer 429 with parameters.retry_after, as the Bot API does."""
        return Reply(
            429,
            {
                "ok": False,
                "error_code": 429,
                "description": f"Too Many Requests: retry after {retry_after}",
                "parameters": {"retry_after": retry_after},
            },
        )

    def limits_for(self, method: str, params: dict[str, Any]) -> list[Limit]:
        """Count sends and edits per chat, per group (negative ids, @names) and overall."""
        if method.lower() not in FLOOD_METHODS or "chat_id" not in params:
            return []
        chat_id = params["chat_id"]
        limits: list[Limit] = [(self._per_chat, chat_id), (self._overall, "all")]
        if isinstance(chat_id, str) or chat_id < 0:
            limits.append((self._per_group, chat_id))
        return limits

    # ------------------------------------------------------------------ chats and messages

    def add_chat(
        self,
        chat_id: int,
        *,
        chat_type: str | None = None,
        title: str | None = None,
        username: str | None = None,
        first_name: str | None = None,
        is_forum: bool = False,
    ) -> dict[str, Any]:
        """Add (or replace) a chat; its type follows from the id unless given."""
        if chat_type is None:
            if chat_id > 0:
                chat_type = "private"
            elif chat_id <= -1_000_000_000_000:
                chat_type = "supergroup"
            else:
                chat_type = "group"
        chat: dict[str, Any] = {"id": chat_id, "type": chat_type}
        if chat_type == "private":
            chat["first_name"] = first_name or "Alice"
        else:
            chat["title"] = title or f"Chat {chat_id}"
        if username:
            chat["username"] = username
        if is_forum:
            chat["is_forum"] = True
        self.chats[chat_id] = chat
        self._messages.setdefault(chat_id, [])
        return chat

    def remove_bot(self, chat_id: int) -> None:
        """Make the bot kicked from (or blocked in) `chat_id`: sends then answer 403."""
        self.kicked.add(chat_id)

    def messages(self, chat_id: int) -> list[TelegramMessage]:
        """Return the live messages of `chat_id`, oldest first."""
        return [m for m in self._messages.get(chat_id, []) if not m.deleted]

    def message(self, chat_id: int, message_id: int) -> TelegramMessage:
        """Return message `message_id` of `chat_id` (KeyError when there is none)."""
        for message in self._messages.get(chat_id, []):
            if message.message_id == message_id and not message.deleted:
                return message
        raise KeyError((chat_id, message_id))

    def last_message(self, chat_id: int, *, from_bot: bool = True) -> TelegramMessage:
        """Return the newest message of `chat_id` sent by the bot (or by anyone)."""
        for message in reversed(self.messages(chat_id)):
            if message.from_bot or not from_bot:
                return message
        raise KeyError(f"no message in chat {chat_id}")

    def bot_messages(self, chat_id: int) -> list[TelegramMessage]:
        """Return the live messages the bot sent to `chat_id`, oldest first."""
        return [m for m in self.messages(chat_id) if m.from_bot]

    def _ensure_chat(self, chat_id: int) -> dict[str, Any]:
        return self.chats.get(chat_id) or self.add_chat(chat_id)

    def _chat(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = params.get("chat_id")
        if chat_id is None or chat_id == "":
            raise bad_request("chat_id is empty")
        if isinstance(chat_id, str):
            name = chat_id.removeprefix("@").lower()
            for chat in self.chats.values():
                if str(chat.get("username", "")).lower() == name:
                    return chat
            raise bad_request("chat not found")
        chat = self._ensure_chat(chat_id)
        return chat

    def _writable_chat(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat(params)
        if chat["id"] in self.kicked:
            if chat["type"] == "private":
                raise TelegramApiFailure(403, "Forbidden: bot was blocked by the user")
            raise TelegramApiFailure(403, f"Forbidden: bot was kicked from the {chat['type']} chat")
        return chat

    def _new_message(self, chat_id: int, sender: dict[str, Any], **fields: Any) -> TelegramMessage:
        message_id = self._next_message_id.get(chat_id, 1)
        self._next_message_id[chat_id] = message_id + 1
        message = TelegramMessage(
            chat_id=chat_id, message_id=message_id, sender=sender, date=datetime.now(UTC), **fields
        )
        self._messages.setdefault(chat_id, []).append(message)
        return message

    def render(self, message: TelegramMessage, *, with_reply: bool = True) -> dict[str, Any]:
        """Render a stored message as a Bot API Message object."""
        out: dict[str, Any] = {
            "message_id": message.message_id,
            "from": message.sender,
            "chat": self.chats[message.chat_id],
            "date": int(message.date.timestamp()),
        }
        if message.message_thread_id is not None:
            out["message_thread_id"] = message.message_thread_id
        if message.reply_to_message_id is not None and with_reply:
            with contextlib.suppress(KeyError):
                replied = self.message(message.chat_id, message.reply_to_message_id)
                out["reply_to_message"] = self.render(replied, with_reply=False)
        if message.edit_date is not None:
            out["edit_date"] = int(message.edit_date.timestamp())
        if message.text is not None:
            out["text"] = message.text
            if message.entities:
                out["entities"] = message.entities
        if message.media is not None:
            out.update(message.media["api"])
        if message.caption is not None:
            out["caption"] = message.caption
            if message.caption_entities:
                out["caption_entities"] = message.caption_entities
        if message.link_preview_options:
            out["link_preview_options"] = message.link_preview_options
        if message.reply_markup and "inline_keyboard" in message.reply_markup:
            out["reply_markup"] = message.reply_markup
        return out

    def _find_editable(self, params: dict[str, Any], *, verb: str) -> TelegramMessage:
        if params.get("inline_message_id"):
            raise bad_request("MESSAGE_ID_INVALID")
        chat = self._writable_chat(params)
        try:
            message = self.message(chat["id"], int(params.get("message_id") or 0))
        except KeyError:
            raise bad_request(f"message to {verb} not found") from None
        if verb == "edit" and not message.from_bot:
            raise bad_request("message can't be edited")
        return message

    # ------------------------------------------------------------------ formatting checks

    def _formatted(
        self, raw: Any, params: dict[str, Any], *, entities_key: str, limit: int, what: str
    ) -> tuple[str | None, list[dict[str, Any]]]:
        """Parse text or caption per parse_mode; `what` names it in errors ("message text")."""
        if raw is None or raw == "":
            return None, []
        raw = str(raw)
        parse_mode = params.get("parse_mode")
        entities: list[dict[str, Any]] = list(params.get(entities_key) or [])
        text = raw
        if parse_mode:
            mode = str(parse_mode).lower()
            if mode == "html":
                try:
                    text, entities = parse_html(raw, strict_ampersand=self.strict_ampersand)
                except ValueError as exc:
                    raise bad_request(f"can't parse entities: {exc}") from exc
            elif mode not in {"markdown", "markdownv2"}:
                raise bad_request("unsupported parse_mode")
        if not text.strip():
            raise bad_request(f"{what} is empty")
        if len(text) > limit:
            # Telegram says "message is too long" for text, "message caption is too long".
            raise bad_request(f"{what.removesuffix(' text')} is too long")
        return text, entities

    def _markup(
        self, params: dict[str, Any], *, inline_only: bool = False
    ) -> dict[str, Any] | None:
        markup = params.get("reply_markup")
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise bad_request("can't parse reply keyboard markup JSON object")
        if "inline_keyboard" not in markup:
            if inline_only:
                raise bad_request("inline keyboard expected")
            return markup
        rows = markup["inline_keyboard"]
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise bad_request(
                'field "inline_keyboard" of the InlineKeyboardMarkup must be an Array of Arrays'
            )
        for row in rows:
            for button in row:
                if not isinstance(button, dict) or not button.get("text"):
                    raise bad_request("can't parse inline keyboard button: Text must be non-empty")
                if "callback_data" in button:
                    size = len(str(button["callback_data"]).encode())
                    if not 1 <= size <= MAX_CALLBACK_DATA:
                        raise bad_request("BUTTON_DATA_INVALID")
                elif "url" in button:
                    if not re.match(r"(https?|tg)://\S+", str(button["url"])):
                        raise bad_request("BUTTON_URL_INVALID")
                elif not set(button) - {"text"}:
                    raise bad_request(
                        "can't parse inline keyboard button: Text buttons are unallowed in the"
                        " inline keyboard"
                    )
        return markup

    def _reply_target(self, chat_id: int, params: dict[str, Any]) -> int | None:
        reply = params.get("reply_parameters") or {}
        message_id = reply.get("message_id") or params.get("reply_to_message_id")
        allow = reply.get("allow_sending_without_reply", params.get("allow_sending_without_reply"))
        if not message_id:
            return None
        target_chat = reply.get("chat_id", chat_id)
        try:
            self.message(int(target_chat), int(message_id))
        except (KeyError, ValueError):
            if allow:
                return None
            raise bad_request("message to be replied not found") from None
        return int(message_id)

    # ------------------------------------------------------------------ API methods

    async def _get_me(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        return {
            **self.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _send_message(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        chat = self._writable_chat(params)
        raw = params.get("text")
        text, entities = self._formatted(
            raw, params, entities_key="entities", limit=MAX_TEXT, what="message text"
        )
        if text is None:
            raise bad_request("message text is empty")
        markup = self._markup(params)
        reply_to = self._reply_target(chat["id"], params)
        message = self._new_message(
            chat["id"],
            self.bot_user,
            text=text,
            raw_text=str(raw),
            parse_mode=params.get("parse_mode"),
            entities=entities,
            reply_markup=markup,
            reply_to_message_id=reply_to,
            message_thread_id=params.get("message_thread_id"),
            link_preview_options=params.get("link_preview_options"),
        )
        return self.render(message)

    def _revise(self, message: TelegramMessage) -> None:
        message.edits.append(
            TelegramRevision(
                message.text if message.text is not None else message.caption,
                message.raw_text if message.text is not None else message.raw_caption,
                message.entities,
                message.reply_markup,
                datetime.now(UTC),
            )
        )
        message.edit_date = datetime.now(UTC)

    async def _edit_message_text(self, params: dict[str, Any], files: dict[str, Any]) -> Any:
        message = self._find_editable(params, verb="edit")
        raw = params.get("text")
        text, entities = self._formatted(
            raw, params, entities_key="entities", limit=MAX_TEXT, what="message text"
        )
        if text is None:
            raise bad_request("message text is empty")
        if message.text is None:
            raise bad_request("there is no text in the message to edit")
        # Leaving reply_markup out of an edit removes the inline keyboard, as on Telegram.
        markup = self._markup(params, inline_only=True)
        if (text, entities, markup) == (message.text, message.entities, message.reply_markup):
            raise bad_request(NOT_MODIFIED.removeprefix("Bad Request: "))
        self._revise(message)
        message.text, message.raw_text, message.entities = text, str(raw), entities
        message.parse_mode = params.get("parse_mode")
        message.reply_markup = markup
        if "link_preview_options" in params:
            message.link_preview_options = params["link_preview_options"]
        return self.render(message)

    async def _edit_message_reply_markup(
        self, params: dict[str, Any], files: dict[str, Any]
    ) -> Any:
        message = self._find_editable(params, verb="edit")
        markup = self._markup(params, inline_only=True)
        if markup == message.reply_markup:
            raise bad_request(NOT_MODIFIED.removeprefix("Bad Request: "))
        self._revise(message)
        message.reply_markup = markup
        return self.render(message)

    async def _edit_message_caption(self, params: dict[str, Any], files: dict[str, Any]) -> Any:
        message = self._find_editable(params, verb="edit")
        if message.media is None:
            raise bad_request("there is no caption in the message to edit")
        raw = params.get("caption")
        caption, entities = self._formatted(
            raw, params, entities_key="caption_entities", limit=MAX_CAPTION, what="message caption"
        )
        markup = self._markup(params, inline_only=True)
        old = (message.caption, message.caption_entities, message.reply_markup)
        if (caption, entities, markup) == old:
            raise bad_request(NOT_MODIFIED.removeprefix("Bad Request: "))
        self._revise(message)
        message.caption, message.caption_entities = caption, entities
        message.raw_caption = str(raw) if raw is not None else None
        message.reply_markup = markup
        return self.render(message)

    async def _delete_message(self, params: dict[str, Any], files: dict[str, Any]) -> Any:
        message = self._find_editable(params, verb="delete")
        message.deleted = True
        return True

    async def _answer_callback_query(self, params: dict[str, Any], files: dict[str, Any]) -> Any:
        query = self.callback_queries.get(str(params.get("callback_query_id") or ""))
        if query is None or query.answered or self.clock() - query.issued > CALLBACK_QUERY_TTL:
            raise bad_request(QUERY_TOO_OLD.removeprefix("Bad Request: "))
        query.answered = True
        query.answer = {
            key: params[key] for key in ("text", "show_alert", "url", "cache_time") if key in params
        }
        return True

    async def _send_media(
        self, params: dict[str, Any], files: dict[str, UploadedFile], kind: str
    ) -> Any:
        chat = self._writable_chat(params)
        upload = files.get(kind)
        if upload is None and not params.get(kind):
            raise bad_request(f"there is no {kind} in the request")
        caption, entities = self._formatted(
            params.get("caption"),
            params,
            entities_key="caption_entities",
            limit=MAX_CAPTION,
            what="message caption",
        )
        number = next(self._file_ids)
        file_id = ("AgACAgIAAxk" if kind == "photo" else "BQACAgIAAxk") + f"{number:08d}"
        size = len(upload.data) if upload else 0
        info: dict[str, Any] = {
            "file_id": file_id,
            "file_unique_id": f"AQAD{number:08d}",
            "file_size": size,
        }
        if kind == "photo":
            api = {
                "photo": [
                    {**info, "width": 90, "height": 90},
                    {**info, "width": 800, "height": 800},
                ]
            }
        else:
            api = {
                "document": {
                    **info,
                    "file_name": upload.filename if upload else None,
                    "mime_type": (upload.content_type if upload else None)
                    or "application/octet-stream",
                }
            }
        media = {
            "kind": kind,
            "filename": upload.filename if upload else None,
            "size": size,
            "content_type": upload.content_type if upload else None,
            "data": upload.data if upload else None,
            "reference": None if upload else params.get(kind),  # a file_id or URL sent instead
            "api": api,
        }
        message = self._new_message(
            chat["id"],
            self.bot_user,
            caption=caption,
            raw_caption=params.get("caption"),
            caption_entities=entities,
            parse_mode=params.get("parse_mode"),
            reply_markup=self._markup(params),
            reply_to_message_id=self._reply_target(chat["id"], params),
            message_thread_id=params.get("message_thread_id"),
            media=media,
        )
        return self.render(message)

    async def _send_photo(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        return await self._send_media(params, files, "photo")

    async def _send_document(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        return await self._send_media(params, files, "document")

    async def _pin_chat_message(self, params: dict[str, Any], files: dict[str, Any]) -> Any:
        chat = self._writable_chat(params)
        try:
            message = self.message(chat["id"], int(params.get("message_id") or 0))
        except KeyError:
            raise bad_request("message to pin not found") from None
        message.pinned = True
        return True

    async def _unpin_chat_message(self, params: dict[str, Any], files: dict[str, Any]) -> Any:
        chat = self._writable_chat(params)
        pinned = [m for m in self.messages(chat["id"]) if m.pinned]
        if params.get("message_id"):
            pinned = [m for m in pinned if m.message_id == params["message_id"]]
        if not pinned:
            raise bad_request("message to unpin not found")
        pinned[-1].pinned = False
        return True

    @staticmethod
    def _commands_key(params: dict[str, Any]) -> tuple[str, str]:
        scope = params.get("scope") or {"type": "default"}
        return json.dumps(scope, sort_keys=True), str(params.get("language_code") or "")

    async def _set_my_commands(self, params: dict[str, Any], files: dict[str, Any]) -> Any:
        commands = params.get("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise bad_request("can't parse commands JSON object")
        for command in commands:
            if not re.fullmatch(r"[a-z0-9_]{1,32}", str(command.get("command", ""))):
                raise bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", ""))) <= 256:
                raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        self.commands[self._commands_key(params)] = [
            {"command": c["command"], "description": c["description"]} for c in commands
        ]
        return True

    async def _get_my_commands(self, params: dict[str, Any], files: dict[str, Any]) -> Any:
        return self.commands.get(self._commands_key(params), [])

    async def _delete_my_commands(self, params: dict[str, Any], files: dict[str, Any]) -> Any:
        self.commands.pop(self._commands_key(params), None)
        return True

    async def _set_webhook(self, params: dict[str, Any], files: dict[str, Any]) -> Any:
        url = str(params.get("url") or "")
        secret = params.get("secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", str(secret)):
            raise bad_request("secret token contains unallowed characters")
        if params.get("drop_pending_updates"):
            self._updates.clear()
        if not url:
            self.webhook = {"url": ""}
            return True
        self.webhook = {
            "url": url,
            "secret_token": secret,
            "max_connections": params.get("max_connections", 40),
            "allowed_updates": params.get("allowed_updates"),
        }
        return True

    async def _delete_webhook(self, params: dict[str, Any], files: dict[str, Any]) -> Any:
        if params.get("drop_pending_updates"):
            self._updates.clear()
        self.webhook = {"url": ""}
        return True

    async def _get_webhook_info(self, params: dict[str, Any], files: dict[str, Any]) -> Any:
        info: dict[str, Any] = {
            "url": self.webhook["url"],
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }
        if self.webhook["url"]:
            info["max_connections"] = self.webhook["max_connections"]
            info["ip_address"] = "127.0.0.1"
            if self.webhook["allowed_updates"]:
                info["allowed_updates"] = self.webhook["allowed_updates"]
        return info

    async def _send_chat_action(self, params: dict[str, Any], files: dict[str, Any]) -> Any:
        chat = self._writable_chat(params)
        action = str(params.get("action") or "")
        if action not in CHAT_ACTIONS:
            raise bad_request("wrong parameter action in request")
        self.chat_actions.append((chat["id"], action))
        return True

    async def _get_chat(self, params: dict[str, Any], files: dict[str, Any]) -> Any:
        chat = self._chat(params)
        return {
            **chat,
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        }

    # -- getUpdates: long polling over the queue the tests push into

    def _confirm(self, offset: int | None) -> None:
        if offset is None or offset == 0:
            return
        if offset > 0:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        else:
            self._updates = self._updates[offset:]

    async def _get_updates(self, params: dict[str, Any], files: dict[str, Any]) -> Any:
        if self.webhook["url"]:
            raise TelegramApiFailure(409, CONFLICT_WEBHOOK)
        self._confirm(params.get("offset"))
        limit = max(1, min(int(params.get("limit") or 100), 100))
        timeout = max(0, int(params.get("timeout") or 0))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        if self._poller is not None and not self._poller.done():
            self._poller.set_result("conflict")  # a newer poll ends the older one, as on Telegram
        waiter: asyncio.Future[str] = loop.create_future()
        self._poller = waiter
        try:
            while True:
                ready = self._updates[:limit]
                remaining = deadline - loop.time()
                if ready or remaining <= 0:
                    return ready
                try:
                    reason = await asyncio.wait_for(asyncio.shield(waiter), remaining)
                except TimeoutError:
                    return []
                if reason == "conflict":
                    raise TelegramApiFailure(409, CONFLICT_OTHER_POLL)
                if reason == "closing":
                    return []
                waiter = loop.create_future()
                self._poller = waiter
        finally:
            if self._poller is waiter:
                self._poller = None

    # ------------------------------------------------------------------ playing Telegram

    def push_update(self, update: dict[str, Any]) -> dict[str, Any]:
        """Queue `update` for getUpdates and wake a waiting long poll; return it."""
        self._updates.append(update)
        self._updates.sort(key=lambda u: u["update_id"])
        if self._poller is not None and not self._poller.done():
            self._poller.set_result("update")
        return update

    @property
    def pending_updates(self) -> list[dict[str, Any]]:
        """Return the updates not yet confirmed by a getUpdates offset."""
        return list(self._updates)

    async def deliver_webhook(
        self,
        update: dict[str, Any],
        url: str | None = None,
        *,
        secret_token: str | None = None,
        max_wait: float = 10.0,
    ) -> WebhookDelivery:
        """POST `update` to the app's webhook (default: the URL from setWebhook).

        The X-Telegram-Bot-Api-Secret-Token header carries `secret_token`, or the secret given
        to setWebhook; pass ``secret_token=""`` to send none.
        """
        target = url or self.webhook["url"]
        if not target:
            raise ValueError("no webhook URL: pass url= or let the app call setWebhook")
        secret = self.webhook.get("secret_token") if secret_token is None else secret_token
        headers = {"Content-Type": "application/json"}
        if secret:
            headers["X-Telegram-Bot-Api-Secret-Token"] = secret
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=max_wait)) as session,
            session.post(target, data=json.dumps(update).encode(), headers=headers) as response,
        ):
            delivery = WebhookDelivery(update, response.status, await response.text())
        self.webhook_deliveries.append(delivery)
        return delivery

    def _next_update(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        return {"update_id": next(self._update_ids), kind: body}

    def _user_message(
        self,
        chat_id: int,
        text: str,
        from_user: dict[str, Any] | None,
        *,
        reply_to: TelegramMessage | None = None,
        entities: list[dict[str, Any]] | None = None,
        message_thread_id: int | None = None,
    ) -> dict[str, Any]:
        sender = from_user or DEFAULT_USER
        if chat_id not in self.chats:
            if chat_id > 0:
                self.add_chat(
                    chat_id, first_name=sender["first_name"], username=sender.get("username")
                )
            else:
                self.add_chat(chat_id)
        message = self._new_message(
            chat_id,
            sender,
            text=text,
            raw_text=text,
            entities=detect_entities(text) if entities is None else entities,
            reply_to_message_id=reply_to.message_id if reply_to else None,
            message_thread_id=message_thread_id,
        )
        return self._next_update("message", self.render(message))

    def message_update(
        self,
        text: str,
        *,
        chat_id: int = DEFAULT_GROUP,
        from_user: dict[str, Any] | None = None,
        reply_to: TelegramMessage | None = None,
        message_thread_id: int | None = None,
    ) -> dict[str, Any]:
        """Build a message Update from a user (commands and @mentions get their entities)."""
        return self._user_message(
            chat_id, text, from_user, reply_to=reply_to, message_thread_id=message_thread_id
        )

    def command_update(
        self,
        command: str,
        args: str = "",
        *,
        chat_id: int = DEFAULT_GROUP,
        from_user: dict[str, Any] | None = None,
        mention_bot: bool = False,
    ) -> dict[str, Any]:
        """Build ``/command[@bot] args`` from a user, with a bot_command entity at offset 0."""
        command = "/" + command.removeprefix("/")
        if mention_bot and "@" not in command:
            command += "@" + self.bot_user["username"]
        text = f"{command} {args}".rstrip()
        entity = {"offset": 0, "length": utf16_len(command), "type": "bot_command"}
        others = [e for e in detect_entities(text) if e["offset"] > 0]
        return self._user_message(chat_id, text, from_user, entities=[entity, *others])

    def private_message_update(
        self, text: str, *, from_user: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Build a message Update in the private chat of `from_user` with the bot."""
        sender = from_user or DEFAULT_USER
        return self._user_message(sender["id"], text, sender)

    def reply_update(
        self, to: TelegramMessage, text: str, *, from_user: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Build a user's reply to message `to` (e.g. a card the bot posted)."""
        return self._user_message(to.chat_id, text, from_user, reply_to=to)

    def callback_query_update(
        self,
        message: TelegramMessage,
        data: str,
        *,
        from_user: dict[str, Any] | None = None,
        check: bool = True,
    ) -> dict[str, Any]:
        """Build the Update of a user pressing the button with `data` under `message`.

        With ``check``, the button must be on the message's current keyboard. The query id
        is registered, so answerCallbackQuery accepts it once.
        """
        if check and data not in message.callback_data():
            raise ValueError(
                f"no button with callback_data={data!r} on message {message.message_id}; "
                f"it has {message.callback_data()}"
            )
        user = from_user or DEFAULT_USER
        query_id = str(next(self._query_ids))
        self.callback_queries[query_id] = CallbackQuery(
            id=query_id,
            user=user,
            chat_id=message.chat_id,
            message_id=message.message_id,
            data=data,
            issued=self.clock(),
        )
        body = {
            "id": query_id,
            "from": user,
            "message": self.render(message),
            "chat_instance": str(-(abs(message.chat_id) * 7919 % 10**18)),
            "data": data,
        }
        return self._next_update("callback_query", body)


def _error_body(failure: TelegramApiFailure) -> dict[str, Any]:
    body: dict[str, Any] = {
        "ok": False,
        "error_code": failure.code,
        "description": failure.description,
    }
    if failure.parameters:
        body["parameters"] = failure.parameters
    return body
