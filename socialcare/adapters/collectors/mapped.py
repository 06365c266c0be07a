"""Mapped webhooks: a listening platform's own JSON, mapped to mentions by the config.

    [[sources]]
    name = "youscan"
    kind = "mapped"
    platform = "web"
    tier = "main"
    [sources.options]
    secret_env = "YOUSCAN_SECRET"       # the environment variable holding the secret
    signature = "hmac-sha256"           # or "token": ?token=<secret> in the URL
    header = "X-Signature"              # hmac-sha256: the header and what precedes the hex
    prefix = "sha256="
    items = "mentions"                  # where the list of mentions is (omit: the body)
    time_format = "iso"                 # iso, unix, unix_ms, or a strptime pattern
    [sources.options.fields]            # dotted paths into each item; numbers index lists
    external_id = "id"
    text = "text"
    published_at = "published"
    url = "url"
    platform = "source.type"
    author_name = "author.fullName"
    author_handle = "author.nickname"
    author_url = "author.url"
    thread_id = "post.id"

The platform POSTs to `/ingest/youscan`. The whole request is checked before any of
it is stored: a wrong signature is a 401, an item without a mapped field a 400 that
names the item and the path, one that breaks the rules of `POST /ingest` (lengths, a
time from 2000 to a day ahead) a 400 that names the item and the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from socialcare.adapters import json_body
from socialcare.adapters.collectors.mention_json import BadMentions, check
from socialcare.adapters.collectors.push import Pushed, Refused, hmac_sha256, same
from socialcare.bot.model import Author, RawMention
from socialcare.bot.pipeline import clean
from socialcare.bot.team import Source

MAX_ITEMS = 1000


class Fields(BaseModel):
    """Where each mention field is in an item (dotted paths)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    external_id: str
    text: str
    published_at: str | None = None  # absent: the time it arrived
    url: str | None = None
    platform: str | None = None
    author_id: str | None = None
    author_name: str | None = None
    author_handle: str | None = None
    author_url: str | None = None
    thread_id: str | None = None
    parent_id: str | None = None


class Options(BaseModel):
    """A mapped webhook's options."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    secret_env: str = Field(min_length=1)
    signature: Literal["hmac-sha256", "token"] = "hmac-sha256"
    header: str = "X-Signature"
    prefix: str = "sha256="
    token_param: str = "token"
    items: str | None = None
    time_format: str = "iso"
    fields: Fields


class MappedReceiver:
    """Checks and maps the requests of one mapped webhook."""

    def __init__(self, options: Options, secret: str) -> None:
        self._options = options
        self._secret = secret

    def verify(self, pushed: Pushed) -> None:
        """Refuse a request that does not carry the source's secret or signature."""
        options = self._options
        if options.signature == "token":
            if not same(pushed.query.get(options.token_param), self._secret):
                raise Refused(401, f"bad or missing ?{options.token_param}= token")
        elif not same(pushed.headers.get(options.header),
                      options.prefix + hmac_sha256(self._secret, pushed.body)):
            raise Refused(401, f"bad or missing {options.header} signature")

    async def receive(self, source: Source, pushed: Pushed, *,
                      now: datetime) -> list[RawMention]:
        """Return the request's mentions, or raise Refused saying what is wrong."""
        self.verify(pushed)
        try:
            data = json_body.loads(pushed.body)
        except json_body.BadJson as error:
            raise Refused(400, str(error)) from None
        items = data
        if self._options.items:
            items = lookup(data, self._options.items)
            if items is None:
                raise Refused(400, f"no {self._options.items!r} in the body")
        if isinstance(items, dict):
            items = [items]
        if not isinstance(items, list):
            raise Refused(400, f"expected a list of mentions, got {type(items).__name__}")
        if len(items) > MAX_ITEMS:
            raise Refused(413, f"over {MAX_ITEMS} mentions: send fewer per request")
        return [self._mention(source, item, f"[{i}]", now) for i, item in enumerate(items)]

    def _mention(self, source: Source, item: Any, where: str, now: datetime) -> RawMention:
        fields = self._options.fields

        def field(name: str, *, required: bool = False) -> str | None:
            path = getattr(fields, name)
            value = None if path is None else lookup(item, path)
            if isinstance(value, bool | dict | list):
                value = None
            text = None if value is None else clean(str(value))
            if required and not text:
                raise Refused(400, f"{where}: no {name} at {path!r}")
            return text or None

        if not isinstance(item, dict):
            raise Refused(400, f"{where}: expected a JSON object, got {type(item).__name__}")
        published = field("published_at")
        try:
            at = now if published is None else parse_time(published, self._options.time_format)
        except (ValueError, OverflowError, OSError) as error:
            raise Refused(400, f"{where}: published_at {published!r}: {error}") from None
        made = RawMention(
            source=source.name,
            external_id=field("external_id", required=True) or "",
            text=field("text", required=True) or "",
            published_at=at,
            url=field("url"),
            platform=field("platform"),
            author=Author(id=field("author_id"), name=field("author_name"),
                          handle=field("author_handle"), url=field("author_url")),
            thread_id=field("thread_id"),
            parent_id=field("parent_id"),
        )
        try:
            return check(made, where=f"{where}: ", now=now)
        except BadMentions as error:
            raise Refused(400, str(error)) from None


def lookup(data: Any, path: str) -> Any:
    """Follow a dotted path ("author.name", "items.0.id") into JSON; None if absent."""
    for part in path.split("."):
        if isinstance(data, Mapping):
            data = data.get(part)
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return None
    return data


def parse_time(value: str, time_format: str) -> datetime:
    """Read a time in the configured format; a time without an offset is UTC."""
    if time_format in ("unix", "unix_ms"):
        seconds = float(value) / (1000 if time_format == "unix_ms" else 1)
        return datetime.fromtimestamp(seconds, UTC)
    if time_format == "iso":
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    else:
        at = datetime.strptime(value, time_format)  # noqa: DTZ007 (UTC unless %z)
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)
