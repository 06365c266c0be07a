"""Access tokens that expire: renewed before they run out, and once when the API refuses one.

TikTok's business tokens last a day, Google's an hour, Threads' sixty days; each comes
with a way to get a new one (a refresh token, or the token itself). A collector asks
`AccessToken.call` to run an API call with the current token: if the API says the token
has expired, it is renewed once (one renewal at a time, however many polls and replies
ask together) and the call is tried again. A renewal that fails ends the poll with a
reason naming what to do, so `/sources` shows the source failing until someone acts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from socialcare.bot.ports import Clock
from socialcare.bot.sources import SourceUnavailable

T = TypeVar("T")
# Renew this long before the token's own end, so that no call starts with a dying token.
EARLY = timedelta(minutes=5)


@dataclass(frozen=True)
class Grant:
    """An access token, when it expires (if known), and the refresh token to renew it."""

    access_token: str
    expires_at: datetime | None = None
    refresh_token: str | None = None


class TokenExpired(SourceUnavailable):
    """The API refused the access token as expired or revoked."""


Renew = Callable[[Grant | None], Awaitable[Grant]]


class AccessToken:
    """One source's access token, renewed through `renew` when it runs out."""

    def __init__(self, *, what: str, clock: Clock, token: str | None = None,
                 refresh_token: str | None = None, renew: Renew | None = None) -> None:
        self._what = what
        self._clock = clock
        self._renew = renew
        self._grant = Grant(token or "", None, refresh_token) if token or refresh_token \
            else None
        self._lock = asyncio.Lock()
        self.renewals = 0

    @property
    def refresh_token(self) -> str | None:
        """The refresh token now in use (some platforms hand out a new one each time)."""
        return self._grant.refresh_token if self._grant else None

    async def current(self) -> str:
        """Return a token that is not known to have expired, renewing it if needed."""
        grant = self._grant
        if grant is None or not grant.access_token or self._ending(grant):
            return await self.renewed(grant.access_token if grant else None)
        return grant.access_token

    async def renewed(self, stale: str | None) -> str:
        """Renew the token `stale` (unless another caller already did); return the new one."""
        async with self._lock:
            grant = self._grant
            if grant is not None and grant.access_token and grant.access_token != stale \
                    and not self._ending(grant):
                return grant.access_token
            if self._renew is None:
                raise TokenExpired(f"{self._what}: the access token has expired and there is "
                                   "nothing to renew it with; set a new one")
            self._grant = await self._renew(grant)
            self.renewals += 1
            return self._grant.access_token

    async def call(self, attempt: Callable[[str], Awaitable[T]]) -> T:
        """Run `attempt` with the token; renew once and run it again if it was refused."""
        token = await self.current()
        try:
            return await attempt(token)
        except TokenExpired:
            if self._renew is None:
                raise
        return await attempt(await self.renewed(token))

    def _ending(self, grant: Grant) -> bool:
        return grant.expires_at is not None and grant.expires_at - EARLY <= self._clock.now()


def expires(clock: Clock, seconds: object) -> datetime | None:
    """When a token given `seconds` to live runs out (None if the answer did not say)."""
    if isinstance(seconds, int | float) and not isinstance(seconds, bool) and seconds > 0:
        return clock.now() + timedelta(seconds=float(seconds))
    return None
