"""Facebook and Instagram: Meta Graph webhooks in, Graph API replies out.

    [[sources]]
    name = "meta"
    kind = "meta"
    platform = "facebook"              # Instagram items are marked "instagram"
    tier = "main"
    [sources.options]
    app_secret_env = "META_APP_SECRET"        # checks X-Hub-Signature-256
    verify_token_env = "META_VERIFY_TOKEN"    # answers the hub.challenge
    page_token_env = "META_PAGE_TOKEN"        # reads mentions, posts replies
    page_id = "1142469655832956"
    ig_user_id = "17841405726653026"

Meta calls `GET /meta/meta?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…`
once to check the endpoint, then POSTs changes signed with the app secret. Page
`feed` changes bring comments and visitors' posts whole; Instagram `comments` come
whole too (only the permalink of the post they are under is looked up), but Instagram
`mentions` bring only ids, so the comment or caption is looked up in the Graph API
before it becomes a mention: without the page token and `ig_user_id` they are dropped,
with a warning.

Ids: a Facebook comment or post keeps its Graph id; an Instagram comment on our
media its comment id; an @mention `mention:{media}` (a caption) or
`mention:{media}:{comment}` (a comment), because a reply to a mention goes through
the `/{ig-user}/mentions` edge, which needs both.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from socialcare.adapters import json_body
from socialcare.adapters.collectors.http import request_json
from socialcare.adapters.collectors.mention_json import BadMentions, check
from socialcare.adapters.collectors.push import (
    Pushed,
    Refused,
    check_hub_signature,
    hub_challenge,
)
from socialcare.bot.answers.pictures import MB, Picture, PictureLimits
from socialcare.bot.model import Author, Mention, RawMention
from socialcare.bot.pipeline import implausible_time
from socialcare.bot.ports import Published, PublishFailed
from socialcare.bot.sources import SourceUnavailable
from socialcare.bot.team import Source

log = logging.getLogger(__name__)

# What a Facebook photo takes (the Page photo upload: JPEG, PNG, GIF… "less than 4 MB",
# https://developers.facebook.com/docs/graph-api/reference/page/photos); a comment has
# no caption limit of its own.
FACEBOOK_PHOTOS = PictureLimits(max_bytes=4 * MB, types=("image/png", "image/jpeg", "image/gif"))
# Page feed items that are someone saying something.
FEED_ITEMS = frozenset({"comment", "post", "status", "photo", "video", "share"})
# A permalink only makes a card's link better: asked for briefly, remembered per post.
PERMALINK_TIMEOUT = aiohttp.ClientTimeout(total=5)
PERMALINKS_KEPT = 512


class Options(BaseModel):
    """A Meta source's options."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    graph_url: HttpUrl = HttpUrl("https://graph.facebook.com/v21.0")
    app_secret_env: str = Field(min_length=1)
    verify_token_env: str = Field(min_length=1)
    page_token_env: str | None = None
    page_id: str | None = None
    ig_user_id: str | None = None


class MetaReceiver:
    """Checks, reads and answers one Meta app's webhooks for one source."""

    def __init__(self, session: aiohttp.ClientSession, options: Options, *, app_secret: str,
                 verify_token: str, page_token: str | None) -> None:
        self._session = session
        self._options = options
        self._app_secret = app_secret
        self._verify_token = verify_token
        self._page_token = page_token
        self._graph = str(options.graph_url).rstrip("/")
        self._permalinks: dict[str, str] = {}  # our Instagram media id → its permalink

    @property
    def can_publish(self) -> bool:
        """Replies need the page token."""
        return self._page_token is not None

    def challenge(self, query: Mapping[str, str]) -> str:
        """Answer Meta's endpoint check with its challenge, or refuse it."""
        return hub_challenge(query, self._verify_token)

    def verify(self, pushed: Pushed) -> None:
        """Refuse a body that the app secret did not sign."""
        check_hub_signature(pushed, self._app_secret)

    async def receive(self, source: Source, pushed: Pushed, *,
                      now: datetime) -> list[RawMention]:
        """Return the mentions of a signed delivery (looking up Instagram mentions)."""
        self.verify(pushed)
        try:
            body = json_body.loads(pushed.body)
        except json_body.BadJson as error:
            raise Refused(400, str(error)) from None
        if not isinstance(body, dict) or body.get("object") not in ("page", "instagram"):
            raise Refused(400, "expected object \"page\" or \"instagram\"")
        found: list[RawMention] = []
        unread = 0  # Instagram mentions that cannot be looked up
        for i, entry in enumerate(_list(body, "entry", "")):
            if not isinstance(entry, dict):
                raise Refused(400, f"entry[{i}]: expected an object, got {type(entry).__name__}")
            for j, change in enumerate(_list(entry, "changes", f"entry[{i}].")):
                where = f"entry[{i}].changes[{j}]"
                value = change.get("value") if isinstance(change, dict) else None
                if not isinstance(value, dict):
                    raise Refused(400, f"{where}: expected an object with a \"value\" object")
                field = change.get("field")
                if body["object"] == "page" and field == "feed":
                    mention = _feed(source, value, now, where=f"{where}.value")
                elif field == "comments":
                    mention = _ig_comment(source, value, now, where=f"{where}.value")
                    if mention is not None:
                        mention = await self._with_permalink(source, mention, value)
                elif field == "mentions" and self._missing_for_mentions():
                    mention, unread = None, unread + 1
                elif field == "mentions":
                    mention = await self._ig_mention(source, value, now, where=f"{where}.value")
                else:
                    mention = None
                if mention is not None:
                    try:
                        found.append(check(mention, where=f"{where}.value: ", now=now))
                    except BadMentions as error:
                        raise Refused(400, str(error)) from None
        if unread:
            log.warning("Meta source %s: %d Instagram mention(s) dropped: looking them up "
                        "needs options.%s", source.name, unread,
                        " and options.".join(self._missing_for_mentions()))
        return found

    def _missing_for_mentions(self) -> list[str]:
        """Name the options an Instagram mention lookup needs and this source lacks."""
        return [option for option, value in (("page_token_env", self._page_token),
                                              ("ig_user_id", self._options.ig_user_id))
                if value is None]

    def picture_limits(self, source: Source, to: Mention | None = None) -> PictureLimits | None:
        """Facebook comment replies take a photo (uploaded to the Page unpublished, then
        attached by id), which needs the page token and `page_id`; Instagram comment
        replies and mentions are text only (`/replies` and `/mentions` take a message).
        Without the customer's mention it says what Facebook takes."""
        if self._page_token is None or self._options.page_id is None:
            return None
        if to is not None and (to.platform == "instagram"
                               or to.external_id.startswith("mention:")):
            return None
        return FACEBOOK_PHOTOS

    async def publish_picture(self, source: Source, to: Mention, text: str,
                              picture: Picture) -> Published:
        """Reply under a Facebook comment or post with the picture attached: the photo
        goes up to the Page unpublished (`POST /{page-id}/photos`, `published=false`), then
        the reply names it (`POST /{comment-id}/comments` with `attachment_id`)."""
        if self.picture_limits(source, to) is None or self._options.page_id is None:
            raise PublishFailed("this Meta source cannot publish pictures here")
        assert self._page_token is not None
        form = aiohttp.FormData()
        form.add_field("published", "false")
        form.add_field("access_token", self._page_token)
        form.add_field("source", picture.content, filename=picture.filename,
                       content_type=picture.content_type or "application/octet-stream")
        try:
            uploaded = await request_json(
                self._session, "POST", f"{self._graph}/{self._options.page_id}/photos",
                data=form, what="Graph API photo upload")
        except SourceUnavailable as failure:
            raise PublishFailed(str(failure)) from None
        photo_id = uploaded.get("id") if isinstance(uploaded, dict) else None
        if not photo_id:
            raise PublishFailed("Graph API photo upload: no id in the answer")
        return await self._reply(to, f"{to.external_id}/comments",
                                 {"message": text, "attachment_id": str(photo_id)})

    async def publish(self, source: Source, to: Mention, text: str) -> Published:
        """Reply where the customer wrote: under the comment, post or mention."""
        if self._page_token is None:
            raise PublishFailed("no page_token_env is set for this Meta source")
        if to.external_id.startswith("mention:"):
            if self._options.ig_user_id is None:
                raise PublishFailed("no ig_user_id is set for this Meta source")
            media, _, comment = to.external_id.removeprefix("mention:").partition(":")
            path = f"{self._options.ig_user_id}/mentions"
            form = {"media_id": media, "message": text} | (
                {"comment_id": comment} if comment else {})
        elif to.platform == "instagram":
            path, form = f"{to.external_id}/replies", {"message": text}
        else:
            path, form = f"{to.external_id}/comments", {"message": text}
        return await self._reply(to, path, form)

    async def _reply(self, to: Mention, path: str, form: dict[str, str]) -> Published:
        assert self._page_token is not None
        try:
            answer = await request_json(
                self._session, "POST", f"{self._graph}/{path}",
                data=form | {"access_token": self._page_token}, what="Graph API reply")
        except SourceUnavailable as failure:
            raise PublishFailed(str(failure)) from None
        reply_id = answer.get("id") if isinstance(answer, dict) else None
        if not reply_id:
            raise PublishFailed("Graph API reply: no id in the answer")
        return Published(external_id=str(reply_id), url=to.url)

    async def _ig_mention(self, source: Source, value: Mapping[str, Any], now: datetime, *,
                          where: str) -> RawMention | None:
        """Look up what an Instagram @mention says (the webhook brings only ids)."""
        fields = _Fields(value, where)
        media, comment = fields.id("media_id"), fields.id("comment_id")
        if not media or self._options.ig_user_id is None or self._page_token is None:
            return None
        external_id = f"mention:{media}:{comment}" if comment else f"mention:{media}"
        if comment:
            fields = (f"mentioned_comment.comment_id({comment})"
                      "{id,text,username,timestamp,media{id,permalink}}")
        else:
            fields = f"mentioned_media.media_id({media}){{id,caption,username,timestamp,permalink}}"
        try:
            answer = await request_json(
                self._session, "GET", f"{self._graph}/{self._options.ig_user_id}",
                params={"fields": fields, "access_token": self._page_token},
                what="Graph API mention lookup")
        except SourceUnavailable as failure:
            # Meta delivers again when we answer with an error.
            raise Refused(503, f"{failure}; deliver again later") from None
        found = (answer if isinstance(answer, dict) else {}).get(
            "mentioned_comment" if comment else "mentioned_media")
        if not isinstance(found, dict):
            return None
        text = found.get("text" if comment else "caption")
        if not isinstance(text, str) or not text.strip():
            log.info("Meta source %s: Instagram %s has no text; skipped", source.name,
                     external_id)
            return None
        username = found.get("username") if isinstance(found.get("username"), str) else None
        media_found = found.get("media") if isinstance(found.get("media"), dict) else {}
        link = (media_found or {}).get("permalink") if comment else found.get("permalink")
        link = link if isinstance(link, str) else None
        return RawMention(
            source=source.name, external_id=external_id, text=text,
            published_at=_looked_up_time(found.get("timestamp"), now), url=link,
            platform="instagram",
            author=Author(name=username, handle=f"@{username}" if username else None,
                          url=f"https://www.instagram.com/{username}/" if username else None),
        )

    async def _with_permalink(self, source: Source, mention: RawMention,
                              value: Mapping[str, Any]) -> RawMention:
        """Link a comment on our media to that post, if Graph tells its permalink.

        The `comments` webhook names the media by id only; without the page token, or
        when Graph does not answer, the link stays the commenter's profile."""
        media = str((value.get("media") or {}).get("id") or "")
        if self._page_token is None or not media.isdigit():
            return mention
        link = self._permalinks.get(media)
        if link is None:
            try:
                answer = await request_json(
                    self._session, "GET", f"{self._graph}/{media}",
                    params={"fields": "permalink", "access_token": self._page_token},
                    what="Graph API media lookup", client_timeout=PERMALINK_TIMEOUT)
            except SourceUnavailable as failure:
                log.info("Meta source %s: no permalink for Instagram media %s, linking the "
                         "commenter instead: %s", source.name, media, failure)
                return mention
            found = answer.get("permalink") if isinstance(answer, dict) else None
            if not isinstance(found, str) or not found.startswith("https://"):
                return mention
            if len(self._permalinks) >= PERMALINKS_KEPT:
                del self._permalinks[next(iter(self._permalinks))]
            link = self._permalinks[media] = found
        return replace(mention, url=link)


def _feed(source: Source, value: Mapping[str, Any], now: datetime, *,
          where: str) -> RawMention | None:
    """A page feed change: a new comment, or a visitor's post on the page."""
    fields = _Fields(value, where)
    if value.get("item") not in FEED_ITEMS or value.get("verb") != "add":
        return None
    sender = _Fields(fields.object("from"), f"{where}.from")
    sender_id = sender.id("id") or fields.id("sender_id")
    name = sender.text("name") or fields.text("sender_name")
    post = fields.id("post_id") or ""
    comment = fields.id("comment_id")
    parent = fields.id("parent_id") or ""
    text = fields.text("message") or ""
    if not text or not post:
        return None
    return RawMention(
        source=source.name, external_id=str(comment or post), text=text,
        published_at=fields.time("created_time", now), platform="facebook",
        url=f"https://www.facebook.com/{post}" + (f"?comment_id={comment}" if comment else ""),
        author=Author(id=sender_id, name=name,
                      url=f"https://www.facebook.com/{sender_id}" if sender_id else None),
        # One person's comments under one post are one conversation.
        thread_id=f"{post}:{sender_id}" if comment and sender_id else None,
        parent_id=parent if comment and parent and parent != post else None,
    )


def _ig_comment(source: Source, value: Mapping[str, Any], now: datetime, *,
                where: str) -> RawMention | None:
    """A comment on one of our Instagram media."""
    fields = _Fields(value, where)
    comment, text = fields.id("id"), fields.text("text")
    if not comment or not text or not text.strip():
        log.debug("Meta source %s: Instagram comment %s has no text; skipped", source.name,
                  comment)
        return None
    sender = _Fields(fields.object("from"), f"{where}.from")
    username = sender.text("username")
    media = _Fields(fields.object("media"), f"{where}.media").id("id")
    sender_id = sender.id("id")
    return RawMention(
        source=source.name, external_id=comment, text=text,
        published_at=fields.time("timestamp", now), platform="instagram",
        url=f"https://www.instagram.com/{username}/" if username else None,
        author=Author(id=sender_id, name=username,
                      handle=f"@{username}" if username else None,
                      url=f"https://www.instagram.com/{username}/" if username else None),
        thread_id=f"{media}:{sender_id}" if media and sender_id else None,
        parent_id=fields.id("parent_id"),
    )


class _Fields:
    """The fields of one object of a delivery, each of the type Meta documents, or the
    delivery is refused naming the field: Meta would send it again, for ever, if a
    malformed one failed with a 5xx."""

    def __init__(self, value: Mapping[str, Any], where: str) -> None:
        self._value = value
        self._where = where

    def text(self, key: str) -> str | None:
        found = self._value.get(key)
        if found is None or isinstance(found, str):
            return found
        raise self._refused(key, "text", found)

    def id(self, key: str) -> str | None:
        found = self._value.get(key)
        if found is None or isinstance(found, str) \
                or (isinstance(found, int) and not isinstance(found, bool)):
            return _id(found)
        raise self._refused(key, "an id", found)

    def object(self, key: str) -> Mapping[str, Any]:
        found = self._value.get(key)
        if found is None or isinstance(found, dict):
            return found or {}
        raise self._refused(key, "an object", found)

    def time(self, key: str, now: datetime) -> datetime:
        """A time in Unix seconds (webhooks) or ISO 8601; none given: now."""
        found = self._value.get(key)
        try:
            at = _time(found, now)
        except (ValueError, OverflowError, OSError):
            raise Refused(400, f"{self._where}.{key}: {found!r} is not a time") from None
        problem = implausible_time(at, now)
        if problem is not None:
            raise Refused(400, f"{self._where}.{key}: {problem}")
        return at

    def _refused(self, key: str, expected: str, found: Any) -> Refused:
        return Refused(400, f"{self._where}.{key}: expected {expected}, "
                            f"got {type(found).__name__}")


def _list(value: Mapping[str, Any], key: str, where: str) -> list[Any]:
    found = value.get(key)
    if found is None or isinstance(found, list):
        return found or []
    raise Refused(400, f"{where}{key}: expected a list, got {type(found).__name__}")


def _id(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _looked_up_time(value: Any, now: datetime) -> datetime:
    """The time Graph gave in a lookup; now if it gave none that can be true."""
    try:
        at = _time(value, now)
    except (ValueError, OverflowError, OSError):
        return now
    return now if implausible_time(at, now) else at


def _time(value: Any, now: datetime) -> datetime:
    """Graph times are Unix seconds in webhooks and ISO 8601 in lookups; raise ValueError
    (or OverflowError) for a number that is no time."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str) and value:
        try:
            at = datetime.fromisoformat(value.replace("+0000", "+00:00").replace("Z", "+00:00"))
        except ValueError:
            return now
        return at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    return now
