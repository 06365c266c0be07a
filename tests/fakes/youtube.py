"""A fake YouTube Data API v3 (``https://www.googleapis.com/youtube/v3/...``).

Usage::

    async with FakeYouTube() as yt:
        video = yt.add_video(CHANNEL, "Kaspi & Halyk", "", datetime(2026, 11, 1, tzinfo=UTC))
        yt.add_comment(video.id, "Где мой заказ?", "Aida", datetime(2026, 11, 25, tzinfo=UTC))
        # GET {yt.url}/youtube/v3/commentThreads?part=snippet&videoId=...&key={yt.api_key}

Resources: ``commentThreads.list``, ``comments.list`` (a thread's replies by ``parentId``, or
comments by ``id``), ``search.list`` (videos only), ``comments.insert`` (a reply) and
``commentThreads.insert`` (a top-level comment on a video); inserts land in
`inserted_comments`. Shapes follow the samples ``youtube_commentThreads_list.json``,
``youtube_search_list.json`` and ``comments/comments_by_parent_paged_1.json``
(sns-sdks/python-youtube captures) and the v3 reference:
``textDisplay`` is HTML (escaped, ``<br />`` for newlines, http(s) links and #hashtags as
anchors) unless ``textFormat=plainText``; ``textOriginal`` is raw; search titles come
HTML-escaped (``&amp;``, ``&#39;``), channel titles and descriptions do not (as in the sample).

Credentials: reads take ``key=`` (missing: 403 ``forbidden``; wrong: 400 ``badRequest`` with
``API_KEY_INVALID`` details, or the older ``keyInvalid`` shape with ``legacy_key_errors``) or a
valid OAuth bearer; the inserts need ``Authorization: Bearer <oauth_token>`` (missing or
wrong: 401). Errors use Google's envelope ``{"error": {"code", "message", "errors": [{"message",
"domain", "reason", ...}], "status"}}``; YouTube's own errors (quota, videoNotFound ...) carry no
``status``, as in real answers.

Quota: a daily budget (`daily_quota`, default 10,000 units) that resets at midnight Pacific
time, charged before a method runs, also when the method then answers an error:
commentThreads.list and comments.list 1, comments.insert and commentThreads.insert 50,
search.list 100 units.
That is the classic cost table (search = 100 units); the current quota page instead gives
search.list its own bucket of 100 calls a day at 1 call each: pass ``search_quota="bucket"``
to play that (then search does not touch the unit budget). A call that would overspend
answers 403 ``quotaExceeded`` (domain ``youtube.quota``) and is not charged. `quota_used`
counts the units spent today, `quota_by_method` splits them, `search_calls_used` counts the
bucket.

Knowingly simplified: order=relevance sorts by likes then time; search matches every word of
``q`` (or ``|`` alternatives) in title or description, only videos, and orders relevance like
date; a thread's ``replies`` carries only its first 5 replies, oldest first (the rest, as
``totalReplyCount`` tells, only through comments.list); comments.list answers a thread's
replies newest first, as in the capture, its items without ``videoId`` or ``channelId``, and
at most `replies_page_size` of them a page when that is set (YouTube may answer fewer than
``maxResults``); no rate limits besides the quota.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
import json
import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from tests.fakes.server import Clock, FakeServer, Fault, Reply

DEFAULT_API_KEY = "AIzaSyFakeSocialCareKey_0123456789abcde"
DEFAULT_OAUTH_TOKEN = "ya29.a0FakeSocialCareOAuthToken_0123456789"
DEFAULT_DAILY_QUOTA = 10_000
QUOTA_COSTS = {
    "commentThreads.list": 1,
    "comments.list": 1,
    "comments.insert": 50,
    "commentThreads.insert": 50,
    "search.list": 100,
}
SEARCH_CALLS_PER_DAY = 100  # the "bucket" model: search.list's own daily call count
PACIFIC = ZoneInfo("America/Los_Angeles")  # the quota day ends at midnight Pacific time
ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
MAX_REPLIES_IN_THREAD = 5
MAX_COMMENT_LENGTH = 10_000
DESCRIPTION_PREVIEW = 160
RESOURCES = {
    ("GET", "commentThreads"): "commentThreads.list",
    ("GET", "comments"): "comments.list",
    ("GET", "search"): "search.list",
    ("POST", "comments"): "comments.insert",
    ("POST", "commentThreads"): "commentThreads.insert",
}
QUOTA_MESSAGE = (
    "The request cannot be completed because you have exceeded your "
    '<a href="/youtube/v3/getting-started#quota">quota</a>.'
)
LINK = re.compile(r"https?://[^\s<>\"']+|(?<![\w&])#\w+")


class YouTubeApiFailure(Exception):
    """An error answered in Google's envelope."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        *,
        domain: str = "global",
        status: str | None = None,
        location: str | None = None,
        location_type: str = "parameter",
        details: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.domain = domain
        self.status = status
        self.location = location
        self.location_type = location_type
        self.details = details
        self.item_message = message

    def with_item_message(self, message: str) -> YouTubeApiFailure:
        """Use a shorter text in ``errors[0].message`` than the top-level one, as Google does."""
        self.item_message = message
        return self

    def body(self) -> dict[str, Any]:
        """Render ``{"error": {...}}``."""
        item: dict[str, Any] = {"message": self.item_message, "domain": self.domain}
        item["reason"] = self.reason
        if self.location:
            item["location"] = self.location
            item["locationType"] = self.location_type
        error: dict[str, Any] = {"code": self.code, "message": self.message, "errors": [item]}
        if self.status:
            error["status"] = self.status
        if self.details:
            error["details"] = self.details
        return {"error": error}


def quota_exceeded() -> YouTubeApiFailure:
    """Build the 403 quotaExceeded error (no ``status``, as YouTube answers it)."""
    return YouTubeApiFailure(403, "quotaExceeded", QUOTA_MESSAGE, domain="youtube.quota")


def invalid_parameter(
    name: str, message: str, reason: str = "invalidParameter"
) -> YouTubeApiFailure:
    """Build a 400 about query parameter `name`."""
    return YouTubeApiFailure(
        400, reason, message, status="INVALID_ARGUMENT", location=name, location_type="parameter"
    )


def required(name: str) -> YouTubeApiFailure:
    """Build Google's 400 for a missing required parameter."""
    return YouTubeApiFailure(
        400,
        "required",
        f"Required parameter: {name}",
        status="INVALID_ARGUMENT",
        location=name,
    )


def escape_html(text: str) -> str:
    """Escape like YouTube: ``&amp; &lt; &gt; &quot; &#39;``."""
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&#39;")
    )


def render_text_display(text: str) -> str:
    """Render a comment's ``textDisplay`` HTML: escaped, links and hashtags as anchors."""
    out: list[str] = []
    last = 0
    for match in LINK.finditer(text):
        out.append(escape_html(text[last : match.start()]))
        token = match.group()
        if token.startswith("#"):
            href = f"http://www.youtube.com/results?search_query=%23{token[1:]}"
        else:
            href = token
        out.append(f'<a href="{escape_html(href)}">{escape_html(token)}</a>')
        last = match.end()
    out.append(escape_html(text[last:]))
    return "".join(out).replace("\r\n", "\n").replace("\n", "<br />")


def rfc3339(moment: datetime) -> str:
    """Format like the samples: ``2019-11-26T15:51:44.000Z``."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_rfc3339(value: str, name: str) -> datetime:
    """Parse a ``publishedAfter``-style timestamp (must carry a zone)."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise invalid_parameter(name, f"Invalid value '{value}'. Expected an RFC 3339 date-time.")
    return parsed


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("naive datetime: pass an aware one (e.g. tzinfo=UTC)")
    return moment


def fake_id(seed: str, length: int) -> str:
    """Derive a stable YouTube-looking id of `length` characters from `seed`."""
    digest = hashlib.sha256(seed.encode()).digest()
    return "".join(ID_ALPHABET[byte % 64] for byte in digest)[:length]


def channel_id_for(name: str) -> str:
    """Derive a stable ``UC…`` channel id for an author or channel name."""
    return "UC" + fake_id(f"channel:{name}", 22)


def _etag(seed: str) -> str:
    return f'"{fake_id("etag-a:" + seed, 27)}/{fake_id("etag-b:" + seed, 27)}"'


@dataclass
class YouTubeVideo:
    """A video as the fake stores it."""

    id: str
    channel_id: str
    channel_title: str
    title: str  # raw; search answers it HTML-escaped
    description: str
    published_at: datetime
    comments_disabled: bool = False


@dataclass
class YouTubeComment:
    """A top-level comment (a thread) or a reply (with `parent_id`)."""

    id: str
    video_id: str
    channel_id: str  # the video's channel
    text: str
    author: str
    author_channel_id: str
    published_at: datetime
    updated_at: datetime
    like_count: int = 0
    parent_id: str | None = None
    seq: int = 0


class FakeYouTube(FakeServer):
    """A YouTube Data API v3 with seeded videos and comments and a daily quota."""

    def __init__(
        self,
        *,
        api_key: str = DEFAULT_API_KEY,
        oauth_token: str = DEFAULT_OAUTH_TOKEN,
        oauth_channel_id: str | None = None,
        oauth_channel_title: str = "SocialCare Support",
        daily_quota: int = DEFAULT_DAILY_QUOTA,
        quota_costs: Mapping[str, int] | None = None,
        search_quota: str = "units",
        search_calls_per_day: int = SEARCH_CALLS_PER_DAY,
        region_code: str = "KZ",
        legacy_key_errors: bool = False,
        now: Callable[[], datetime] | None = None,
        clock: Clock | None = None,
        rate_limits: bool = True,
        replies_page_size: int | None = None,
    ) -> None:
        super().__init__(clock=clock, rate_limits=rate_limits)
        if search_quota not in {"units", "bucket"}:
            raise ValueError('search_quota is "units" (100 units a call) or "bucket"')
        self.api_key = api_key
        self.oauth_token = oauth_token
        self.oauth_channel_title = oauth_channel_title
        self.oauth_channel_id = oauth_channel_id or channel_id_for(oauth_channel_title)
        self.daily_quota = daily_quota
        self.quota_costs = {**QUOTA_COSTS, **(quota_costs or {})}
        self.search_quota = search_quota
        self.search_calls_per_day = search_calls_per_day
        self.region_code = region_code
        self.legacy_key_errors = legacy_key_errors
        self.replies_page_size = replies_page_size
        self.now: Callable[[], datetime] = now or (lambda: datetime.now(UTC))
        self.quota_used = 0
        self.search_calls_used = 0  # only counted with search_quota="bucket"
        self.quota_by_method: Counter[str] = Counter()
        self.videos: dict[str, YouTubeVideo] = {}
        self.inserted_comments: list[YouTubeComment] = []
        self._comments: dict[str, YouTubeComment] = {}
        self._quota_day: date = self._pacific_day()
        self._seq = itertools.count(1)

    # ------------------------------------------------------------------ server plumbing

    @property
    def url(self) -> str:
        """Return the API origin; resources are at ``{url}/youtube/v3/<resource>``."""
        return self.root_url

    def add_routes(self, app: web.Application) -> None:
        """Register ``/youtube/v3/<resource>``."""
        app.router.add_route("*", "/youtube/v3/{resource}", self._handle)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        resource = request.match_info["resource"]
        method = RESOURCES.get((request.method, resource), f"{resource}.{request.method}")
        params: dict[str, Any] = dict(request.query)
        body: Any = None
        if request.can_read_body:
            raw = await request.read()
            try:
                body = json.loads(raw) if raw.strip() else None
            except ValueError:
                body = raw.decode(errors="replace")
            params["body"] = body
        authorization = request.headers.get("Authorization", "")
        if authorization:
            params["authorization"] = authorization
        if (request.method, resource) not in RESOURCES:
            reply = Reply(404, "Not Found")
            self.log(method, params, reply)
            return web.Response(status=404, text="Not Found")
        refusal = self._refusal(method, params.get("key"), authorization)
        if refusal is not None:
            reply = Reply(refusal.code, refusal.body())
            self.log(method, params, reply)
            return web.json_response(reply.body, status=refusal.code)

        async def apply() -> Reply:
            try:
                self._charge(method)
                result = self._run(method, params, body)
            except YouTubeApiFailure as failure:
                return Reply(failure.code, failure.body())
            return Reply(200, result, applied=True)

        return await self.run_call(request, method, params, apply)

    def _refusal(
        self, method: str, key: str | None, authorization: str
    ) -> YouTubeApiFailure | None:
        """Check the API key and the bearer token, as Google's front end does."""
        if authorization:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() != "bearer" or token != self.oauth_token:
                return YouTubeApiFailure(
                    401,
                    "authError",
                    "Request had invalid authentication credentials. Expected OAuth 2 access"
                    " token, login cookie or other valid authentication credential. See"
                    " https://developers.google.com/identity/sign-in/web/devconsole-project.",
                    status="UNAUTHENTICATED",
                    location="Authorization",
                    location_type="header",
                ).with_item_message("Invalid Credentials")
        if key is not None and key != self.api_key:
            return self._bad_key()
        if method.endswith(".insert") and not authorization:
            return YouTubeApiFailure(
                401,
                "required",
                "API keys are not supported by this API. Expected OAuth2 access token or other"
                " authentication credentials that assert a principal. See"
                " https://cloud.google.com/docs/authentication",
                status="UNAUTHENTICATED",
                location="Authorization",
                location_type="header",
                details=[_error_info("CREDENTIALS_MISSING")],
            ).with_item_message("Login Required.")
        if key is None and not authorization:
            return YouTubeApiFailure(
                403,
                "forbidden",
                "The request is missing a valid API key.",
                status="PERMISSION_DENIED",
            )
        return None

    def _bad_key(self) -> YouTubeApiFailure:
        if self.legacy_key_errors:
            return YouTubeApiFailure(400, "keyInvalid", "Bad Request", domain="usageLimits")
        return YouTubeApiFailure(
            400,
            "badRequest",
            "API key not valid. Please pass a valid API key.",
            status="INVALID_ARGUMENT",
            details=[_error_info("API_KEY_INVALID")],
        )

    def fault_reply(self, method: str, fault: Fault) -> Reply:
        """Answer an injected fault in Google's envelope; `error` names the reason."""
        if fault.error == "quotaExceeded":
            failure = quota_exceeded()
        elif fault.status == 429:
            return self.ratelimited_reply(method, fault.retry_after)
        elif fault.status >= 500:
            unavailable = fault.status == 503
            failure = YouTubeApiFailure(
                fault.status,
                fault.error or "backendError",
                "The service is currently unavailable."
                if unavailable
                else "Internal error encountered.",
                status="UNAVAILABLE" if unavailable else "INTERNAL",
            )
        else:
            reason = fault.error or "forbidden"
            failure = YouTubeApiFailure(fault.status, reason, f"Injected {reason}.")
        return Reply(failure.code, failure.body())

    def ratelimited_reply(self, method: str, retry_after: int) -> Reply:
        """Answer 429 RESOURCE_EXHAUSTED ``rateLimitExceeded``."""
        failure = YouTubeApiFailure(
            429,
            "rateLimitExceeded",
            "Resource has been exhausted (e.g. check quota).",
            status="RESOURCE_EXHAUSTED",
        )
        return Reply(429, failure.body(), headers={"Retry-After": str(retry_after)})

    # ------------------------------------------------------------------ quota

    def _pacific_day(self) -> date:
        return self.now().astimezone(PACIFIC).date()

    def _charge(self, method: str) -> None:
        """Spend `method`'s cost, or raise quotaExceeded (nothing spent) when it would overrun."""
        today = self._pacific_day()
        if today != self._quota_day:
            self.reset_quota()
            self._quota_day = today
        if method == "search.list" and self.search_quota == "bucket":
            if self.search_calls_used >= self.search_calls_per_day:
                raise quota_exceeded()
            self.search_calls_used += 1
            return
        cost = self.quota_costs[method]
        if self.quota_used + cost > self.daily_quota:
            raise quota_exceeded()
        self.quota_used += cost
        self.quota_by_method[method] += cost

    @property
    def quota_remaining(self) -> int:
        """Return the units left today."""
        return self.daily_quota - self.quota_used

    def reset_quota(self) -> None:
        """Start a new quota day (what midnight Pacific time does)."""
        self.quota_used = 0
        self.search_calls_used = 0
        self.quota_by_method.clear()

    def fail_next_quota(self, method: str = "*", *, times: int = 1) -> None:
        """Answer the next `times` calls of `method` with 403 quotaExceeded (nothing spent)."""
        self.fail_next(method, 403, error="quotaExceeded", times=times)

    # ------------------------------------------------------------------ seeding

    def add_video(
        self,
        channel_id: str,
        title: str,
        description: str,
        published_at: datetime,
        *,
        video_id: str | None = None,
        channel_title: str | None = None,
        comments_disabled: bool = False,
    ) -> YouTubeVideo:
        """Publish a video on `channel_id` (title and description raw, not escaped)."""
        video = YouTubeVideo(
            id=video_id or fake_id(f"video:{len(self.videos) + 1}:{title}", 11),
            channel_id=channel_id,
            channel_title=channel_title or f"Channel {channel_id[-4:]}",
            title=title,
            description=description,
            published_at=_aware(published_at),
            comments_disabled=comments_disabled,
        )
        self.videos[video.id] = video
        return video

    def add_comment(
        self,
        video_id: str,
        text: str,
        author: str,
        published_at: datetime,
        *,
        like_count: int = 0,
        author_channel_id: str | None = None,
        parent_id: str | None = None,
    ) -> YouTubeComment:
        """Comment on video `video_id` (a reply to thread `parent_id` if given)."""
        video = self.videos[video_id]
        if parent_id is not None and parent_id not in self._comments:
            raise KeyError(f"no comment {parent_id}")
        return self._store(
            video,
            text,
            author,
            author_channel_id or channel_id_for(author),
            _aware(published_at),
            like_count=like_count,
            parent_id=parent_id,
        )

    def _store(
        self,
        video: YouTubeVideo,
        text: str,
        author: str,
        author_channel_id: str,
        published_at: datetime,
        *,
        like_count: int = 0,
        parent_id: str | None = None,
    ) -> YouTubeComment:
        seq = next(self._seq)
        if parent_id is None:
            comment_id = "Ugz" + fake_id(f"comment:{seq}", 16) + "4AaABAg"
        else:
            comment_id = f"{parent_id}.{fake_id(f'reply:{seq}', 22)}"
        comment = YouTubeComment(
            id=comment_id,
            video_id=video.id,
            channel_id=video.channel_id,
            text=text,
            author=author,
            author_channel_id=author_channel_id,
            published_at=published_at,
            updated_at=published_at,
            like_count=like_count,
            parent_id=parent_id,
            seq=seq,
        )
        self._comments[comment.id] = comment
        return comment

    # ------------------------------------------------------------------ queries for tests

    def comment(self, comment_id: str) -> YouTubeComment:
        """Return a comment or reply by id (KeyError when there is none)."""
        return self._comments[comment_id]

    def threads(self, video_id: str) -> list[YouTubeComment]:
        """Return the top-level comments of a video, newest first."""
        found = [
            c for c in self._comments.values() if c.video_id == video_id and c.parent_id is None
        ]
        return sorted(found, key=_by_time)

    def replies(self, thread_id: str) -> list[YouTubeComment]:
        """Return the replies of thread `thread_id`, oldest first."""
        return sorted(
            (c for c in self._comments.values() if c.parent_id == thread_id), key=lambda c: c.seq
        )

    # ------------------------------------------------------------------ rendering

    def render_comment(
        self, comment: YouTubeComment, *, text_format: str = "html"
    ) -> dict[str, Any]:
        """Render a ``youtube#comment`` resource."""
        display = comment.text if text_format == "plainText" else render_text_display(comment.text)
        snippet: dict[str, Any] = {
            "channelId": comment.channel_id,
            "videoId": comment.video_id,
            "textDisplay": display,
            "textOriginal": comment.text,
        }
        if comment.parent_id is not None:
            snippet["parentId"] = comment.parent_id
        snippet.update(
            {
                "authorDisplayName": comment.author,
                "authorProfileImageUrl": "https://yt3.ggpht.com/ytc/"
                + fake_id(f"avatar:{comment.author_channel_id}", 32)
                + "=s48-c-k-c0x00ffffff-no-rj",
                "authorChannelUrl": f"http://www.youtube.com/channel/{comment.author_channel_id}",
                "authorChannelId": {"value": comment.author_channel_id},
                "canRate": True,
                "viewerRating": "none",
                "likeCount": comment.like_count,
                "publishedAt": rfc3339(comment.published_at),
                "updatedAt": rfc3339(comment.updated_at),
            }
        )
        return {
            "kind": "youtube#comment",
            "etag": _etag(f"{comment.id}:{comment.updated_at.isoformat()}"),
            "id": comment.id,
            "snippet": snippet,
        }

    def render_thread(
        self, top: YouTubeComment, parts: set[str], *, text_format: str = "html"
    ) -> dict[str, Any]:
        """Render a ``youtube#commentThread`` with the requested parts."""
        replies = self.replies(top.id)
        out: dict[str, Any] = {
            "kind": "youtube#commentThread",
            "etag": _etag(f"thread:{top.id}:{len(replies)}"),
            "id": top.id,
        }
        if "snippet" in parts:
            out["snippet"] = {
                "channelId": top.channel_id,
                "videoId": top.video_id,
                "topLevelComment": self.render_comment(top, text_format=text_format),
                "canReply": True,
                "totalReplyCount": len(replies),
                "isPublic": True,
            }
        if "replies" in parts and replies:
            out["replies"] = {
                "comments": [
                    self.render_comment(reply, text_format=text_format)
                    for reply in replies[:MAX_REPLIES_IN_THREAD]
                ]
            }
        return out

    def render_search_result(self, video: YouTubeVideo) -> dict[str, Any]:
        """Render a ``youtube#searchResult`` for a video."""
        description = video.description
        if len(description) > DESCRIPTION_PREVIEW:
            description = description[: DESCRIPTION_PREVIEW - 4].rsplit(" ", 1)[0] + " ..."
        published = rfc3339(video.published_at)
        thumbnails = {
            name: {"url": f"https://i.ytimg.com/vi/{video.id}/{file}", "width": w, "height": h}
            for name, file, w, h in (
                ("default", "default.jpg", 120, 90),
                ("medium", "mqdefault.jpg", 320, 180),
                ("high", "hqdefault.jpg", 480, 360),
            )
        }
        return {
            "kind": "youtube#searchResult",
            "etag": _etag(f"search:{video.id}"),
            "id": {"kind": "youtube#video", "videoId": video.id},
            "snippet": {
                "publishedAt": published,
                "channelId": video.channel_id,
                "title": escape_html(video.title),
                "description": description,
                "thumbnails": thumbnails,
                "channelTitle": video.channel_title,
                "liveBroadcastContent": "none",
                "publishTime": published,
            },
        }

    # ------------------------------------------------------------------ resources

    def _run(self, method: str, params: dict[str, Any], body: Any) -> dict[str, Any]:
        if method == "commentThreads.list":
            return self._comment_threads_list(params)
        if method == "comments.list":
            return self._comments_list(params)
        if method == "search.list":
            return self._search_list(params)
        if method == "commentThreads.insert":
            return self._comment_threads_insert(params, body)
        return self._comments_insert(params, body)

    def _comment_threads_list(self, params: dict[str, Any]) -> dict[str, Any]:
        parts = _parts(params, {"id", "snippet", "replies"})
        max_results = _int_in(params, "maxResults", 20, 1, 100)
        order = params.get("order", "time")
        if order not in {"time", "relevance"}:
            raise invalid_parameter("order", f"Invalid value '{order}' for order.")
        text_format = params.get("textFormat", "html")
        if text_format not in {"html", "plainText"}:
            raise invalid_parameter("textFormat", f"Invalid value '{text_format}'.")
        threads = self._threads_for(params)
        terms = params.get("searchTerms", "").casefold()
        if terms:
            threads = [t for t in threads if terms in t.text.casefold()]
        sort_key = _by_time if order == "time" else _by_relevance
        threads.sort(key=sort_key)
        if params.get("pageToken"):
            cursor = _decode_cursor(params["pageToken"])
            threads = [t for t in threads if list(sort_key(t)) > cursor]
        page = threads[:max_results]
        result: dict[str, Any] = {
            "kind": "youtube#commentThreadListResponse",
            "etag": _etag(f"threads:{[t.id for t in page]}"),
        }
        if len(threads) > len(page):
            result["nextPageToken"] = _encode_cursor(list(sort_key(page[-1])))
        result["pageInfo"] = {"totalResults": len(page), "resultsPerPage": max_results}
        result["items"] = [self.render_thread(t, parts, text_format=text_format) for t in page]
        return result

    def _threads_for(self, params: dict[str, Any]) -> list[YouTubeComment]:
        video_id = params.get("videoId")
        channel_id = params.get("allThreadsRelatedToChannelId")
        if bool(video_id) == bool(channel_id):
            raise YouTubeApiFailure(
                400,
                "missingRequiredParameter",
                "No filter selected. Expected one of: allThreadsRelatedToChannelId, channelId,"
                " id, videoId",
                domain="youtube.parameter",
            )
        if video_id:
            video = self.videos.get(video_id)
            if video is None:
                raise YouTubeApiFailure(
                    404,
                    "videoNotFound",
                    'The video identified by the <code><a href="/youtube/v3/docs/commentThreads/'
                    'list#videoId">videoId</a></code> parameter could not be found.',
                    domain="youtube.commentThread",
                    location="videoId",
                )
            if video.comments_disabled:
                raise YouTubeApiFailure(
                    403,
                    "commentsDisabled",
                    'The video identified by the <code><a href="/youtube/v3/docs/commentThreads/'
                    'list#videoId">videoId</a></code> parameter has disabled comments.',
                    domain="youtube.commentThread",
                    location="videoId",
                )
            videos = {video.id}
        else:
            videos = {v.id for v in self.videos.values() if v.channel_id == channel_id}
            if not videos:
                raise YouTubeApiFailure(
                    404,
                    "channelNotFound",
                    "The channel identified by the <code>allThreadsRelatedToChannelId</code>"
                    " parameter could not be found.",
                    domain="youtube.commentThread",
                    location="allThreadsRelatedToChannelId",
                )
        return [c for c in self._comments.values() if c.parent_id is None and c.video_id in videos]

    def _comments_list(self, params: dict[str, Any]) -> dict[str, Any]:
        parts = _parts(params, {"id", "snippet"})
        text_format = params.get("textFormat", "html")
        if text_format not in {"html", "plainText"}:
            raise invalid_parameter("textFormat", f"Invalid value '{text_format}'.")
        parent_id, ids = params.get("parentId"), params.get("id")
        if bool(parent_id) == bool(ids):
            raise YouTubeApiFailure(
                400,
                "missingRequiredParameter",
                "No filter selected. Expected one of: id, parentId",
                domain="youtube.parameter",
            )
        if ids:
            if "maxResults" in params:
                raise invalid_parameter(
                    "maxResults",
                    "The maxResults parameter is not supported in conjunction with id.",
                    reason="incompatibleParameters",
                )
            wanted = [i.strip() for i in str(ids).split(",") if i.strip()]
            found = [self._comments[i] for i in wanted if i in self._comments]
            return {
                "kind": "youtube#commentListResponse",
                "etag": _etag(f"comments:{wanted}"),
                "pageInfo": {"totalResults": len(found), "resultsPerPage": len(found)},
                "items": [self._render_listed(c, parts, text_format) for c in found],
            }
        max_results = _int_in(params, "maxResults", 20, 1, 100)
        parent = self._comments.get(str(parent_id))
        if parent is None or parent.parent_id is not None:
            raise YouTubeApiFailure(
                404,
                "commentNotFound",
                "One or more of the comments identified by the <code>id</code> or"
                " <code>parentId</code> parameter could not be found.",
                domain="youtube.comment",
                location="parentId",
            )
        replies = sorted(self.replies(parent.id), key=_by_time)  # newest first
        if params.get("pageToken"):
            cursor = _decode_cursor(params["pageToken"])
            replies = [r for r in replies if list(_by_time(r)) > cursor]
        size = min(max_results, self.replies_page_size or max_results)
        page = replies[:size]
        result: dict[str, Any] = {
            "kind": "youtube#commentListResponse",
            "etag": _etag(f"replies:{parent.id}:{[r.id for r in page]}"),
        }
        if len(replies) > len(page):
            result["nextPageToken"] = _encode_cursor(list(_by_time(page[-1])))
        result["pageInfo"] = {"resultsPerPage": max_results}
        result["items"] = [self._render_listed(r, parts, text_format) for r in page]
        return result

    def _render_listed(
        self, comment: YouTubeComment, parts: set[str], text_format: str
    ) -> dict[str, Any]:
        """Render a comment as comments.list does: no ``videoId``/``channelId`` in a reply."""
        rendered = self.render_comment(comment, text_format=text_format)
        if comment.parent_id is not None:
            rendered["snippet"].pop("videoId")
            rendered["snippet"].pop("channelId")
        if "snippet" not in parts:
            del rendered["snippet"]
        return rendered

    def _search_list(self, params: dict[str, Any]) -> dict[str, Any]:
        _parts(params, {"id", "snippet"})
        max_results = _int_in(params, "maxResults", 5, 0, 50)
        kinds = {k.strip() for k in params.get("type", "video,channel,playlist").split(",")}
        videos = list(self.videos.values()) if "video" in kinds else []
        query = params.get("q", "")
        if query:
            videos = [v for v in videos if _search_matches(query, f"{v.title}\n{v.description}")]
        if params.get("channelId"):
            videos = [v for v in videos if v.channel_id == params["channelId"]]
        if params.get("publishedAfter"):
            after = parse_rfc3339(params["publishedAfter"], "publishedAfter")
            videos = [v for v in videos if v.published_at >= after]
        if params.get("publishedBefore"):
            before = parse_rfc3339(params["publishedBefore"], "publishedBefore")
            videos = [v for v in videos if v.published_at < before]
        order = params.get("order", "relevance")
        if order == "title":
            videos.sort(key=lambda v: (v.title.casefold(), v.id))
        else:  # date, and relevance played as date
            videos.sort(key=lambda v: (-v.published_at.timestamp(), v.id))
        offset = _decode_offset(params["pageToken"]) if params.get("pageToken") else 0
        page = videos[offset : offset + max_results]
        result: dict[str, Any] = {
            "kind": "youtube#searchListResponse",
            "etag": _etag(f"search:{query}:{offset}:{[v.id for v in page]}"),
        }
        if offset + max_results < len(videos):
            result["nextPageToken"] = _encode_offset(offset + max_results)
        if offset > 0:
            result["prevPageToken"] = _encode_offset(max(offset - max_results, 0), previous=True)
        result["regionCode"] = self.region_code
        result["pageInfo"] = {"totalResults": len(videos), "resultsPerPage": max_results}
        result["items"] = [self.render_search_result(v) for v in page]
        return result

    def _comments_insert(self, params: dict[str, Any], body: Any) -> dict[str, Any]:
        snippet = _insert_snippet(params, body)
        parent_id = snippet.get("parentId")
        if not parent_id:
            raise YouTubeApiFailure(
                400,
                "parentIdMissing",
                "The comment being created must be linked to a parent comment. However, the"
                " request body did not specify a value for the snippet.parentId property.",
                domain="youtube.comment",
            )
        text = _comment_text(snippet)
        parent = self._comments.get(parent_id)
        if parent is None or parent.parent_id is not None:
            raise YouTubeApiFailure(
                404,
                "parentCommentNotFound",
                "The specified parent comment could not be found. Check the value of the"
                " snippet.parentId property in the request body to ensure that it is correct.",
                domain="youtube.comment",
                location="body.snippet.parentId",
                location_type="other",
            )
        reply = self._store(
            self.videos[parent.video_id],
            text,
            self.oauth_channel_title,
            self.oauth_channel_id,
            _aware(self.now()),
            parent_id=parent.id,
        )
        self.inserted_comments.append(reply)
        return self.render_comment(reply)

    def _comment_threads_insert(self, params: dict[str, Any], body: Any) -> dict[str, Any]:
        snippet = _insert_snippet(params, body)
        top = snippet.get("topLevelComment")
        top_snippet = top.get("snippet") if isinstance(top, dict) else None
        if not isinstance(top_snippet, dict):
            raise YouTubeApiFailure(
                400,
                "invalidCommentThreadMetadata",
                "The request metadata is invalid.",
                domain="youtube.commentThread",
            )
        text = _comment_text(top_snippet)
        video = self.videos.get(str(snippet.get("videoId") or ""))
        if video is None:
            raise YouTubeApiFailure(
                404,
                "videoNotFound",
                "The specified video could not be found.",
                domain="youtube.commentThread",
                location="body.snippet.videoId",
                location_type="other",
            )
        if video.comments_disabled:
            raise YouTubeApiFailure(
                403,
                "commentsDisabled",
                "The thread could not be created because comments have been disabled.",
                domain="youtube.commentThread",
            )
        thread = self._store(
            video, text, self.oauth_channel_title, self.oauth_channel_id, _aware(self.now())
        )
        self.inserted_comments.append(thread)
        return self.render_thread(thread, {"snippet"})


def _insert_snippet(params: dict[str, Any], body: Any) -> dict[str, Any]:
    """Check ``part`` and return the body's ``snippet`` (400 parseError without one)."""
    _parts(params, {"id", "snippet"})
    if not isinstance(body, dict) or not isinstance(body.get("snippet"), dict):
        raise YouTubeApiFailure(400, "parseError", "Parse Error", status="INVALID_ARGUMENT")
    snippet: dict[str, Any] = body["snippet"]
    return snippet


def _comment_text(snippet: dict[str, Any]) -> str:
    """Return ``textOriginal``, refused when empty or too long as comments.insert does."""
    text = snippet.get("textOriginal")
    if not isinstance(text, str) or not text.strip():
        raise YouTubeApiFailure(
            400,
            "commentTextRequired",
            "The comment resource that is being inserted must specify a value for the"
            " snippet.textOriginal property. Comments cannot be empty.",
            domain="youtube.comment",
            location="body.snippet.textOriginal",
            location_type="other",
        )
    if len(text) > MAX_COMMENT_LENGTH:
        raise YouTubeApiFailure(
            400,
            "commentTextTooLong",
            "The comment resource that is being inserted contains too many characters in the"
            " snippet.textOriginal property.",
            domain="youtube.comment",
        )
    return text


def _error_info(reason: str) -> dict[str, Any]:
    return {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": reason,
        "domain": "googleapis.com",
        "metadata": {"service": "youtube.googleapis.com"},
    }


def _by_time(comment: YouTubeComment) -> tuple[float, int]:
    return (-comment.published_at.timestamp(), -comment.seq)


def _by_relevance(comment: YouTubeComment) -> tuple[float, float, int]:
    return (-comment.like_count, -comment.published_at.timestamp(), -comment.seq)


def _encode_cursor(key: list[float]) -> str:
    raw = json.dumps(key, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(token: str) -> list[float]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        key = json.loads(raw)
        if not isinstance(key, list) or not all(isinstance(x, int | float) for x in key):
            raise ValueError(token)
    except (ValueError, binascii.Error):
        raise _bad_page_token() from None
    return key


def _encode_offset(offset: int, *, previous: bool = False) -> str:
    """Encode a search offset the way YouTube's tokens do (``CAUQAA`` is offset 5)."""
    varint = bytearray()
    value = offset
    while True:
        byte = value & 0x7F
        value >>= 7
        varint.append(byte | (0x80 if value else 0))
        if not value:
            break
    raw = b"\x08" + bytes(varint) + (b"\x10\x01" if previous else b"\x10\x00")
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_offset(token: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (ValueError, binascii.Error):
        raise _bad_page_token() from None
    if not raw or raw[0] != 0x08:
        raise _bad_page_token()
    offset, shift = 0, 0
    for byte in raw[1:]:
        offset |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return offset
    raise _bad_page_token()


def _bad_page_token() -> YouTubeApiFailure:
    return YouTubeApiFailure(
        400,
        "invalidPageToken",
        "The request specifies an invalid page token.",
        domain="youtube.parameter",
        location="pageToken",
    )


def _parts(params: dict[str, Any], known: set[str]) -> set[str]:
    raw = params.get("part")
    if not raw:
        raise required("part")
    parts = {p.strip() for p in str(raw).split(",") if p.strip()}
    unknown = parts - known
    if unknown:
        raise invalid_parameter(
            "part",
            f"'{sorted(unknown)[0]}'",
            reason="unknownPart",
        )
    return parts


def _int_in(params: dict[str, Any], name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise invalid_parameter(
            name, f"Invalid value '{raw}'. Values must be within the range: [{low}, {high}]"
        )
    return value


def _search_matches(query: str, text: str) -> bool:
    folded = text.casefold()
    for alternative in query.split("|"):
        words = alternative.split()
        if words and all(word.casefold() in folded for word in words):
            return True
    return False
