"""A fake X API v2 (recent search and posting) for the collector and the reply path.

Usage::

    async with FakeX() as x:
        x.add_tweet("@acme my parcel is late", author="jane_doe")
        async with aiohttp.ClientSession() as http:
            async with http.get(
                f"{x.url}/2/tweets/search/recent",
                params={"query": "@acme -from:acme", "expansions": "author_id"},
                headers={"Authorization": f"Bearer {x.bearer_token}"},
            ) as response:
                page = await response.json()

It speaks the wire format of https://api.x.com/2/...: answers shaped like the captured
``GET /2/tweets/search/recent`` (``{"data", "includes", "meta"}``; ``{"meta": {"result_count":
0}}`` when nothing matches), errors as X's problem JSON (``{"title", "detail", "type",
"status"}``, and ``{"errors": [{"parameters", "message"}], "title": "Invalid Request", ...}``
for bad parameters), and the ``x-rate-limit-limit/remaining/reset`` headers on every answer of
a rate-limited endpoint.

Search keeps X's rules: only tweets of the last 7 days (a ``since_id`` older than that is
refused, as X does), newest first, ``since_id``/``until_id`` exclusive, ``max_results`` 10..100,
pagination by ``next_token`` (``pagination_token`` too) that walks towards older tweets, so
tweets that arrive while a client pages are neither skipped nor repeated. Rate limits count
fixed 15-minute windows per token (450 app-only / 180 user by default) and answer 429.

Time: the fake's wall clock is ``time.time()`` at construction moved by `clock` (a
`ManualClock` lets a test jump a week ahead without sleeping); see `now`.

Knowingly different from X: the query language covers keywords, quoted phrases, ``OR``,
parentheses, ``-`` negation, ``from:``, ``to:``, ``@user``, ``#tag``, ``is:reply``,
``is:retweet``, ``is:quote``, ``lang:``, ``conversation_id:`` and ``in_reply_to_tweet_id:``
only; query syntax error texts and the texts of a few invalid-parameter errors (bad
``next_token``, bad JSON body) are close to X's but not captured; tweet fields the fake does not
model (``entities``, ``public_metrics`` ...) are accepted and left out; no Tweet length check.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Any

from aiohttp import web

from tests.fakes.server import Clock, FakeServer, Fault, Reply, read_fields, to_response

SEARCH = "search_recent_tweets"  # GET /2/tweets/search/recent (tweepy's method name)
CREATE = "create_tweet"  # POST /2/tweets
TWEPOCH_MS = 1288834974657  # the snowflake epoch (2010-11-04T01:42:54.657Z)
RECENT = timedelta(days=7)
RATE_WINDOW = 15 * 60.0

INVALID_REQUEST = "https://api.twitter.com/2/problems/invalid-request"
UNSUPPORTED_AUTH = "https://api.twitter.com/2/problems/unsupported-authentication"
RESOURCE_NOT_FOUND = "https://api.twitter.com/2/problems/resource-not-found"
APP_ONLY_FORBIDDEN = (
    "Authenticating with OAuth 2.0 Application-Only is forbidden for this endpoint.  Supported"
    " authentication types are [OAuth 1.0a User Context, OAuth 2.0 User Context]."
)
DUPLICATE = "You are not allowed to create a Tweet with duplicate content."
REPLY_TARGET_GONE = "You attempted to reply to a Tweet that is deleted or not visible to you."
INVALID_DETAIL = "One or more parameters to your request was invalid."

SEARCH_PARAMS = (
    "query",
    "start_time",
    "end_time",
    "since_id",
    "until_id",
    "max_results",
    "next_token",
    "pagination_token",
    "sort_order",
    "expansions",
    "tweet.fields",
    "media.fields",
    "poll.fields",
    "place.fields",
    "user.fields",
)
TWEET_FIELDS = (
    "article",
    "attachments",
    "author_id",
    "card_uri",
    "community_id",
    "context_annotations",
    "conversation_id",
    "created_at",
    "display_text_range",
    "edit_controls",
    "edit_history_tweet_ids",
    "entities",
    "geo",
    "id",
    "in_reply_to_user_id",
    "lang",
    "media_metadata",
    "non_public_metrics",
    "note_tweet",
    "organic_metrics",
    "possibly_sensitive",
    "promoted_metrics",
    "public_metrics",
    "referenced_tweets",
    "reply_settings",
    "scopes",
    "source",
    "text",
    "withheld",
)
USER_FIELDS = (
    "affiliation",
    "connection_status",
    "created_at",
    "description",
    "entities",
    "id",
    "is_identity_verified",
    "location",
    "most_recent_tweet_id",
    "name",
    "parody",
    "pinned_tweet_id",
    "profile_banner_url",
    "profile_image_url",
    "protected",
    "public_metrics",
    "receives_your_dm",
    "subscription",
    "subscription_type",
    "url",
    "username",
    "verified",
    "verified_followers_count",
    "verified_type",
    "withheld",
)
EXPANSIONS = (
    "article.cover_media",
    "article.media_entities",
    "attachments.media_keys",
    "attachments.media_source_tweet",
    "attachments.poll_ids",
    "author_id",
    "edit_history_tweet_ids",
    "entities.mentions.username",
    "geo.place_id",
    "in_reply_to_user_id",
    "entities.note.mentions.username",
    "referenced_tweets.id",
    "referenced_tweets.id.attachments.media_keys",
    "referenced_tweets.id.author_id",
)
OPERATORS = frozenset({"from", "to", "is", "lang", "conversation_id", "in_reply_to_tweet_id"})
MENTION = re.compile(r"(?<![\w@])@(\w{1,15})")


class XApiError(Exception):
    """An answer other than 2xx that an endpoint gives."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(body.get("detail") or body.get("title"))
        self.status = status
        self.body = body


def problem(status: int, title: str, detail: str, kind: str = "about:blank") -> dict[str, Any]:
    """Build X's problem JSON (``{"title", "detail", "type", "status"}``)."""
    return {"title": title, "detail": detail, "type": kind, "status": status}


def invalid_request(parameter: str, values: list[str], message: str) -> XApiError:
    """Build X's 400 for a bad request parameter."""
    return XApiError(
        400,
        {
            "errors": [{"parameters": {parameter: values}, "message": message}],
            "title": "Invalid Request",
            "detail": INVALID_DETAIL,
            "type": INVALID_REQUEST,
        },
    )


def invalid_body(message: str) -> XApiError:
    """Build X's 400 for a bad JSON body."""
    return XApiError(
        400,
        {
            "errors": [{"message": message}],
            "title": "Invalid Request",
            "detail": INVALID_DETAIL,
            "type": INVALID_REQUEST,
        },
    )


def snowflake_time(tweet_id: str | int) -> datetime:
    """Return the time a snowflake id encodes."""
    millis = (int(tweet_id) >> 22) + TWEPOCH_MS
    return datetime.fromtimestamp(millis / 1000, UTC)


def snowflake_at(moment: datetime, sequence: int = 0) -> int:
    """Return the smallest snowflake id of `moment` (plus `sequence`)."""
    millis = math.floor(moment.timestamp() * 1000)
    return ((millis - TWEPOCH_MS) << 22) + sequence


def iso_ms(moment: datetime) -> str:
    """Format a time as X does: ``2022-10-07T22:42:12.000Z``."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_time(value: str, name: str) -> datetime:
    """Parse an RFC 3339 time parameter (``YYYY-MM-DDTHH:mm:ssZ``)."""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise invalid_request(
            name, [value], f"Invalid '{name}':'{value}'. '{name}' must be a valid RFC 3339 date"
        )
    return moment


@dataclass
class XUser:
    """An X account."""

    id: str
    username: str
    name: str
    created_at: datetime | None = None
    fields: dict[str, Any] = field(default_factory=dict)  # description, verified, ...

    def render(self, requested: set[str]) -> dict[str, Any]:
        """Render the User object with the default fields and the requested ones."""
        out: dict[str, Any] = {"id": self.id, "name": self.name, "username": self.username}
        if "created_at" in requested and self.created_at is not None:
            out["created_at"] = iso_ms(self.created_at)
        for name, value in self.fields.items():
            if name in requested:
                out[name] = value
        return out


@dataclass
class Tweet:
    """A Post as the fake stores it."""

    id: str
    text: str
    author_id: str
    created_at: datetime
    conversation_id: str
    lang: str = "en"
    in_reply_to_user_id: str | None = None
    referenced_tweets: list[dict[str, str]] = field(default_factory=list)
    deleted: bool = False

    @property
    def edit_history_tweet_ids(self) -> list[str]:
        """Return the ids of the versions of the tweet (never edited here)."""
        return [self.id]

    @property
    def in_reply_to_tweet_id(self) -> str | None:
        """Return the id of the tweet this one answers, if any."""
        for ref in self.referenced_tweets:
            if ref["type"] == "replied_to":
                return ref["id"]
        return None

    def render(self, requested: set[str]) -> dict[str, Any]:
        """Render the Tweet object: the default fields plus the requested ones it has."""
        out: dict[str, Any] = {
            "edit_history_tweet_ids": self.edit_history_tweet_ids,
            "id": self.id,
            "text": self.text,
        }
        if "author_id" in requested:
            out["author_id"] = self.author_id
        if "created_at" in requested:
            out["created_at"] = iso_ms(self.created_at)
        if "conversation_id" in requested:
            out["conversation_id"] = self.conversation_id
        if "in_reply_to_user_id" in requested and self.in_reply_to_user_id is not None:
            out["in_reply_to_user_id"] = self.in_reply_to_user_id
        if "referenced_tweets" in requested and self.referenced_tweets:
            out["referenced_tweets"] = [dict(ref) for ref in self.referenced_tweets]
        if "lang" in requested:
            out["lang"] = self.lang
        return out


class FixedWindow:
    """Allow `limit` calls per `period` seconds per key, in windows that start with a call.

    X counts requests in 15-minute windows and tells when the window resets
    (``x-rate-limit-reset``); this plays that instead of a sliding window.
    """

    def __init__(self, limit: int, period: float) -> None:
        self.limit = limit
        self.period = period
        self._windows: dict[Any, list[float]] = {}  # key -> [start, used]

    def _window(self, key: Any, now: float) -> list[float]:
        window = self._windows.get(key)
        if window is None or now >= window[0] + self.period:
            window = [now, 0.0]
            self._windows[key] = window
        return window

    def wait(self, key: Any, now: float) -> float:
        """Return how long a call for `key` must wait (0 when it may go now)."""
        start, used = self._window(key, now)
        return 0.0 if used < self.limit else start + self.period - now

    def take(self, key: Any, now: float) -> None:
        """Spend one call for `key`."""
        self._window(key, now)[1] += 1

    def state(self, key: Any, now: float) -> tuple[int, int, float]:
        """Return (limit, remaining, reset time on the server clock) for `key`, changing nothing."""
        window = self._windows.get(key)
        if window is None or now >= window[0] + self.period:
            return self.limit, self.limit, now + self.period
        return self.limit, max(0, self.limit - int(window[1])), window[0] + self.period


# ---------------------------------------------------------------------------- search queries

Matcher = Callable[[Tweet], bool]


class QuerySyntaxError(ValueError):
    """A query X would refuse; the text follows X's "There were errors ..." answers."""


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def _contains_run(words: list[str], run: list[str]) -> bool:
    if not run:
        return False
    size = len(run)
    return any(words[i : i + size] == run for i in range(len(words) - size + 1))


class QueryParser:
    """Parse a search query into a predicate over tweets.

    ``a b`` is AND, ``a OR b`` is OR (AND binds tighter, as on X), ``( )`` groups, a leading
    ``-`` negates. Keywords match whole tokens case-insensitively (X tokenizes on
    punctuation, so ``acme`` matches ``@acme`` and ``#acme`` but not ``acmecorp``); quoted
    phrases match the exact sequence of characters between word boundaries.
    """

    TOKEN = re.compile(
        r'\s*(?:(?P<lp>\()|(?P<rp>\))|(?P<neg>-)(?=\S)|"(?P<phrase>[^"]*)"|(?P<term>[^\s()"]+))'
    )

    def __init__(self, query: str, fake: FakeX) -> None:
        self.query = query
        self.fake = fake
        self.tokens: list[tuple[str, str, int]] = []
        position = 0
        while position < len(query):
            if query[position:].strip() == "":
                break
            match = self.TOKEN.match(query, position)
            if match is None:
                raise QuerySyntaxError(self._error("unbalanced quotes", position))
            kind = match.lastgroup or "term"
            self.tokens.append((kind, match.group(kind) or "", match.start(kind)))
            position = match.end()
        self.index = 0
        self.positive = 0  # non-negated terms seen

    def _error(self, what: str, position: int) -> str:
        return f"There were errors processing your request: {what} (at position {position + 1})"

    def parse(self) -> Matcher:
        """Return the predicate, or raise QuerySyntaxError."""
        if not self.tokens:
            raise QuerySyntaxError(self._error("empty query", 0))
        matcher = self._or(negated=False)
        if self.index < len(self.tokens):
            _, value, position = self.tokens[self.index]
            raise QuerySyntaxError(self._error(f"unexpected '{value or ')'}'", position))
        if self.positive == 0:
            raise QuerySyntaxError(self._error("Rules must contain a non-negation term", 0))
        return matcher

    def _peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def _or(self, *, negated: bool) -> Matcher:
        branches = [self._and(negated=negated)]
        while (token := self._peek()) is not None and token[:2] == ("term", "OR"):
            self.index += 1
            branches.append(self._and(negated=negated))
        if len(branches) == 1:
            return branches[0]
        return lambda tweet: any(branch(tweet) for branch in branches)

    def _and(self, *, negated: bool) -> Matcher:
        parts: list[Matcher] = []
        while (token := self._peek()) is not None and token[0] != "rp":
            if token[:2] == ("term", "OR"):
                if not parts:
                    raise QuerySyntaxError(self._error("unexpected 'OR'", token[2]))
                break
            parts.append(self._unary(negated=negated))
        if not parts:
            position = token[2] if token else len(self.query)
            raise QuerySyntaxError(self._error("missing term", position))
        if len(parts) == 1:
            return parts[0]
        return lambda tweet: all(part(tweet) for part in parts)

    def _unary(self, *, negated: bool) -> Matcher:
        kind, value, position = self.tokens[self.index]
        self.index += 1
        if kind == "neg":
            if self._peek() is None:
                raise QuerySyntaxError(self._error("missing term after '-'", position))
            inner = self._unary(negated=not negated)
            return lambda tweet: not inner(tweet)
        if kind == "lp":
            inner = self._or(negated=negated)
            closing = self._peek()
            if closing is None or closing[0] != "rp":
                raise QuerySyntaxError(self._error("missing ')'", position))
            self.index += 1
            return inner
        if kind == "rp":
            raise QuerySyntaxError(self._error("unexpected ')'", position))
        if not negated:
            self.positive += 1
        if kind == "phrase":
            return self._phrase(value)
        return self._term(value, position)

    @staticmethod
    def _phrase(phrase: str) -> Matcher:
        pattern = re.compile(r"(?<!\w)" + re.escape(phrase) + r"(?!\w)", re.IGNORECASE)
        return lambda tweet: bool(phrase) and pattern.search(tweet.text) is not None

    def _term(self, term: str, position: int) -> Matcher:
        operator, colon, argument = term.partition(":")
        if colon and re.fullmatch(r"[a-z_]+", operator) and argument:
            if operator not in OPERATORS:
                raise QuerySyntaxError(
                    self._error(
                        f"Reference to invalid operator '{operator}'. Operator is not available"
                        " in current product or product packaging. Please refer to complete"
                        " available operator list at https://developer.x.com/en/docs/"
                        "twitter-api/tweets/search/integrate/build-a-query#list",
                        position,
                    )
                )
            return self._operator(operator, argument.lower(), position)
        if term[0] in "@#$" and len(term) > 1:
            pattern = re.compile(r"(?<![\w@#$])" + re.escape(term) + r"(?!\w)", re.IGNORECASE)
            return lambda tweet: pattern.search(tweet.text) is not None
        run = _words(term)
        if not run:
            return lambda tweet: term.lower() in tweet.text.lower()
        return lambda tweet: _contains_run(_words(tweet.text), run)

    def _operator(self, operator: str, argument: str, position: int) -> Matcher:
        fake = self.fake
        handle = argument.removeprefix("@")
        if operator == "from":
            return lambda tweet: fake.user_matches(tweet.author_id, handle)
        if operator == "to":
            return lambda tweet: (
                tweet.in_reply_to_user_id is not None
                and fake.user_matches(tweet.in_reply_to_user_id, handle)
            )
        if operator == "lang":
            return lambda tweet: tweet.lang.lower() == argument
        if operator == "conversation_id":
            return lambda tweet: tweet.conversation_id == argument
        if operator == "in_reply_to_tweet_id":
            return lambda tweet: tweet.in_reply_to_tweet_id == argument
        kinds = {"reply": "replied_to", "retweet": "retweeted", "quote": "quoted"}
        if argument not in kinds:
            what = f"Reference to invalid value 'is:{argument}'"
            raise QuerySyntaxError(self._error(what, position))
        kind = kinds[argument]
        return lambda tweet: any(ref["type"] == kind for ref in tweet.referenced_tweets)


# ---------------------------------------------------------------------------- the fake


class FakeX(FakeServer):
    """An X API v2 with recent search and posting, served at ``{url}/2/...``.

    Calls are logged as `SEARCH` and `CREATE` (other paths as ``"GET /2/..."``, answered
    404); each logged call's params carry ``_auth``: "app", "user" or None (unknown token).
    """

    def __init__(
        self,
        *,
        bearer_token: str = "AAAAAAAAAAAAAAAAAAAAAFakeAppOnlyBearerTokenForSocialCareTests",
        user_token: str = "ZmFrZS11c2VyLWNvbnRleHQtdG9rZW4tZm9yLXNvY2lhbGNhcmU6MTox",
        username: str = "acme_care",
        name: str = "Acme Support",
        search_limit: int = 450,
        user_search_limit: int = 180,
        post_limit: int = 200,
        rate_window: float = RATE_WINDOW,
        clock: Clock | None = None,
        rate_limits: bool = True,
    ) -> None:
        super().__init__(clock=clock, rate_limits=rate_limits)
        self.bearer_token = bearer_token  # OAuth 2.0 app-only: search only
        self.user_token = user_token  # OAuth 2.0 user context of `user`: search and posting
        self.users: dict[str, XUser] = {}
        self.tweets: dict[str, Tweet] = {}
        self.media: dict[str, bytes] = {}  # media id -> the bytes uploaded
        self.tweet_media: dict[str, list[str]] = {}  # tweet id -> its media ids
        self.media_write = True  # the user token has the media.write scope
        self._media_ids = itertools.count(1_146_654_567_674_912_769)
        self.posted: list[Tweet] = []  # tweets created through POST /2/tweets, oldest first
        self._wall_start = time.time()
        self._clock_start = self.clock()
        self._last_id = 0
        self._user_ids = itertools.count(1_500_000_000_000_000_001, 7919)
        self._page_tokens: dict[str, int] = {}  # next_token -> exclusive upper id bound
        self._limits = {
            (SEARCH, "app"): FixedWindow(search_limit, rate_window),
            (SEARCH, "user"): FixedWindow(user_search_limit, rate_window),
            (CREATE, "user"): FixedWindow(post_limit, rate_window),
        }
        self._limit_key: tuple[str, str] = (SEARCH, "app")
        self.user = self.add_user(username, name)

    # ------------------------------------------------------------------ time

    def now(self) -> datetime:
        """Return the fake's wall-clock time (aware, UTC), moved along with `clock`."""
        return datetime.fromtimestamp(self._epoch(self.clock()), UTC)

    def _epoch(self, server_time: float) -> float:
        return self._wall_start + (server_time - self._clock_start)

    # ------------------------------------------------------------------ seeding

    @property
    def url(self) -> str:
        """Return the API origin; endpoints live at ``{url}/2/...``."""
        return self.root_url

    def add_user(
        self,
        username: str,
        name: str | None = None,
        *,
        user_id: str | int | None = None,
        created_at: datetime | None = None,
        **fields: Any,
    ) -> XUser:
        """Add (or return the existing) account `username`; extra `fields` are user.fields."""
        existing = self.find_user(username)
        if existing is not None:
            return existing
        user = XUser(
            id=str(user_id if user_id is not None else next(self._user_ids)),
            username=username,
            name=name or username.replace("_", " ").title(),
            created_at=created_at,
            fields=dict(fields),
        )
        self.users[user.id] = user
        return user

    def find_user(self, handle: str) -> XUser | None:
        """Return the user with username `handle` (case-insensitive, "@" optional)."""
        handle = handle.removeprefix("@").lower()
        return next((u for u in self.users.values() if u.username.lower() == handle), None)

    def user_matches(self, user_id: str, handle: str) -> bool:
        """Tell whether `user_id` is the account `handle` (a username or a numeric id)."""
        user = self.users.get(user_id)
        return user_id == handle or (user is not None and user.username.lower() == handle)

    def _next_id(self, created_at: datetime) -> str:
        # Snowflake-like: the time in the high bits; always increasing in insertion order.
        self._last_id = max(snowflake_at(created_at), self._last_id + 1)
        return str(self._last_id)

    def add_tweet(
        self,
        text: str,
        *,
        author: XUser | str = "customer",
        created_at: datetime | None = None,
        conversation_id: str | None = None,
        in_reply_to: Tweet | str | None = None,
        lang: str = "en",
    ) -> Tweet:
        """Post a tweet as `author` (a username is created on first use); return it.

        `created_at` defaults to `now` (X keeps whole seconds). The id is a snowflake of
        `created_at`, and always larger than every earlier id. `in_reply_to` makes a reply:
        it takes the parent's conversation and author unless `conversation_id` is given.
        """
        user = author if isinstance(author, XUser) else self.add_user(author)
        parent: Tweet | None = None
        if in_reply_to is not None:
            parent_id = in_reply_to.id if isinstance(in_reply_to, Tweet) else in_reply_to
            parent = self.tweets.get(parent_id)
            if parent is None:
                raise KeyError(f"no tweet {parent_id}")
        moment = (created_at or self.now()).astimezone(UTC).replace(microsecond=0)
        tweet_id = self._next_id(moment)
        tweet = Tweet(
            id=tweet_id,
            text=text,
            author_id=user.id,
            created_at=moment,
            conversation_id=conversation_id or (parent.conversation_id if parent else tweet_id),
            lang=lang,
            in_reply_to_user_id=parent.author_id if parent else None,
            referenced_tweets=[{"type": "replied_to", "id": parent.id}] if parent else [],
        )
        self.tweets[tweet.id] = tweet
        return tweet

    def delete_tweet(self, tweet: Tweet | str) -> None:
        """Delete a tweet: search no longer finds it and replies to it are refused."""
        self.tweets[tweet.id if isinstance(tweet, Tweet) else tweet].deleted = True

    def replies_to(self, tweet: Tweet | str) -> list[Tweet]:
        """Return the posted replies to `tweet`, oldest first."""
        tweet_id = tweet.id if isinstance(tweet, Tweet) else tweet
        return [t for t in self.posted if t.in_reply_to_tweet_id == tweet_id]

    def rate_limit(self, method: str = SEARCH, auth: str = "app") -> tuple[int, int, int]:
        """Return (limit, remaining, reset epoch seconds) of `method` for "app" or "user"."""
        limit, remaining, reset = self._limits[(method, auth)].state(auth, self.clock())
        return limit, remaining, math.ceil(self._epoch(reset))

    # ------------------------------------------------------------------ server plumbing

    def add_routes(self, app: web.Application) -> None:
        """Register the search and posting endpoints, and log anything else as a 404."""
        app.router.add_get("/2/tweets/search/recent", self._handle_search)
        app.router.add_post("/2/tweets", self._handle_create)
        app.router.add_post("/2/media/upload", self._handle_media_upload)
        app.router.add_route("*", "/{tail:.*}", self._handle_unknown)

    def _auth(self, request: web.Request) -> str | None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return None
        if token.strip() == self.bearer_token:
            return "app"
        if token.strip() == self.user_token:
            return "user"
        return None

    def _unauthorized(self, method: str, logged: dict[str, Any]) -> web.Response:
        reply = Reply(401, problem(401, "Unauthorized", "Unauthorized"))
        self.log(method, logged, reply)
        return to_response(reply)

    async def _handle_unknown(self, request: web.Request) -> web.Response:
        reply = Reply(404, problem(404, "Not Found", "Not Found"))
        self.log(f"{request.method} {request.path}", dict(request.query), reply)
        return to_response(reply)

    async def _handle_search(self, request: web.Request) -> web.StreamResponse:
        params: dict[str, Any] = dict(request.query)
        auth = self._auth(request)
        logged = {**params, "_auth": auth}
        if auth is None:
            return self._unauthorized(SEARCH, logged)

        async def apply() -> Reply:
            try:
                reply = Reply(200, self._search(params))
            except XApiError as error:
                reply = Reply(error.status, error.body)
            reply.headers.update(self._rate_headers(SEARCH, auth))
            return reply

        return await self.run_call(request, SEARCH, logged, apply)

    # Media: POST /2/media/upload (multipart: the image as "media", "media_category"
    # tweet_image) answers {"data": {"id", "media_key", "size", "expires_after_secs"}};
    # POST /2/tweets attaches it with {"media": {"media_ids": [id]}}. Images up to 5 MB.
    # A user token needs the media.write scope. Shapes:
    # https://docs.x.com/x-api/media (limits, the steps) and
    # https://docs.x.com/x-api/media/finalize-media-upload (the data object).
    async def _handle_media_upload(self, request: web.Request) -> web.StreamResponse:
        auth = self._auth(request)
        if auth is None:
            return self._unauthorized("media_upload", {})
        if auth == "app" or not self.media_write:
            reply = Reply(403, problem(403, "Forbidden", "Missing the media.write scope"))
            self.log("media_upload", {"_auth": auth}, reply)
            return to_response(reply)
        _, files = await read_fields(request)
        upload = files.get("media")
        if upload is None or not upload.data:
            reply = Reply(400, problem(400, "Invalid Request", "media is required"))
        elif len(upload.data) > 5 * 1024 * 1024:
            reply = Reply(400, problem(400, "Invalid Request", "media: larger than 5 MB"))
        else:
            media_id = str(next(self._media_ids))
            self.media[media_id] = upload.data
            reply = Reply(200, {"data": {"id": media_id, "media_key": f"3_{media_id}",
                                         "size": len(upload.data),
                                         "expires_after_secs": 86400}})
        self.log("media_upload", {"_auth": auth}, reply)
        return to_response(reply)

    async def _handle_create(self, request: web.Request) -> web.StreamResponse:
        auth = self._auth(request)
        raw = await request.read()
        try:
            body = json.loads(raw) if raw.strip() else {}
        except ValueError:
            body = None
        logged: dict[str, Any] = dict(body) if isinstance(body, dict) else {"_raw": raw.decode()}
        logged["_auth"] = auth
        if auth is None:
            return self._unauthorized(CREATE, logged)
        if auth == "app":
            reply = Reply(
                403,
                problem(403, "Unsupported Authentication", APP_ONLY_FORBIDDEN, UNSUPPORTED_AUTH),
            )
            self.log(CREATE, logged, reply)
            return to_response(reply)

        async def apply() -> Reply:
            try:
                tweet = self._create(body)
            except XApiError as error:
                reply = Reply(error.status, error.body)
            else:
                data = {
                    "edit_history_tweet_ids": tweet.edit_history_tweet_ids,
                    "id": tweet.id,
                    "text": tweet.text,
                }
                reply = Reply(201, {"data": data}, applied=True)
            reply.headers.update(self._rate_headers(CREATE, "user"))
            return reply

        return await self.run_call(request, CREATE, logged, apply)

    # ------------------------------------------------------------------ rate limits and faults

    def _rate_headers(
        self, method: str, auth: str, *, remaining: int | None = None
    ) -> dict[str, str]:
        window = self._limits[(method, auth)]
        limit, left, reset = window.state(auth, self.clock())
        return {
            "x-rate-limit-limit": str(limit),
            "x-rate-limit-remaining": str(left if remaining is None else remaining),
            "x-rate-limit-reset": str(math.ceil(self._epoch(reset))),
        }

    def limits_for(self, method: str, params: dict[str, Any]) -> list[Any]:
        """Count every request per endpoint and token in X's 15-minute windows."""
        auth = params.get("_auth") or "app"
        key = (method, auth)
        if key not in self._limits:
            return []
        # ratelimited_reply is called right after, without a pause: it reads this key.
        self._limit_key = key
        return [(self._limits[key], auth)]

    def ratelimited_reply(self, method: str, retry_after: int) -> Reply:
        """Answer 429 with X's body and its rate-limit headers (nothing left)."""
        _, auth = self._limit_key
        body = problem(429, "Too Many Requests", "Too Many Requests")
        return Reply(429, body, headers=self._rate_headers(method, auth, remaining=0))

    def fault_reply(self, method: str, fault: Fault) -> Reply:
        """Answer an injected fault as X would (429 resets after `retry_after` seconds)."""
        if fault.status == 429:
            limit = self._limits.get((method, "app")) or self._limits[(method, "user")]
            reset = math.ceil(self._epoch(self.clock()) + fault.retry_after)
            headers = {
                "x-rate-limit-limit": str(limit.limit),
                "x-rate-limit-remaining": "0",
                "x-rate-limit-reset": str(reset),
            }
            body = problem(429, "Too Many Requests", fault.error or "Too Many Requests")
            return Reply(429, body, headers=headers)
        try:
            phrase = HTTPStatus(fault.status).phrase
        except ValueError:
            phrase = "Error"
        return Reply(fault.status, problem(fault.status, phrase, fault.error or phrase))

    # ------------------------------------------------------------------ search

    def _field_list(self, params: dict[str, Any], name: str, allowed: tuple[str, ...]) -> set[str]:
        raw = str(params.get(name) or "")
        values = [v for v in raw.split(",") if v]
        for value in values:
            if value not in allowed:
                raise invalid_request(
                    name,
                    [value],
                    f"The `{name}` query parameter value [{value}] is not one of"
                    f" [{','.join(allowed)}]",
                )
        return set(values)

    def _id_param(self, params: dict[str, Any], name: str) -> int | None:
        value = params.get(name)
        if value is None:
            return None
        if not re.fullmatch(r"[0-9]{1,19}", str(value)):
            raise invalid_request(
                name, [str(value)], f"The `{name}` query parameter value [{value}] is not valid"
            )
        return int(value)

    def _search(self, params: dict[str, Any]) -> dict[str, Any]:
        for name, value in params.items():
            if name not in SEARCH_PARAMS:
                raise invalid_request(
                    name,
                    [str(value)],
                    f"The query parameter [{name}] is not one of [{','.join(SEARCH_PARAMS)}]",
                )
        query = str(params.get("query") or "")
        if not query.strip():
            raise invalid_request("query", [], "The `query` query parameter can not be empty")
        raw_max = str(params.get("max_results", "10"))
        max_results = int(raw_max) if re.fullmatch(r"-?[0-9]{1,6}", raw_max) else -1
        if not 10 <= max_results <= 100:
            raise invalid_request(
                "max_results",
                [raw_max],
                f"The `max_results` query parameter value [{raw_max}] is not between 10 and 100",
            )
        tweet_fields = self._field_list(params, "tweet.fields", TWEET_FIELDS)
        user_fields = self._field_list(params, "user.fields", USER_FIELDS)
        expansions = self._field_list(params, "expansions", EXPANSIONS)
        since_id = self._id_param(params, "since_id")
        until_id = self._id_param(params, "until_id")
        now = self.now()
        floor = now - RECENT
        # X states the limit to the minute, and accepts parameters back to that minute.
        limit = floor.replace(second=0, microsecond=0)
        if since_id is not None and snowflake_time(since_id) < limit:
            raise invalid_request(
                "since_id",
                [str(since_id)],
                f"'since_id' must be a tweet id created after {limit:%Y-%m-%dT%H:%MZ}. Please use"
                f" a 'since_id' that is larger than {snowflake_at(limit)}",
            )
        start = parse_time(params["start_time"], "start_time") if "start_time" in params else None
        end = parse_time(params["end_time"], "end_time") if "end_time" in params else None
        if start is not None and start < limit:
            raise invalid_request(
                "start_time",
                [params["start_time"]],
                f"Invalid 'start_time':'{params['start_time']}'. 'start_time' must be on or after"
                f" {limit:%Y-%m-%dT%H:%MZ}",
            )
        if since_id is not None and (start is not None or end is not None):
            raise invalid_request(
                "since_id",
                [str(since_id)],
                "Invalid use of since_id with start_time or end_time",
            )
        try:
            matcher = QueryParser(query, self).parse()
        except QuerySyntaxError as error:
            raise invalid_request("query", [query], str(error)) from None
        token = params.get("next_token") or params.get("pagination_token")
        boundary: int | None = None
        if token is not None:
            boundary = self._page_tokens.get(str(token))
            if boundary is None:
                name = "next_token" if "next_token" in params else "pagination_token"
                raise invalid_request(
                    name, [str(token)], f"The `{name}` query parameter value [{token}] is not valid"
                )

        found = [
            tweet
            for tweet in sorted(self.tweets.values(), key=lambda t: int(t.id), reverse=True)
            if not tweet.deleted
            and floor <= tweet.created_at <= now
            and (since_id is None or int(tweet.id) > since_id)
            and (until_id is None or int(tweet.id) < until_id)
            and (boundary is None or int(tweet.id) < boundary)
            and (start is None or tweet.created_at >= start)
            and (end is None or tweet.created_at < end)
            and matcher(tweet)
        ]
        page = found[:max_results]
        if not page:
            return {"meta": {"result_count": 0}}
        body: dict[str, Any] = {"data": [t.render(tweet_fields) for t in page]}
        includes, errors = self._includes(page, expansions, tweet_fields, user_fields)
        if includes:
            body["includes"] = includes
        if errors:
            body["errors"] = errors
        meta: dict[str, Any] = {
            "newest_id": page[0].id,
            "oldest_id": page[-1].id,
            "result_count": len(page),
        }
        if len(found) > len(page):
            meta["next_token"] = self._page_token(int(page[-1].id))
        body["meta"] = meta
        return body

    def _page_token(self, boundary: int) -> str:
        # Opaque, but the same for the same place in the results, as a cursor should be.
        digest = hashlib.sha256(f"next-token:{boundary}".encode()).digest()
        value, token = int.from_bytes(digest, "big"), ""
        while len(token) < 45:
            value, digit = divmod(value, 36)
            token += "0123456789abcdefghijklmnopqrstuvwxyz"[digit]
        self._page_tokens[token] = boundary
        return token

    def _includes(
        self,
        page: list[Tweet],
        expansions: set[str],
        tweet_fields: set[str],
        user_fields: set[str],
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        user_ids: list[str] = []
        tweets: list[Tweet] = []
        errors: list[dict[str, Any]] = []

        def want_user(user_id: str | None) -> None:
            if user_id and user_id not in user_ids and user_id in self.users:
                user_ids.append(user_id)

        for tweet in page:
            if "author_id" in expansions:
                want_user(tweet.author_id)
            if "in_reply_to_user_id" in expansions:
                want_user(tweet.in_reply_to_user_id)
            if "entities.mentions.username" in expansions:
                for handle in MENTION.findall(tweet.text):
                    found = self.find_user(handle)
                    want_user(found.id if found else None)
            if "referenced_tweets.id" in expansions:
                for ref in tweet.referenced_tweets:
                    target = self.tweets.get(ref["id"])
                    if target is None or target.deleted:
                        errors.append(
                            {
                                "value": ref["id"],
                                "detail": "Could not find tweet with referenced_tweets.id:"
                                f" [{ref['id']}].",
                                "title": "Not Found Error",
                                "resource_type": "tweet",
                                "parameter": "referenced_tweets.id",
                                "resource_id": ref["id"],
                                "type": RESOURCE_NOT_FOUND,
                            }
                        )
                    elif target not in tweets:
                        tweets.append(target)
                        if "referenced_tweets.id.author_id" in expansions:
                            want_user(target.author_id)
        includes: dict[str, Any] = {}
        if user_ids:
            includes["users"] = [self.users[i].render(user_fields) for i in user_ids]
        if tweets:
            includes["tweets"] = [t.render(tweet_fields) for t in tweets]
        return includes, errors

    # ------------------------------------------------------------------ posting

    def _create(self, body: Any) -> Tweet:
        if not isinstance(body, dict):
            raise invalid_body("Request body is not valid JSON")
        text = body.get("text")
        if not isinstance(text, str) or not text.strip():
            raise invalid_body("$.text: text or media is required")
        reply = body.get("reply")
        parent: Tweet | None = None
        if reply is not None:
            target = reply.get("in_reply_to_tweet_id") if isinstance(reply, dict) else None
            if not isinstance(target, str) or not target.isdigit():
                raise invalid_body("$.reply.in_reply_to_tweet_id: a numeric string is required")
            parent = self.tweets.get(target)
            if parent is None or parent.deleted:
                raise XApiError(403, problem(403, "Forbidden", REPLY_TARGET_GONE))
        media = body.get("media")
        ids = media.get("media_ids") if isinstance(media, dict) else None
        if media is not None and (not isinstance(ids, list)
                                  or not all(isinstance(i, str) and i in self.media for i in ids)):
            raise invalid_body("$.media.media_ids: unknown media id")
        own = (t for t in self.tweets.values() if t.author_id == self.user.id and not t.deleted)
        if any(t.text == text for t in own):
            raise XApiError(403, problem(403, "Forbidden", DUPLICATE))
        tweet = self.add_tweet(text, author=self.user, in_reply_to=parent)
        self.posted.append(tweet)
        if ids:
            self.tweet_media[tweet.id] = list(ids)
        return tweet
