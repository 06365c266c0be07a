"""A fake Google Business Profile API v4 (reviews) and Google's OAuth token endpoint.

Usage::

    async with FakeGoogleReviews(now=clock.now) as gbp:
        review = gbp.add_review(LOCATION, "Rude staff at the Abay street shop", stars=2, at=at)
        # GET {gbp.url}/accounts/…/locations/…/reviews  (Authorization: Bearer …)

Shapes and behaviour from the v4 reference:
https://developers.google.com/my-business/reference/rest/v4/accounts.locations.reviews/list
(`pageSize` ≤ 50, `pageToken`, `orderBy` one of ``rating``, ``rating desc``,
``updateTime desc`` — the default; answers ``reviews``, ``averageRating``,
``totalReviewCount``, ``nextPageToken`` only when more remain),
https://developers.google.com/my-business/reference/rest/v4/accounts.locations.reviews/updateReply
(``PUT …/reviews/*/reply`` with a ReviewReply ``{"comment"}``; creates or replaces the
owner's reply; answers the ReviewReply with its ``updateTime``) and the Review resource
(``name``, ``reviewId``, ``reviewer {profilePhotoUrl, displayName, isAnonymous}``,
``starRating`` ``ONE``…``FIVE``, ``comment``, ``createTime``, ``updateTime``,
``reviewReply``). Scope ``https://www.googleapis.com/auth/business.manage``.

Tokens: ``POST /token`` (Google's OAuth 2.0 endpoint, form ``grant_type=refresh_token``,
``client_id``, ``client_secret``, ``refresh_token``) answers ``access_token``,
``expires_in`` (3,599 s), ``scope``, ``token_type``; a wrong client is 401
``invalid_client``, a revoked refresh token 400 ``invalid_grant`` ("Token has been
expired or revoked."). Google's refresh tokens do not rotate. Access tokens expire after
`token_seconds` by `now`; an expired or unknown one gets 401 ``UNAUTHENTICATED`` in
Google's error envelope ``{"error": {"code", "message", "status"}}``.

Rate limit: `requests_per_minute` calls a minute per project (300 by default, the
Business Profile APIs' usual per-project quota — not re-read in the stored docs: check
the project's quota page), then 429 ``RESOURCE_EXHAUSTED`` without a Retry-After.
``fail_next(method, status)`` plays any status in the same envelope.

Knowingly simplified: one account; no media, no ``batchGetReviews``, no review
deletion; a page token is the offset, opaque to clients only by convention.
"""

from __future__ import annotations

import base64
import itertools
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Any

from aiohttp import web

from tests.fakes.server import Clock, FakeServer, Fault, Limit, Reply, SlidingWindow

ACCOUNT = "accounts/1042200000001"
LOCATION = f"{ACCOUNT}/locations/5500000000000000001"
OTHER_LOCATION = f"{ACCOUNT}/locations/5500000000000000002"
CLIENT_ID = "10422-socialcare.apps.googleusercontent.com"
CLIENT_SECRET = "GOCSPX-fake-secret-for-tests"
STARS = {1: "ONE", 2: "TWO", 3: "THREE", 4: "FOUR", 5: "FIVE"}
LIST, UPDATE_REPLY, TOKEN = "reviews.list", "reviews.updateReply", "oauth2.token"
STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
          404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}


class GoogleError(Exception):
    """An error in Google's envelope."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def body(self) -> dict[str, Any]:
        """``{"error": {"code", "message", "status"}}``."""
        return {"error": {"code": self.code, "message": self.message,
                          "status": STATUS.get(self.code, "UNKNOWN")}}


@dataclass
class GoogleReview:
    """A customer's review of a location, with the owner's reply if any."""

    location: str
    review_id: str
    reviewer: str
    stars: int
    comment: str
    created: datetime
    updated: datetime
    reply: str | None = None
    replied: datetime | None = None

    @property
    def name(self) -> str:
        """The review's resource name."""
        return f"{self.location}/reviews/{self.review_id}"

    def render(self) -> dict[str, Any]:
        """The Review resource."""
        body: dict[str, Any] = {
            "name": self.name, "reviewId": self.review_id,
            "reviewer": {"profilePhotoUrl": "https://lh3.googleusercontent.com/a/fake",
                         "displayName": self.reviewer, "isAnonymous": False},
            "starRating": STARS[self.stars], "createTime": _rfc3339(self.created),
            "updateTime": _rfc3339(self.updated)}
        if self.comment:
            body["comment"] = self.comment
        if self.reply is not None and self.replied is not None:
            body["reviewReply"] = {"comment": self.reply, "updateTime": _rfc3339(self.replied)}
        return body


class FakeGoogleReviews(FakeServer):
    """Reviews of an account's locations, the owner's replies, OAuth tokens, the quota."""

    def __init__(self, *, now: Callable[[], datetime] | None = None, clock: Clock | None = None,
                 rate_limits: bool = True, requests_per_minute: int = 300,
                 token_seconds: int = 3599) -> None:
        super().__init__(clock=clock, rate_limits=rate_limits)
        self.now = now or (lambda: datetime.now(UTC))
        self.token_seconds = token_seconds
        self.reviews: list[GoogleReview] = []
        self.refresh_token = "1//0fake-refresh-token-" + secrets.token_hex(8)
        self._access: dict[str, datetime] = {}
        self._window = SlidingWindow(requests_per_minute, 60.0)
        self._ids = itertools.count(1)

    @property
    def url(self) -> str:
        """The API's base URL (`api_url` of a source)."""
        return self.root_url + "/v4"

    @property
    def token_url(self) -> str:
        """The OAuth token endpoint (`oauth_url` of a source)."""
        return self.root_url + "/token"

    def add_review(self, location: str, comment: str, *, stars: int, at: datetime,
                   reviewer: str = "Dana Serik") -> GoogleReview:
        """A customer reviews a location."""
        raw = f"review-{next(self._ids)}-{secrets.token_hex(4)}".encode()
        review_id = "AbFvOq" + base64.urlsafe_b64encode(raw).decode().rstrip("=")
        review = GoogleReview(location, review_id, reviewer, stars, comment, at, at)
        self.reviews.append(review)
        return review

    def edit_review(self, review: GoogleReview, comment: str, *, stars: int,
                    at: datetime) -> None:
        """The customer changes the review (its updateTime moves)."""
        review.comment, review.stars, review.updated = comment, stars, at

    def expire_tokens(self) -> None:
        """Make every access token issued so far expired."""
        for token in self._access:
            self._access[token] = self.now() - timedelta(seconds=1)

    # ------------------------------------------------------------------ HTTP

    def add_routes(self, app: web.Application) -> None:
        """The v4 review endpoints and the token endpoint."""
        app.router.add_get("/v4/accounts/{account}/locations/{location}/reviews", self._list)
        app.router.add_put(
            "/v4/accounts/{account}/locations/{location}/reviews/{review}/reply", self._reply)
        app.router.add_post("/token", self._token)

    def _authorized(self, request: web.Request) -> None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        until = self._access.get(token.strip()) if scheme.lower() == "bearer" else None
        if until is None or until <= self.now():
            raise GoogleError(401, "Request had invalid authentication credentials. Expected "
                                   "OAuth 2 access token, login cookie or other valid "
                                   "authentication credential.")

    async def _list(self, request: web.Request) -> web.StreamResponse:
        location = f"accounts/{request.match_info['account']}/locations/" \
                   f"{request.match_info['location']}"
        params: dict[str, Any] = {**request.query, "_location": location,
                                  "_auth": request.headers.get("Authorization")}

        async def apply() -> Reply:
            try:
                self._authorized(request)
                return Reply(200, self._page(location, request.query))
            except GoogleError as error:
                return Reply(error.code, error.body())

        return await self.run_call(request, LIST, params, apply)

    def _page(self, location: str, query: Any) -> dict[str, Any]:
        if location not in {LOCATION, OTHER_LOCATION}:
            raise GoogleError(404, "Requested entity was not found.")
        order = query.get("orderBy", "updateTime desc")
        if order not in ("rating", "rating desc", "updateTime desc"):
            raise GoogleError(400, f"Invalid value for orderBy: {order}")
        try:
            size = int(query.get("pageSize", 50))
            start = int(query.get("pageToken") or 0)
        except ValueError:
            raise GoogleError(400, "Invalid pageSize or pageToken") from None
        if not 1 <= size <= 50:
            raise GoogleError(400, "pageSize must be between 1 and 50")
        here = [r for r in self.reviews if r.location == location]
        key = {"rating": lambda r: (r.stars, r.updated), "rating desc":
               lambda r: (-r.stars, r.updated)}.get(order, lambda r: r.updated)
        ordered = sorted(here, key=key, reverse=order == "updateTime desc")
        page = ordered[start:start + size]
        body: dict[str, Any] = {"reviews": [r.render() for r in page],
                                "totalReviewCount": len(here)}
        if here:
            body["averageRating"] = round(sum(r.stars for r in here) / len(here), 1)
        if start + size < len(ordered):
            body["nextPageToken"] = str(start + size)
        return body

    async def _reply(self, request: web.Request) -> web.StreamResponse:
        name = (f"accounts/{request.match_info['account']}/locations/"
                f"{request.match_info['location']}/reviews/{request.match_info['review']}")
        try:
            body = await request.json()
        except ValueError:
            body = None
        params: dict[str, Any] = {"_name": name, "_auth": request.headers.get("Authorization"),
                                  "body": body}

        async def apply() -> Reply:
            try:
                self._authorized(request)
                review = next((r for r in self.reviews if r.name == name), None)
                if review is None:
                    raise GoogleError(404, "Requested entity was not found.")
                comment = body.get("comment") if isinstance(body, dict) else None
                if not isinstance(comment, str) or not comment.strip() or len(comment) > 4096:
                    raise GoogleError(400, "Invalid value at 'review_reply.comment'")
            except GoogleError as error:
                return Reply(error.code, error.body())
            review.reply, review.replied = comment, self.now()
            return Reply(200, {"comment": comment, "updateTime": _rfc3339(self.now())},
                         applied=True)

        return await self.run_call(request, UPDATE_REPLY, params, apply)

    async def _token(self, request: web.Request) -> web.StreamResponse:
        form = dict(await request.post())
        params: dict[str, Any] = {k: str(v) for k, v in form.items()}

        async def apply() -> Reply:
            if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
                return Reply(401, {"error": "invalid_client", "error_description":
                                   "The OAuth client was not found."})
            if form.get("grant_type") != "refresh_token":
                return Reply(400, {"error": "unsupported_grant_type",
                                   "error_description": "Invalid grant_type: "
                                   f"{form.get('grant_type')}"})
            if form.get("refresh_token") != self.refresh_token:
                return Reply(400, {"error": "invalid_grant",
                                   "error_description": "Token has been expired or revoked."})
            token = "ya29.a0Fake" + secrets.token_urlsafe(24)
            self._access[token] = self.now() + timedelta(seconds=self.token_seconds)
            return Reply(200, {"access_token": token, "expires_in": self.token_seconds,
                               "scope": "https://www.googleapis.com/auth/business.manage",
                               "token_type": "Bearer"}, applied=True)

        return await self.run_call(request, TOKEN, params, apply)

    # ------------------------------------------------------------------ limits and faults

    def limits_for(self, method: str, params: dict[str, Any]) -> list[Limit]:
        """The project's requests a minute, over the API's methods (not the token endpoint)."""
        return [(self._window, "project")] if method in (LIST, UPDATE_REPLY) else []

    def ratelimited_reply(self, method: str, retry_after: int) -> Reply:
        """429 RESOURCE_EXHAUSTED, as Google answers a spent quota."""
        return Reply(429, GoogleError(429, "Quota exceeded for quota metric 'Requests' and "
                                           "limit 'Requests per minute' of service "
                                           "'mybusiness.googleapis.com'.").body())

    def fault_reply(self, method: str, fault: Fault) -> Reply:
        """Any status, in Google's envelope."""
        if fault.status == 429:
            return self.ratelimited_reply(method, fault.retry_after)
        try:
            phrase = HTTPStatus(fault.status).phrase
        except ValueError:
            phrase = "Error"
        return Reply(fault.status, GoogleError(fault.status, fault.error or phrase).body())


def _rfc3339(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
