"""A fake Meta: the Graph API for Facebook Page comments and Instagram mentions, and webhooks.

Usage::

    async with FakeMeta() as meta:
        media = meta.add_ig_media("Look what @acme sent me", username="jane")   # a caption mention
        comment = meta.add_ig_comment("@acme where is my order?", media=media, username="jane")
        await meta.deliver(meta.ig_mention_comment_webhook(comment), app_url)  # signed POST
        # the app then asks the Graph API (at meta.graph_url) for the text, and replies.
        assert meta.replies[0].message == "Sorry! Could you DM us the order number?"

The Graph API side answers at ``{url}/{version}/...`` (`graph_url`):

* ``GET /{ig-user-id}?fields=mentioned_comment.comment_id(<id>){text,username,timestamp,...}``
  and ``fields=mentioned_media.media_id(<id>){caption,permalink,timestamp,username,...}``;
* ``GET /{fb-comment-id}?fields=id,message,from,created_time,parent,permalink_url``, and
  ``GET`` of the Page, the IG user, and the IG media and comments of the IG user's own posts;
* ``POST /{fb-comment-id}/comments`` (a Page reply), ``POST /{ig-comment-id}/replies`` (a reply
  on the IG user's own media) and ``POST /{ig-user-id}/mentions`` (a reply to a mention on
  someone else's media), each answering ``{"id": ...}``;
* a Facebook reply with a photo: ``POST /{page-id}/photos`` (multipart, the image as ``source``,
  ``published=false`` for a photo that is not posted to the Page's feed) answers ``{"id": ...}``,
  and ``POST /{fb-comment-id}/comments`` with ``attachment_id`` (that photo's id) attaches it —
  the comments edge's documented parameters: ``attachment_id`` ("an optional ID of an
  unpublished photo uploaded to Facebook to include as a photo comment"), ``attachment_url``,
  ``attachment_share_url``, ``message``, ``source``, one of which must be given
  (https://developers.facebook.com/docs/graph-api/reference/object/comments, "Creating";
  the upload: https://developers.facebook.com/docs/graph-api/reference/page/photos,
  "Creating", ``published``, ``source``, at most 4 MB). Instagram's ``/replies`` and
  ``/mentions`` take a ``message`` only
  (https://developers.facebook.com/docs/instagram-platform/instagram-graph-api/reference/ig-comment/replies):
  an attachment there is refused like an unknown parameter.

Field selection follows Graph's syntax (``a,b{c,d},e.modifier(x){f}``), ``id`` is always
returned, unknown fields answer ``(#100) Tried accessing nonexisting field``, and a field
without a value is left out of the answer, as Graph leaves it out (`withhold` makes an
object's field answer so). Tokens come as
``access_token`` (query or body) or ``Authorization: Bearer``/``OAuth``. Errors use Graph's
envelope ``{"error": {"message", "type", "code", "error_subcode"?, "fbtrace_id"}}``.

The webhook side builds deliveries shaped like the captures in ``shared/samples`` (page
``feed`` comments, Instagram ``mentions`` of comments and captions, Instagram ``comments``),
serialises them as Meta does (compact JSON, non-ASCII as lowercase ``\\uXXXX`` escapes, ``/``
as ``\\/``: an app must verify the raw bytes, not re-serialised JSON), signs them
(``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body with the app secret>``, plus the
legacy ``X-Hub-Signature: sha1=...``) and POSTs them; `verify` plays the subscription
handshake (``GET ?hub.mode=subscribe&hub.verify_token=...&hub.challenge=...``).

Knowingly different from Meta: no built-in rate limits (inject them with `fail_next_graph`);
no ``X-App-Usage`` unless `app_usage` is set; HTTP status 400 for every error envelope unless a
test asks for another (Meta's status for throttling codes is not documented); only the edges
above (other paths answer ``Unknown path components``, code 2500); a Graph version other than
`version` answers the deprecated-version error (code 2635); webhook deliveries are not retried.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import re
import time
from collections.abc import Callable
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
    Reply,
    UploadedFile,
    read_fields,
    to_response,
)

DEFAULT_VERSION = "v21.0"
GRAPH_DOCS = "https://developers.facebook.com/docs/graph-api"
RATE_LIMIT_DOCS = "https://developers.facebook.com/docs/graph-api/overview/rate-limiting"
# A Page photo upload takes at most 4 MB (the page/photos reference, "Creating").
PHOTO_MAX_BYTES = 4 * 1024 * 1024

# Graph's throttling errors by code: (message, is_transient or None when Meta leaves it out).
GRAPH_ERRORS: dict[int, tuple[str, bool | None]] = {
    1: ("An unknown error has occurred.", None),
    2: ("An unexpected error has occurred. Please retry your request later.", True),
    4: ("(#4) Application request limit reached", True),
    17: ("(#17) User request limit reached", True),
    32: ("(#32) Page request limit reached", None),
    613: ("(#613) Calls to this api have exceeded the rate limit.", None),
    80001: (
        "(#80001) There have been too many calls to this Page account. Wait a bit and try"
        f" again. For more info, please refer to {RATE_LIMIT_DOCS}.",
        True,
    ),
    80002: (
        "(#80002) There have been too many calls to this Instagram account. Wait a bit and try"
        f" again. For more info, please refer to {RATE_LIMIT_DOCS}.",
        True,
    ),
}
RATE_LIMIT_CODES = (4, 17, 32, 613, 80001, 80002)

FB_COMMENT_FIELDS = frozenset(
    {
        "admin_creator",
        "application",
        "attachment",
        "can_comment",
        "can_hide",
        "can_like",
        "can_remove",
        "can_reply_privately",
        "comment_count",
        "comments",
        "created_time",
        "from",
        "id",
        "is_hidden",
        "is_private",
        "like_count",
        "live_broadcast_timestamp",
        "message",
        "message_tags",
        "object",
        "parent",
        "permalink_url",
        "private_reply_conversation",
        "reactions",
        "user_likes",
    }
)
IG_COMMENT_FIELDS = frozenset(
    {
        "from",
        "hidden",
        "id",
        "legacy_instagram_comment_id",
        "like_count",
        "media",
        "parent_id",
        "replies",
        "text",
        "timestamp",
        "user",
        "username",
    }
)
IG_MEDIA_FIELDS = frozenset(
    {
        "alt_text",
        "boost_ads_list",
        "boost_eligibility_info",
        "caption",
        "children",
        "collaborators",
        "comments",
        "comments_count",
        "copyright_check_information",
        "id",
        "insights",
        "is_comment_enabled",
        "is_shared_to_feed",
        "legacy_instagram_media_id",
        "like_count",
        "media_product_type",
        "media_type",
        "media_url",
        "owner",
        "permalink",
        "shortcode",
        "thumbnail_url",
        "timestamp",
        "username",
    }
)
IG_USER_FIELDS = frozenset(
    {
        "biography",
        "business_discovery",
        "followers_count",
        "follows_count",
        "id",
        "ig_id",
        "media",
        "media_count",
        "mentioned_comment",
        "mentioned_media",
        "name",
        "profile_picture_url",
        "stories",
        "tags",
        "username",
        "website",
    }
)
PAGE_FIELDS = frozenset({"id", "name", "category", "link", "fan_count", "about"})


class GraphError(Exception):
    """An error the Graph API answers in its ``{"error": {...}}`` envelope."""

    def __init__(
        self,
        message: str,
        *,
        code: int,
        kind: str = "OAuthException",
        status: int = 400,
        subcode: int | None = None,
        is_transient: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.kind = kind
        self.status = status
        self.subcode = subcode
        self.is_transient = is_transient


def unsupported(verb: str, object_id: str) -> GraphError:
    """Build Graph's answer about an id it cannot find (or may not touch)."""
    return GraphError(
        f"Unsupported {verb.lower()} request. Object with ID '{object_id}' does not exist, cannot"
        " be loaded due to missing permissions, or does not support this operation. Please read"
        f" the Graph API documentation at {GRAPH_DOCS}",
        code=100,
        kind="GraphMethodException",
        subcode=33,
    )


def missing_parameter(name: str) -> GraphError:
    """Build Graph's answer to a request without a required parameter."""
    return GraphError(f"(#100) The parameter {name} is required", code=100)


def graph_time(moment: datetime) -> str:
    """Format a time as Graph does: ``2017-05-03T16:09:08+0000``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


def meta_json(body: Any) -> bytes:
    """Serialise a webhook body as Meta does: compact, ASCII-only (lowercase hex), ``\\/``."""
    text = json.dumps(body, ensure_ascii=True, separators=(",", ":"))
    return text.replace("/", "\\/").encode()


def sign(raw: bytes, app_secret: str) -> str:
    """Return the ``X-Hub-Signature-256`` value of `raw`: ``sha256=<hex HMAC-SHA256>``."""
    return "sha256=" + hmac.new(app_secret.encode(), raw, hashlib.sha256).hexdigest()


def sign_sha1(raw: bytes, app_secret: str) -> str:
    """Return the legacy ``X-Hub-Signature`` value of `raw`: ``sha1=<hex HMAC-SHA1>``."""
    return "sha1=" + hmac.new(app_secret.encode(), raw, hashlib.sha1).hexdigest()


# ---------------------------------------------------------------------------- field syntax


@dataclass
class FieldSpec:
    """One requested field: ``name.modifier(value){subfields}``."""

    name: str
    modifiers: dict[str, str] = field(default_factory=dict)
    subfields: list[FieldSpec] | None = None


def parse_fields(text: str) -> list[FieldSpec]:
    """Parse a Graph ``fields`` parameter; raise GraphError (#100) on a syntax error."""

    def fail(position: int, expected: str) -> GraphError:
        found = text[position] if position < len(text) else "end of string"
        return GraphError(
            f'Syntax error "Expected {expected} instead of "{found}"." at character {position}:'
            f" {text}",
            code=100,
        )

    def parse_list(position: int, closing: str | None) -> tuple[list[FieldSpec], int]:
        specs: list[FieldSpec] = []
        while True:
            match = re.compile(r"\s*([A-Za-z0-9_]+)").match(text, position)
            if match is None:
                raise fail(position, "field name")
            spec = FieldSpec(match.group(1))
            position = match.end()
            while position < len(text) and text[position] == ".":
                modifier = re.compile(r"\.([A-Za-z_]+)\(([^()]*)\)").match(text, position)
                if modifier is None:
                    raise fail(position + 1, "modifier")
                spec.modifiers[modifier.group(1)] = modifier.group(2).strip()
                position = modifier.end()
            if position < len(text) and text[position] == "{":
                spec.subfields, position = parse_list(position + 1, "}")
            specs.append(spec)
            position += len(text[position:]) - len(text[position:].lstrip())
            if position < len(text) and text[position] == ",":
                position += 1
                continue
            if closing is None:
                if position < len(text):
                    raise fail(position, "end of string")
                return specs, position
            if position < len(text) and text[position] == closing:
                return specs, position + 1
            raise fail(position, f'"{closing}"')

    if not text.strip():
        return []
    return parse_list(0, None)[0]


# ---------------------------------------------------------------------------- stored objects


@dataclass
class FbComment:
    """A comment (or a reply to one) under a Page post."""

    id: str
    post_id: str
    message: str
    from_id: str
    from_name: str
    created_time: datetime
    parent_id: str | None = None  # the comment this one answers (None: a top-level comment)
    like_count: int = 0
    is_hidden: bool = False

    @property
    def webhook_parent_id(self) -> str:
        """Return the parent_id a feed webhook carries (the post for a top-level comment)."""
        return self.parent_id or self.post_id


@dataclass
class IgMedia:
    """An Instagram post; the IG user's own, or someone else's that may mention it."""

    id: str
    caption: str
    username: str
    owner_id: str
    timestamp: datetime
    shortcode: str
    media_type: str = "IMAGE"
    media_product_type: str = "FEED"
    like_count: int = 0

    @property
    def permalink(self) -> str:
        """Return the post's public URL."""
        return f"https://www.instagram.com/p/{self.shortcode}/"


@dataclass
class IgComment:
    """An Instagram comment (``parent_id`` set: a reply to one)."""

    id: str
    text: str
    username: str
    from_id: str  # the commenter's Instagram-scoped id
    media_id: str
    timestamp: datetime
    parent_id: str | None = None
    like_count: int = 0
    hidden: bool = False


@dataclass(frozen=True)
class GraphReply:
    """A reply the app posted through the Graph API."""

    kind: str  # "facebook_comment" | "instagram_reply" | "instagram_mention"
    target_id: str  # the comment replied to (the media for a caption mention)
    message: str
    id: str  # the id Graph answered
    at: datetime
    photo: UploadedPhoto | None = None  # the photo attached (`attachment_id`), Facebook only


@dataclass(frozen=True)
class UploadedPhoto:
    """A photo uploaded to the Page (``POST /{page-id}/photos``)."""

    id: str
    data: bytes
    content_type: str | None
    published: bool


@dataclass(frozen=True)
class WebhookDelivery:
    """A webhook POSTed to the app and the app's answer."""

    body: Any
    raw: bytes
    headers: dict[str, str]
    status: int
    text: str


@dataclass(frozen=True)
class Handshake:
    """A subscription verification GET and the app's answer."""

    params: dict[str, str]
    status: int
    text: str


# ---------------------------------------------------------------------------- the fake


class FakeMeta(FakeServer):
    """Meta's Graph API for one Page and its Instagram account, and Meta's webhooks."""

    def __init__(
        self,
        *,
        access_token: str = "EAAFakePageAccessTokenForSocialCareTestsZDZD",
        app_secret: str = "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
        version: str = DEFAULT_VERSION,
        page_id: str = "1142469655832956",
        page_name: str = "Acme",
        ig_user_id: str = "17841405726653026",
        ig_username: str = "acme",
        clock: Clock | None = None,
        rate_limits: bool = True,
    ) -> None:
        super().__init__(clock=clock, rate_limits=rate_limits)
        self.access_tokens = {access_token}  # add more to accept them too
        self.access_token = access_token
        self.app_secret = app_secret
        self.version = version
        self.page_id = page_id
        self.page_name = page_name
        self.ig_user_id = ig_user_id
        self.ig_username = ig_username
        self.app_usage: dict[str, int] | None = None  # sent as X-App-Usage when set
        self.fb_comments: dict[str, FbComment] = {}
        self.ig_media: dict[str, IgMedia] = {}
        self.ig_comments: dict[str, IgComment] = {}
        self.replies: list[GraphReply] = []
        self.photos: dict[str, UploadedPhoto] = {}
        self.deliveries: list[WebhookDelivery] = []
        self.handshakes: list[Handshake] = []
        self.withheld: dict[str, set[str]] = {}  # object id → fields answered as valueless
        self.default_post_id = f"{page_id}_1163393020407286"
        self._wall_start = time.time()
        self._clock_start = self.clock()
        self._fb_ids = itertools.count(1164864096926845, 7919)
        self._fb_people: dict[str, str] = {}
        self._fb_person_ids = itertools.count(5_862_138_427_163_913, 104_729)
        self._ig_ids = itertools.count(17_894_227_972_186_120, 7_919)
        self._igsids = itertools.count(6_412_345_678_901_234, 104_729)
        self._trace_ids = itertools.count(1)
        self._own_media: IgMedia | None = None

    # ------------------------------------------------------------------ time and urls

    def now(self) -> datetime:
        """Return the fake's wall-clock time (aware, UTC), moved along with `clock`."""
        return datetime.fromtimestamp(self._wall_start + self.clock() - self._clock_start, UTC)

    @property
    def url(self) -> str:
        """Return the server's origin (Graph's ``https://graph.facebook.com``)."""
        return self.root_url

    @property
    def graph_url(self) -> str:
        """Return the versioned Graph API base, e.g. ``http://127.0.0.1:5000/v21.0``."""
        return f"{self.root_url}/{self.version}"

    # ------------------------------------------------------------------ seeding

    def add_fb_comment(
        self,
        message: str,
        *,
        from_name: str = "Jane Doe",
        from_id: str | None = None,
        post_id: str | None = None,
        parent: FbComment | str | None = None,
        created_time: datetime | None = None,
    ) -> FbComment:
        """Add a comment under a Page post (a reply to `parent` when given); return it.

        A reply lives under its parent's post. The commenter gets a stable Page-scoped id per
        name unless `from_id` is given.
        """
        parent_comment = None
        if parent is not None:
            parent_comment = self.fb_comments[
                parent.id if isinstance(parent, FbComment) else parent
            ]
        post = parent_comment.post_id if parent_comment else (post_id or self.default_post_id)
        if from_id is None:
            from_id = self._fb_people.setdefault(from_name, str(next(self._fb_person_ids)))
        story = post.split("_", 1)[-1]
        comment = FbComment(
            id=f"{story}_{next(self._fb_ids)}",
            post_id=post,
            message=message,
            from_id=from_id,
            from_name=from_name,
            created_time=(created_time or self.now()).astimezone(UTC).replace(microsecond=0),
            parent_id=parent_comment.id if parent_comment else None,
        )
        self.fb_comments[comment.id] = comment
        return comment

    def add_ig_media(
        self,
        caption: str = "",
        *,
        username: str | None = None,
        owner_id: str | None = None,
        timestamp: datetime | None = None,
        media_type: str = "IMAGE",
        media_product_type: str = "FEED",
    ) -> IgMedia:
        """Add an Instagram post by `username` (default: the IG user itself); return it.

        A caption that says ``@<ig_username>`` is a caption mention when someone else posts it.
        """
        username = username or self.ig_username
        if owner_id is None:
            owner_id = self.ig_user_id if username == self.ig_username else str(next(self._igsids))
        media_id = str(next(self._ig_ids))
        media = IgMedia(
            id=media_id,
            caption=caption,
            username=username,
            owner_id=owner_id,
            timestamp=(timestamp or self.now()).astimezone(UTC).replace(microsecond=0),
            shortcode=_shortcode(int(media_id)),
            media_type=media_type,
            media_product_type=media_product_type,
        )
        self.ig_media[media.id] = media
        return media

    def own_media(self) -> IgMedia:
        """Return the IG user's default post (created on first use)."""
        if self._own_media is None:
            self._own_media = self.add_ig_media("New arrivals are in!")
        return self._own_media

    def add_ig_comment(
        self,
        text: str,
        *,
        media: IgMedia | str | None = None,
        username: str = "jane_doe",
        from_id: str | None = None,
        parent: IgComment | str | None = None,
        timestamp: datetime | None = None,
        like_count: int = 0,
    ) -> IgComment:
        """Add an Instagram comment on `media` (default: the IG user's own post); return it.

        With `parent` it is a reply and lives on the parent's media. A comment that says
        ``@<ig_username>`` on someone else's media is a comment mention.
        """
        parent_comment = None
        if parent is not None:
            parent_comment = self.ig_comments[
                parent.id if isinstance(parent, IgComment) else parent
            ]
            media_id = parent_comment.media_id
        elif media is None:
            media_id = self.own_media().id
        else:
            media_id = media.id if isinstance(media, IgMedia) else media
        if media_id not in self.ig_media:
            raise KeyError(f"no IG media {media_id}")
        if from_id is None:
            from_id = self.ig_user_id if username == self.ig_username else str(next(self._igsids))
        comment = IgComment(
            id=str(next(self._ig_ids)),
            text=text,
            username=username,
            from_id=from_id,
            media_id=media_id,
            timestamp=(timestamp or self.now()).astimezone(UTC).replace(microsecond=0),
            parent_id=parent_comment.id if parent_comment else None,
            like_count=like_count,
        )
        self.ig_comments[comment.id] = comment
        return comment

    def withhold(self, object_id: str, *fields: str) -> None:
        """Answer lookups of `object_id` without `fields`, as Graph does for a field it has
        no value for (the object itself is unchanged: a comment still mentions the IG user)."""
        self.withheld.setdefault(object_id, set()).update(fields)

    def is_own(self, media: IgMedia) -> bool:
        """Tell whether `media` belongs to the IG user."""
        return media.owner_id == self.ig_user_id

    def _mentions_us(self, text: str) -> bool:
        pattern = r"(?<![\w@])@" + re.escape(self.ig_username) + r"(?![\w])"
        return re.search(pattern, text, re.IGNORECASE) is not None

    # ------------------------------------------------------------------ faults

    def fail_next_graph(
        self,
        path: str = "*",
        code: int = 4,
        *,
        method: str | None = None,
        status: int = 400,
        times: int = 1,
    ) -> None:
        """Answer the next `times` calls of `path` with Graph error `code` (not applied).

        `path` is the Graph path without the version (``"/17841405726653026"``,
        ``"/<comment-id>/comments"``) or ``"*"`` for any call; `method` defaults to POST for
        the ``/comments``, ``/replies`` and ``/mentions`` edges, GET otherwise. Codes:
        4 (app), 17 (user), 32 (Page), 613, 80001 (Page BUC), 80002 (Instagram BUC) throttling;
        1 and 2 (unknown / temporary errors).
        """
        if code not in GRAPH_ERRORS:
            raise ValueError(f"unknown Graph error code {code}; known: {sorted(GRAPH_ERRORS)}")
        key = "*"
        if path != "*":
            path = "/" + path.strip("/").removeprefix(f"{self.version}/")
            if method is None:
                method = "POST" if path.endswith(("/comments", "/replies", "/mentions")) else "GET"
            key = f"{method.upper()} {path}"
        self._faults.queue(key, Fault("error", status=status, error=f"graph:{code}"), times)

    def fault_reply(self, method: str, fault: Fault) -> Reply:
        """Answer an injected fault in Graph's envelope.

        Graph has no HTTP 429: a 429 (``fail_next`` or chaos "ratelimited") plays code 4;
        500 plays code 1, other 5xx code 2 (transient).
        """
        if fault.error and fault.error.startswith("graph:"):
            code = int(fault.error.removeprefix("graph:"))
            message, transient = GRAPH_ERRORS[code]
            error = GraphError(message, code=code, status=fault.status, is_transient=transient)
        elif fault.status == 429:
            message, transient = GRAPH_ERRORS[4]
            error = GraphError(message, code=4, is_transient=transient)
        elif fault.status >= 500:
            code = 1 if fault.status == 500 else 2
            message, transient = GRAPH_ERRORS[code]
            error = GraphError(
                fault.error or message, code=code, status=fault.status, is_transient=transient
            )
        else:
            try:
                phrase = HTTPStatus(fault.status).phrase
            except ValueError:
                phrase = "Error"
            error = GraphError(fault.error or phrase, code=1, status=fault.status)
        return Reply(error.status, self._envelope(error))

    def _envelope(self, error: GraphError) -> dict[str, Any]:
        body: dict[str, Any] = {"message": error.message, "type": error.kind, "code": error.code}
        if error.subcode is not None:
            body["error_subcode"] = error.subcode
        if error.is_transient is not None:
            body["is_transient"] = error.is_transient
        digest = hashlib.sha256(f"trace-{next(self._trace_ids)}".encode()).digest()
        body["fbtrace_id"] = "A" + base64.urlsafe_b64encode(digest).decode()[:22]
        return {"error": body}

    # ------------------------------------------------------------------ server plumbing

    def add_routes(self, app: web.Application) -> None:
        """Register ``/{version}/{path}`` and log anything else as an unknown path."""
        app.router.add_route("*", r"/{version:v[0-9]+\.[0-9]+}/{path:.*}", self._handle_graph)
        app.router.add_route("*", "/{path:.*}", self._handle_unversioned)

    def _answer_now(self, method: str, logged: dict[str, Any], error: GraphError) -> web.Response:
        reply = Reply(error.status, self._envelope(error))
        self.log(method, logged, reply)
        return to_response(reply)

    async def _handle_unversioned(self, request: web.Request) -> web.Response:
        path = "/" + request.match_info["path"].strip("/")
        error = GraphError(f"Unknown path components: {path}", code=2500)
        return self._answer_now(f"{request.method} {path}", dict(request.query), error)

    async def _handle_graph(self, request: web.Request) -> web.StreamResponse:
        path = request.match_info["path"].strip("/")
        method = f"{request.method} /{path}"
        try:
            fields, files = await read_fields(request)
        except ValueError:
            fields, files = dict(request.query), {}
        token = fields.pop("access_token", None)
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        if token is None and scheme.lower() in {"bearer", "oauth"}:
            token = value.strip()
        logged = dict(fields)
        if request.match_info["version"] != self.version:
            error = GraphError(
                "(#2635) You are calling a deprecated version of the Graph API. Please update to"
                f" the latest version: {self.version}.",
                code=2635,
            )
            return self._answer_now(method, logged, error)
        if not token:
            error = GraphError("An access token is required to request this resource.", code=104)
            return self._answer_now(method, logged, error)
        if token not in self.access_tokens:
            error = GraphError("Invalid OAuth access token - Cannot parse access token", code=190)
            return self._answer_now(method, logged, error)

        async def apply() -> Reply:
            try:
                body = self._graph(request.method, path, fields, files)
            except GraphError as error:
                return Reply(error.status, self._envelope(error))
            headers = {"x-app-usage": json.dumps(self.app_usage)} if self.app_usage else {}
            return Reply(200, body, headers=headers, applied=request.method == "POST")

        return await self.run_call(request, method, logged, apply)

    # ------------------------------------------------------------------ the Graph API

    def _graph(self, verb: str, path: str, params: dict[str, Any],
               files: dict[str, UploadedFile] | None = None) -> dict[str, Any]:
        parts = path.split("/")
        node = parts[0]
        if not node:
            raise GraphError("Unknown path components: /", code=2500)
        if len(parts) == 1:
            if verb != "GET":
                raise unsupported(verb, node)
            return self._read(node, parse_fields(str(params.get("fields") or "")))
        if len(parts) > 2 or verb != "POST":
            if self._exists(node):
                raise GraphError(f"Unknown path components: /{'/'.join(parts[1:])}", code=2500)
            raise unsupported(verb, node)
        edge = parts[1]
        message = str(params.get("message") or "")
        if edge == "photos" and node == self.page_id:
            return {"id": self._upload_photo(params, files or {})}
        if edge == "comments" and node in self.fb_comments:
            photo = None
            if params.get("attachment_id"):
                photo = self.photos.get(str(params["attachment_id"]))
                if photo is None:
                    raise GraphError("(#100) Invalid attachment_id: no such photo", code=100)
            if not message.strip() and photo is None:
                raise missing_parameter("message")
            return {"id": self._reply_fb(self.fb_comments[node], message, photo)}
        if edge in ("replies", "mentions"):
            attached = sorted({"attachment_id", "attachment_url", "source"}
                              & (set(params) | set(files or {})))
            if attached:
                raise GraphError(f"(#100) Param {attached[0]} is not valid for this edge",
                                 code=100)
        if edge == "replies" and node in self.ig_comments:
            comment = self.ig_comments[node]
            if not self.is_own(self.ig_media[comment.media_id]):
                raise unsupported(verb, node)
            if not message.strip():
                raise missing_parameter("message")
            return {"id": self._reply_ig(comment, message, "instagram_reply")}
        if edge == "mentions" and node == self.ig_user_id:
            return {"id": self._reply_mention(params, message)}
        if self._exists(node):
            raise GraphError(f"Unknown path components: /{edge}", code=2500)
        raise unsupported(verb, node)

    def _exists(self, node: str) -> bool:
        return node in {self.page_id, self.ig_user_id} or any(
            node in store for store in (self.fb_comments, self.ig_media, self.ig_comments)
        )

    def _upload_photo(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> str:
        upload = files.get("source")
        if upload is None or not upload.data:
            raise GraphError("(#324) Requires upload file", code=324)
        if len(upload.data) > PHOTO_MAX_BYTES:
            raise GraphError("(#1) The photo is larger than 4 MB", code=1)
        photo_id = str(next(self._fb_ids))
        published = str(params.get("published", "true")).lower() not in ("false", "0")
        self.photos[photo_id] = UploadedPhoto(photo_id, upload.data, upload.content_type,
                                              published)
        return photo_id

    def _reply_fb(self, target: FbComment, message: str,
                  photo: UploadedPhoto | None = None) -> str:
        reply = self.add_fb_comment(
            message, from_name=self.page_name, from_id=self.page_id, parent=target
        )
        self.replies.append(
            GraphReply("facebook_comment", target.id, message, reply.id, self.now(), photo)
        )
        return reply.id

    def _reply_ig(self, target: IgComment, message: str, kind: str) -> str:
        # Instagram threads are one level deep: a reply to a reply joins the top comment.
        top = self.ig_comments[target.parent_id] if target.parent_id else target
        reply = self.add_ig_comment(message, username=self.ig_username, parent=top)
        self.replies.append(GraphReply(kind, target.id, message, reply.id, self.now()))
        return reply.id

    def _reply_mention(self, params: dict[str, Any], message: str) -> str:
        media_id = str(params.get("media_id") or "")
        if not media_id:
            raise missing_parameter("media_id")
        if not message.strip():
            raise missing_parameter("message")
        media = self.ig_media.get(media_id)
        if media is None:
            raise unsupported("post", media_id)
        comment_id = params.get("comment_id")
        if comment_id:
            comment = self.ig_comments.get(str(comment_id))
            if (
                comment is None
                or comment.media_id != media.id
                or not self._mentions_us(comment.text)
            ):
                raise unsupported("post", str(comment_id))
            return self._reply_ig(comment, message, "instagram_mention")
        if not self._mentions_us(media.caption):
            raise unsupported("post", media.id)
        reply = self.add_ig_comment(message, media=media, username=self.ig_username)
        self.replies.append(
            GraphReply("instagram_mention", media.id, message, reply.id, self.now())
        )
        return reply.id

    def _read(self, node: str, specs: list[FieldSpec]) -> dict[str, Any]:
        if node == self.ig_user_id:
            return self._render_ig_user(specs)
        if node == self.page_id:
            getters = {"id": lambda s: self.page_id, "name": lambda s: self.page_name}
            return self._render("Page", PAGE_FIELDS, getters, specs or _specs("name", "id"))
        if node in self.fb_comments:
            return self._render_fb_comment(self.fb_comments[node], specs)
        media = self.ig_media.get(node)
        if media is not None and self.is_own(media):
            return self._render_ig_media(media, specs)
        comment = self.ig_comments.get(node)
        if comment is not None and self.is_own(self.ig_media[comment.media_id]):
            return self._render_ig_comment(comment, specs)
        raise unsupported("get", node)

    def _render(
        self,
        node_type: str,
        known: frozenset[str],
        getters: dict[str, Callable[[FieldSpec], Any]],
        specs: list[FieldSpec],
    ) -> dict[str, Any]:
        """Render the requested fields of a node; `id` always comes back, last."""
        out: dict[str, Any] = {}
        withheld = self.withheld.get(getters["id"](FieldSpec("id")), set())
        for spec in specs:
            if spec.name not in known:
                raise GraphError(
                    f"(#100) Tried accessing nonexisting field ({spec.name}) on node type"
                    f" ({node_type})",
                    code=100,
                )
            getter = getters.get(spec.name)
            value = getter(spec) if getter is not None else None
            if value is not None and spec.name != "id" and spec.name not in withheld:
                out[spec.name] = value
        out["id"] = getters["id"](FieldSpec("id"))
        return out

    def _render_fb_comment(self, comment: FbComment, specs: list[FieldSpec]) -> dict[str, Any]:
        story, number = comment.id.split("_", 1)
        top = self.fb_comments.get(comment.parent_id or "")
        permalink = f"https://www.facebook.com/{self.page_id}/posts/{story}/?comment_id="
        permalink += f"{top.id.split('_', 1)[1]}&reply_comment_id={number}" if top else number
        replies = [c for c in self.fb_comments.values() if c.parent_id == comment.id]

        def parent(spec: FieldSpec) -> Any:
            if top is None:
                return None
            return self._render_fb_comment(top, spec.subfields or [])

        getters: dict[str, Callable[[FieldSpec], Any]] = {
            "id": lambda s: comment.id,
            "message": lambda s: comment.message,
            "from": lambda s: {"name": comment.from_name, "id": comment.from_id},
            "created_time": lambda s: graph_time(comment.created_time),
            "parent": parent,
            "permalink_url": lambda s: permalink,
            "like_count": lambda s: comment.like_count,
            "comment_count": lambda s: len(replies),
            "is_hidden": lambda s: comment.is_hidden,
            "is_private": lambda s: False,
            "can_comment": lambda s: comment.parent_id is None,
            "can_hide": lambda s: comment.from_id != self.page_id,
            "can_like": lambda s: True,
            "can_remove": lambda s: True,
            "can_reply_privately": lambda s: comment.from_id != self.page_id,
            "user_likes": lambda s: False,
        }
        chosen = specs or _specs("created_time", "from", "message", "id")
        return self._render("Comment", FB_COMMENT_FIELDS, getters, chosen)

    def _render_ig_media(self, media: IgMedia, specs: list[FieldSpec]) -> dict[str, Any]:
        comments = [c for c in self.ig_comments.values() if c.media_id == media.id]
        getters: dict[str, Callable[[FieldSpec], Any]] = {
            "id": lambda s: media.id,
            "caption": lambda s: media.caption or None,
            "permalink": lambda s: media.permalink,
            "timestamp": lambda s: graph_time(media.timestamp),
            "username": lambda s: media.username,
            "media_type": lambda s: media.media_type,
            "media_product_type": lambda s: media.media_product_type,
            "like_count": lambda s: media.like_count,
            "comments_count": lambda s: len(comments),
            "owner": lambda s: {"id": media.owner_id},
            "shortcode": lambda s: media.shortcode,
            "is_comment_enabled": lambda s: True,
            "media_url": lambda s: f"https://scontent.cdninstagram.com/v/{media.id}.jpg",
        }
        return self._render("ShadowIGMedia", IG_MEDIA_FIELDS, getters, specs or _specs("id"))

    def _render_ig_comment(self, comment: IgComment, specs: list[FieldSpec]) -> dict[str, Any]:
        media = self.ig_media[comment.media_id]
        getters: dict[str, Callable[[FieldSpec], Any]] = {
            "id": lambda s: comment.id,
            "text": lambda s: comment.text,
            "timestamp": lambda s: graph_time(comment.timestamp),
            "username": lambda s: comment.username,
            "like_count": lambda s: comment.like_count,
            "media": lambda s: self._render_ig_media(media, s.subfields or []),
            "from": lambda s: {"id": comment.from_id, "username": comment.username},
            "parent_id": lambda s: comment.parent_id,
            "hidden": lambda s: comment.hidden,
        }
        chosen = specs or _specs("timestamp", "text", "id")
        return self._render("IGComment", IG_COMMENT_FIELDS, getters, chosen)

    def _render_ig_user(self, specs: list[FieldSpec]) -> dict[str, Any]:
        def mentioned_comment(spec: FieldSpec) -> Any:
            comment_id = spec.modifiers.get("comment_id")
            if not comment_id:
                raise missing_parameter("comment_id")
            comment = self.ig_comments.get(comment_id)
            if comment is None or not self._mentions_us(comment.text):
                raise unsupported("get", comment_id)
            return self._render_ig_comment(comment, spec.subfields or [])

        def mentioned_media(spec: FieldSpec) -> Any:
            media_id = spec.modifiers.get("media_id")
            if not media_id:
                raise missing_parameter("media_id")
            media = self.ig_media.get(media_id)
            if media is None or not self._mentions_us(media.caption):
                raise unsupported("get", media_id)
            return self._render_ig_media(media, spec.subfields or [])

        getters: dict[str, Callable[[FieldSpec], Any]] = {
            "id": lambda s: self.ig_user_id,
            "username": lambda s: self.ig_username,
            "name": lambda s: self.page_name,
            "mentioned_comment": mentioned_comment,
            "mentioned_media": mentioned_media,
        }
        return self._render("ShadowIGUser", IG_USER_FIELDS, getters, specs or _specs("id"))

    # ------------------------------------------------------------------ playing Meta: webhooks

    def _epoch(self) -> int:
        return int(self.now().timestamp())

    def fb_comment_webhook(
        self,
        comment: FbComment,
        *,
        verb: str = "add",
        legacy_sender: bool = False,
    ) -> dict[str, Any]:
        """Build the Page ``feed`` delivery of a comment (``verb``: add, edited, remove).

        The commenter comes as ``value.from: {"id", "name"}``, as Meta sends it now. Deliveries
        of older API versions (the 2016 capture in shared/samples) carried
        ``sender_id`` (a number) and ``sender_name`` instead; ``legacy_sender=True`` builds
        that shape, so a parser can be tested on both. A ``remove`` carries no message.
        """
        value: dict[str, Any] = {}
        if legacy_sender:
            value["sender_id"] = int(comment.from_id)
            value["sender_name"] = comment.from_name
        else:
            value["from"] = {"id": comment.from_id, "name": comment.from_name}
        value.update(
            {
                "parent_id": comment.webhook_parent_id,
                "comment_id": comment.id,
                "item": "comment",
                "verb": verb,
                "created_time": int(comment.created_time.timestamp()),
                "post_id": comment.post_id,
            }
        )
        if verb != "remove":
            value["message"] = comment.message
        change = {"field": "feed", "value": value}
        entry = {"changes": [change], "id": self.page_id, "time": self._epoch()}
        return {"entry": [entry], "object": "page"}

    def _ig_entry(self, change: dict[str, Any]) -> dict[str, Any]:
        entry = {"changes": [change], "id": self.ig_user_id, "time": self._epoch()}
        return {"entry": [entry], "object": "instagram"}

    def ig_mention_comment_webhook(self, comment: IgComment) -> dict[str, Any]:
        """Build the ``mentions`` delivery of a comment that @mentions the IG user (ids only)."""
        value = {"comment_id": comment.id, "media_id": comment.media_id}
        return self._ig_entry({"field": "mentions", "value": value})

    def ig_mention_caption_webhook(self, media: IgMedia) -> dict[str, Any]:
        """Build the ``mentions`` delivery of a caption that @mentions the IG user (ids only)."""
        return self._ig_entry({"field": "mentions", "value": {"media_id": media.id}})

    def ig_comments_webhook(
        self, comment: IgComment, *, field_name: str = "comments"
    ) -> dict[str, Any]:
        """Build the ``comments`` (or ``live_comments``) delivery of a comment on own media."""
        media = self.ig_media[comment.media_id]
        value: dict[str, Any] = {
            "from": {"id": comment.from_id, "username": comment.username},
            "media": {"id": media.id, "media_product_type": media.media_product_type},
            "id": comment.id,
        }
        if comment.parent_id is not None:
            value["parent_id"] = comment.parent_id
        value["text"] = comment.text
        return self._ig_entry({"field": field_name, "value": value})

    @staticmethod
    def batch(*bodies: dict[str, Any]) -> dict[str, Any]:
        """Merge deliveries of one object type into one, as Meta batches entries."""
        kinds = {body["object"] for body in bodies}
        if len(kinds) != 1:
            raise ValueError(f"cannot batch deliveries of {sorted(kinds)}")
        return {"entry": [e for body in bodies for e in body["entry"]], "object": kinds.pop()}

    async def deliver(
        self,
        body: dict[str, Any] | bytes,
        url: str,
        *,
        app_secret: str | None = None,
        signature: str | None = None,
        max_wait: float = 10.0,
    ) -> WebhookDelivery:
        """POST a webhook body to the app, signed with `app_secret` (default: the fake's).

        `signature`: None signs correctly; ``"bad"`` sends well-formed signatures made with a
        wrong secret; ``"missing"`` sends none; any other string is sent as
        ``X-Hub-Signature-256`` as is. A bytes `body` is sent verbatim.
        """
        raw = body if isinstance(body, bytes) else meta_json(body)
        secret = self.app_secret if app_secret is None else app_secret
        headers = {"Content-Type": "application/json", "User-Agent": "facebookexternalua"}
        if signature is None:
            headers["X-Hub-Signature"] = sign_sha1(raw, secret)
            headers["X-Hub-Signature-256"] = sign(raw, secret)
        elif signature == "bad":
            headers["X-Hub-Signature"] = sign_sha1(raw, secret + "-wrong")
            headers["X-Hub-Signature-256"] = sign(raw, secret + "-wrong")
        elif signature != "missing":
            headers["X-Hub-Signature-256"] = signature
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=max_wait)) as session,
            session.post(url, data=raw, headers=headers) as response,
        ):
            delivery = WebhookDelivery(body, raw, headers, response.status, await response.text())
        self.deliveries.append(delivery)
        return delivery

    async def verify(
        self,
        url: str,
        verify_token: str,
        challenge: str = "1158201444",
        *,
        mode: str = "subscribe",
        max_wait: float = 10.0,
    ) -> tuple[int, str]:
        """GET the app's webhook URL as Meta's subscription check does; return (status, body).

        The app must answer 200 with exactly `challenge` when `verify_token` is its own.
        """
        params = {"hub.mode": mode, "hub.verify_token": verify_token, "hub.challenge": challenge}
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=max_wait)) as session,
            session.get(url, params=params) as response,
        ):
            status, text = response.status, await response.text()
        self.handshakes.append(Handshake(params, status, text))
        return status, text


def _specs(*names: str) -> list[FieldSpec]:
    return [FieldSpec(name) for name in names]


def _shortcode(number: int) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    code = ""
    while number:
        number, digit = divmod(number, 64)
        code = alphabet[digit] + code
    return code[-11:].rjust(11, "A")
