"""The JSON mention format of `POST /ingest` and `socialcare ingest FILE.jsonl`.

    {"source": "webhook", "external_id": "1234567890", "text": "…",
     "published_at": "2026-11-25T10:00:00+05:00", "url": "…", "platform": "instagram",
     "author": {"id": "42", "name": "…", "handle": "@…", "url": "…"},
     "thread_id": "…", "parent_id": "…"}

`source`, `external_id`, `text` and `published_at` (with an offset, from 2000 to a day
ahead) are required. Control characters are dropped from ids as from everything else.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)

from socialcare.adapters import json_body
from socialcare.bot.model import Author, RawMention
from socialcare.bot.pipeline import clean, implausible_time

MAX_TEXT = 100_000


def _id_text(value: Any) -> Any:
    # Platforms send ids as numbers or strings; they are compared as text, without the
    # control characters the pipeline drops (so that "\0" is refused as empty here).
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return clean(value) if isinstance(value, str) else value


def _platform(value: Any) -> Any:
    # Stored lowercased: measured so (a few letters grow when lowercased).
    return clean(value).lower() if isinstance(value, str) else value


def _iso_time(value: Any) -> Any:
    # Numbers would pass as Unix times; the format promises ISO 8601 with an offset.
    if not isinstance(value, str):
        raise ValueError("expected an ISO 8601 time with an offset, e.g. 2026-11-25T10:00:00+05:00")
    return value


ExternalId = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=256),
    BeforeValidator(_id_text),
]


class _Author(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: ExternalId | None = None
    name: str | None = Field(default=None, max_length=512)
    handle: str | None = Field(default=None, max_length=256)
    url: str | None = Field(default=None, max_length=2048)


class _Mention(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    source: str = Field(min_length=1, max_length=200)
    external_id: ExternalId
    text: str = Field(max_length=MAX_TEXT)
    published_at: Annotated[AwareDatetime, BeforeValidator(_iso_time)]
    url: str | None = Field(default=None, max_length=2048)
    platform: Annotated[str | None, BeforeValidator(_platform)] = Field(default=None,
                                                                        max_length=64)
    author: _Author | None = None
    thread_id: ExternalId | None = None
    parent_id: ExternalId | None = None
    rating: int | None = Field(default=None, ge=1, le=5, strict=True)

    def to_raw(self) -> RawMention:
        author = self.author or _Author()
        return RawMention(
            source=self.source,
            external_id=self.external_id,
            text=self.text,
            published_at=self.published_at,
            url=self.url,
            platform=self.platform,
            author=Author(id=author.id, name=author.name, handle=author.handle, url=author.url),
            thread_id=self.thread_id,
            parent_id=self.parent_id,
            rating=self.rating,
        )


class BadMentions(ValueError):
    """The JSON is not mentions in the documented format; the message says where."""


def parse_body(body: bytes, *, sources: Collection[str], now: datetime) -> list[RawMention]:
    """Parse one mention or a JSON list of them, or raise BadMentions naming the field.

    `sources` are the configured source names; a mention must name one of them, and be
    published between 2000 and a day after `now`.
    """
    try:
        data = json_body.loads(body)
    except json_body.BadJson as error:
        raise BadMentions(str(error)) from None
    if isinstance(data, list):
        if not data:
            raise BadMentions("an empty list: send at least one mention")
        return [_parse(item, f"[{i}].", sources, now) for i, item in enumerate(data)]
    return [_parse(data, "", sources, now)]


def parse_lines(
    lines: Iterable[str], *, sources: Collection[str], now: datetime
) -> tuple[list[RawMention], list[str]]:
    """Parse JSON Lines: return the mentions and a list of problems, each naming its line."""
    mentions: list[RawMention] = []
    problems: list[str] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            data = json_body.loads(line)
            mentions.append(_parse(data, f"line {number}: ", sources, now))
        except json_body.BadJson as error:
            problems.append(f"line {number}: {error}")
        except BadMentions as error:
            problems.append(str(error))
    return mentions, problems


def check(raw: RawMention, *, where: str, now: datetime) -> RawMention:
    """Hold a mention that a receiver made from another format to this one's rules
    (lengths, a plausible time, ids without control characters); return it as this
    format reads it, or raise BadMentions with the problem after `where`."""
    author = raw.author
    return _parse({
        "source": raw.source, "external_id": raw.external_id, "text": raw.text,
        "published_at": raw.published_at.isoformat(), "url": raw.url,
        "platform": raw.platform, "thread_id": raw.thread_id, "parent_id": raw.parent_id,
        "author": {"id": author.id, "name": author.name, "handle": author.handle,
                   "url": author.url},
        "rating": raw.rating,
    }, where, {raw.source}, now)


def _parse(data: Any, prefix: str, sources: Collection[str], now: datetime) -> RawMention:
    """Validate one mention; `prefix` names where it was ("[2]." or "line 3: ")."""
    if not isinstance(data, dict):
        raise BadMentions(f"{prefix}expected a JSON object, got {type(data).__name__}")
    try:
        mention = _Mention.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
        problem = str(first["msg"]).removeprefix("Value error, ")
        raise BadMentions(f"{prefix}{field}: {problem}{more}") from None
    if mention.source not in sources:
        known = ", ".join(sorted(sources))
        raise BadMentions(f"{prefix}source: unknown source {mention.source!r} (known: {known})")
    problem = implausible_time(mention.published_at, now)
    if problem is not None:
        raise BadMentions(f"{prefix}published_at: {problem}")
    return mention.to_raw()
