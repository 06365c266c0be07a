"""Google Business Profile reviews of the brand's shops, answered as the owner's reply.

    [[sources]]
    name = "shop-reviews"
    kind = "google_reviews"
    platform = "google"
    tier = "extra"                          # the tier reviews are answered in
    brand = "Kcell"                         # a shop's reviews rarely name the brand
    poll_seconds = 600
    [sources.options]
    account = "1234567890"
    locations = ["9876543210", "9876543211"]
    client_id = "1234-abc.apps.googleusercontent.com"
    client_secret_env = "GOOGLE_CLIENT_SECRET"
    refresh_token_env = "GOOGLE_REFRESH_TOKEN"

Each poll lists every location's reviews, most recently updated first
(`accounts.locations.reviews.list`, `orderBy=updateTime desc`), down to the newest
update seen there. A review seen for the first time becomes a case (its id: the review's
resource name); a review its author changed since comes again as
`{name}@{updateTime}` in the review's thread, so it joins its case as the customer
writing again — and reopens it if it was resolved. The text leads with the stars
("★★☆☆☆ 2/5"); one or two stars make the case urgent. A review the owner had already
answered elsewhere (its reply newer than the review) is left alone.

A reply is `accounts.locations.reviews.updateReply` (PUT `…/reviews/*/reply`): the
owner's public reply (a second one replaces the first). The access token lasts an hour
and is renewed with the refresh token at Google's token endpoint, also when the API
answers 401; the renewed one is kept in the database, so every process uses one renewal
an hour. A 429 waits its Retry-After (a minute if none is given).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from socialcare.adapters.collectors.http import ApiRefused, request_json
from socialcare.adapters.collectors.tokens import (
    AccessToken,
    Grant,
    Keeping,
    TokenExpired,
    expires,
)
from socialcare.bot.model import Author, Mention, RawMention
from socialcare.bot.ports import Clock, Published, PublishFailed
from socialcare.bot.sources import Polled, SourceUnavailable
from socialcare.bot.team import Source

STARS = {"ONE": 1, "TWO": 2, "THREE": 3, "FOUR": 4, "FIVE": 5}
PAGE = 50
MAX_PAGES = 10
KNOWN = 2000  # review versions remembered per location
RATE_WAIT = 60.0


class Options(BaseModel):
    """A Google reviews source's options."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    api_url: HttpUrl = HttpUrl("https://mybusiness.googleapis.com/v4")
    oauth_url: HttpUrl = HttpUrl("https://oauth2.googleapis.com/token")
    account: str = Field(min_length=1)
    locations: tuple[str, ...] = Field(min_length=1)
    client_id: str = Field(min_length=1)
    client_secret_env: str = Field(min_length=1)
    refresh_token_env: str = Field(min_length=1)
    backfill_hours: int = Field(default=24, ge=0)


class ReviewsCollector:
    """Polls the reviews of one account's locations and publishes the owner's replies."""

    can_publish = True

    def __init__(self, session: aiohttp.ClientSession, options: Options, *, client_secret: str,
                 refresh_token: str, clock: Clock, keeping: Keeping | None = None) -> None:
        self._session = session
        self._options = options
        self._clock = clock
        self._client_secret = client_secret
        self._base = str(options.api_url).rstrip("/")
        account = options.account.removeprefix("accounts/")
        self._locations = [f"accounts/{account}/locations/{loc.rsplit('/', 1)[-1]}"
                           for loc in options.locations]
        self.token = AccessToken(what="Google Business Profile", clock=clock,
                                 refresh_token=refresh_token, renew=self._renew,
                                 keeping=keeping)

    async def poll(self, source: Source, cursor: Mapping[str, Any]) -> Polled:
        """Read every location's new and changed reviews."""
        now = self._clock.now()
        places = {k: dict(v) for k, v in (cursor.get("locations") or {}).items()}
        found: list[RawMention] = []
        # A poll a quota stopped goes on, next time, with the location it stopped at.
        at = next((i for i, loc in enumerate(self._locations) if loc == cursor.get("resume")), 0)
        location = None
        try:
            for location in self._locations[at:] + self._locations[:at]:
                found += await self._reviews(source, location, places, now)
        except SourceUnavailable as failure:
            if not found:
                raise
            return Polled(found, {"locations": places, "resume": location},
                          retry_after=failure.retry_after, note=str(failure))
        return Polled(found, {"locations": places})

    async def publish(self, source: Source, to: Mention, text: str) -> Published:
        """Put the owner's reply on the review (replacing an earlier one)."""
        review = to.thread_key.partition("@")[0]
        if "/reviews/" not in review or review.rsplit("/reviews/", 1)[0] not in self._locations:
            raise PublishFailed(f"not a review of this source's locations: {review}")
        try:
            await self._api("PUT", f"/{review}/reply", body={"comment": text},
                            what="Google reviews.updateReply")
        except SourceUnavailable as failure:
            raise PublishFailed(str(failure)) from None
        return Published(url=to.url)

    async def _reviews(self, source: Source, location: str, places: dict[str, dict[str, Any]],
                       now: datetime) -> list[RawMention]:
        place = places.get(location) or {}
        known: dict[str, str] = dict(place.get("known") or {})
        saved = place.get("newest")
        since = datetime.fromisoformat(saved) if saved else \
            now - timedelta(hours=self._options.backfill_hours)
        newest = since
        found: list[RawMention] = []
        params: dict[str, str | int] = {"pageSize": PAGE, "orderBy": "updateTime desc"}
        for _ in range(MAX_PAGES):
            page = await self._api("GET", f"/{location}/reviews", params=params,
                                   what="Google reviews.list")
            older = False
            for review in page.get("reviews") or []:
                if not isinstance(review, dict) or not review.get("name"):
                    continue
                updated = _time(review.get("updateTime"))
                if updated is None:
                    continue
                if updated < since:
                    older = True
                    break
                name, stamp = str(review["name"]), str(review["updateTime"])
                if known.get(name) == stamp:
                    continue
                again = name in known
                known.pop(name, None)
                known[name] = stamp  # moved last: the newest versions are kept longest
                newest = max(newest, updated)
                if not _answered(review, updated):
                    found.append(_mention(source, review, updated, again=again))
            token = page.get("nextPageToken")
            if older or not token:
                break
            params["pageToken"] = str(token)
        places[location] = {"newest": newest.isoformat(),
                            "known": dict(list(known.items())[-KNOWN:])}
        return found

    async def _api(self, method: str, path: str, *, what: str,
                   params: Mapping[str, str | int] | None = None,
                   body: Mapping[str, Any] | None = None) -> dict[str, Any]:
        async def attempt(token: str) -> dict[str, Any]:
            try:
                answer = await request_json(
                    self._session, method, self._base + path, params=params, json_body=body,
                    headers={"Authorization": f"Bearer {token}"}, what=what, clock=self._clock)
            except ApiRefused as refused:
                if refused.status == 401:
                    raise TokenExpired(str(refused)) from None
                if refused.status == 429 and refused.retry_after is None:
                    raise SourceUnavailable(str(refused), retry_after=RATE_WAIT) from None
                raise
            return answer if isinstance(answer, dict) else {}

        return await self.token.call(attempt)

    async def _renew(self, grant: Grant | None) -> Grant:
        """Get a new access token with the refresh token (Google's keep working)."""
        refresh = grant.refresh_token if grant else None
        try:
            answer = await request_json(
                self._session, "POST", str(self._options.oauth_url),
                data={"client_id": self._options.client_id,
                      "client_secret": self._client_secret, "refresh_token": refresh or "",
                      "grant_type": "refresh_token"},
                what="Google token refresh", clock=self._clock)
        except SourceUnavailable as failure:
            raise TokenExpired(f"{failure}; sign in with the profile's Google account again "
                               "and set a new refresh token") from None
        if not isinstance(answer, dict) or not answer.get("access_token"):
            raise TokenExpired("Google token refresh: no access_token in the answer")
        return Grant(str(answer["access_token"]), expires(self._clock, answer.get("expires_in")),
                     refresh)


def stars(rating: int) -> str:
    """Show a rating as five stars, e.g. ★★☆☆☆ 2/5."""
    return "★" * rating + "☆" * (5 - rating) + f" {rating}/5"


def _mention(source: Source, review: Mapping[str, Any], updated: datetime, *,
             again: bool) -> RawMention:
    name = str(review["name"])
    rating = STARS.get(str(review.get("starRating") or ""))
    comment = str(review.get("comment") or "").strip()
    head = stars(rating) if rating else ""
    reviewer = review.get("reviewer") or {}
    return RawMention(
        source=source.name,
        external_id=f"{name}@{review['updateTime']}" if again else name,
        text=f"{head}\n\n{comment}".strip(), published_at=updated, platform="google",
        author=Author(name=reviewer.get("displayName") or None),
        thread_id=name if again else None, rating=rating)


def _answered(review: Mapping[str, Any], updated: datetime) -> bool:
    """Tell whether the owner replied after the review's last change (outside socialcare)."""
    replied = _time((review.get("reviewReply") or {}).get("updateTime"))
    return replied is not None and replied >= updated


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
