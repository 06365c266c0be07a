"""Access tokens that expire: renewed before they run out, and once when the API refuses one.

TikTok's business tokens last a day, Google's an hour, Threads' sixty days; each comes
with a way to get a new one (a refresh token, or the token itself). A collector asks
`AccessToken.call` to run an API call with the current token: if the API says the token
has expired, it is renewed once and the call is tried again. A renewal that fails ends
the poll with a reason naming what to do, so `/sources` shows the source failing until
someone acts.

Renewed tokens are kept in the database (a `TokenStore`), not only in memory: TikTok
rotates its refresh token at each renewal (the old one stops working), so a restart that
went back to the environment's token would lock the source out. Every process reads the
kept token; one renewal runs at a time across processes — the one that claims the kept
token's version renews it, the others wait and take the new one. The environment's
tokens start a chain: when an admin sets new ones, they replace what was kept.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol, TypeVar

from socialcare.bot.ports import Clock
from socialcare.bot.sources import SourceUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")
# Renew this long before the token's own end, so that no call starts with a dying token.
EARLY = timedelta(minutes=5)
# A renewal is one HTTP call of at most 30 s: a claim outlives it, and a process that
# died holding one holds up the others no longer than this.
CLAIM = timedelta(seconds=90)
# How often a process waiting for another's renewal looks again, and for how long.
WAIT_STEP = 0.2
WAIT_MAX = 100.0
WAIT_AGAIN = 60.0  # the poll's pause when the wait was given up


@dataclass(frozen=True)
class Grant:
    """An access token, when it expires (if known), and the refresh token to renew it."""

    # Not in the repr: a token must never reach a log, e.g. through a traceback.
    access_token: str = field(repr=False)
    expires_at: datetime | None = None
    refresh_token: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Kept:
    """A source's grant as the database keeps it, with its version and renewal."""

    grant: Grant
    version: int
    renewed_at: datetime | None = None  # None: as the environment gave it
    claimed_until: datetime | None = None  # a renewal is under way until then
    failure: str | None = None  # why the last renewal failed


class TokenStore(Protocol):
    """Where sources' renewed tokens are kept, shared by every process."""

    async def load(self, source: str, seed: Grant, *, fingerprint: str) -> Kept:
        """Return the kept grant; keep `seed` first if none is, or if it is a new one."""
        ...

    async def claim(self, source: str, version: int, *, now: datetime,
                    until: datetime) -> str | None:
        """Claim the renewal of the grant at `version`; return the claim, None if taken."""
        ...

    async def keep(self, source: str, claim: str, grant: Grant, *, now: datetime) -> Kept | None:
        """Keep a renewed grant and end the claim; None if the claim was lost meanwhile."""
        ...

    async def release(self, source: str, claim: str, *, failure: str | None,
                      now: datetime) -> None:
        """End a claim whose renewal failed (`failure` says why) or was given up."""
        ...


@dataclass(frozen=True)
class Keeping:
    """Where one source's tokens are kept: the store and the source's name."""

    store: TokenStore
    source: str


class TokenExpired(SourceUnavailable):
    """The API refused the access token as expired or revoked."""


Renew = Callable[[Grant | None], Awaitable[Grant]]
# Whether the kept grant will do, so that no renewal is needed.
WillDo = Callable[[Kept], bool]


class AccessToken:
    """One source's access token, renewed through `renew` when it runs out."""

    def __init__(self, *, what: str, clock: Clock, token: str | None = None,
                 refresh_token: str | None = None, renew: Renew | None = None,
                 keeping: Keeping | None = None) -> None:
        self._what = what
        self._clock = clock
        self._renew = renew
        self._keeping = keeping
        self._seed = Grant(token or "", None, refresh_token)
        self._fingerprint = fingerprint(self._seed)
        self._grant: Grant | None = None
        self._renewed_at: datetime | None = None
        if keeping is None and (token or refresh_token):
            self._grant = self._seed
        self._loaded = keeping is None
        self._lock = asyncio.Lock()
        self.renewals = 0

    @property
    def refresh_token(self) -> str | None:
        """The refresh token now in use (some platforms hand out a new one each time)."""
        return self._grant.refresh_token if self._grant else None

    async def current(self) -> str:
        """Return a token that is not known to have expired, renewing it if needed."""
        if not self._loaded:
            async with self._lock:
                if not self._loaded:
                    await self._load()
        grant = self._grant
        if grant is None or not grant.access_token or self._ending(grant):
            return await self.renewed(grant.access_token if grant else None)
        return grant.access_token

    async def renewed(self, stale: str | None) -> str:
        """Renew the token `stale` (unless another caller already did); return the new one."""

        def will_do(grant: Grant) -> bool:
            return bool(grant.access_token) and grant.access_token != stale \
                and not self._ending(grant)

        return await self._renewed(lambda kept: will_do(kept.grant), will_do)

    async def refresh(self, every: timedelta) -> None:
        """Renew the token unless it was renewed (by any process) less than `every` ago."""
        now = self._clock.now()

        def recent(renewed_at: datetime | None, grant: Grant | None) -> bool:
            return renewed_at is not None and now - renewed_at < every \
                and grant is not None and not self._ending(grant)

        await self._renewed(lambda kept: recent(kept.renewed_at, kept.grant),
                            lambda grant: recent(self._renewed_at, grant))

    async def call(self, attempt: Callable[[str], Awaitable[T]]) -> T:
        """Run `attempt` with the token; renew once and run it again if it was refused."""
        token = await self.current()
        try:
            return await attempt(token)
        except TokenExpired:
            if self._renew is None:
                raise
        return await attempt(await self.renewed(token))

    async def _renewed(self, kept_will_do: WillDo,
                       will_do: Callable[[Grant], bool]) -> str:
        async with self._lock:
            if self._keeping is not None:
                return await self._renewed_kept(self._keeping, kept_will_do)
            grant = self._grant
            if grant is not None and will_do(grant):
                return grant.access_token
            self._adopt(await self._renew_now(grant), now=True)
            return self._require()

    async def _renewed_kept(self, keeping: Keeping, will_do: WillDo) -> str:
        """Renew through the store: one process claims the renewal, the others wait for it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT_MAX
        waited = False
        while True:
            kept = await self._load()
            if will_do(kept):
                return self._require()  # another process (or task) has renewed it
            now = self._clock.now()
            renewing = kept.claimed_until is not None and kept.claimed_until > now
            if not renewing:
                if waited:
                    # The renewal waited for ended without a new token: it failed.
                    raise TokenExpired(kept.failure or f"{self._what}: the access token could "
                                       "not be renewed")
                if self._renew is None:
                    raise self._nothing_to_renew_with()
                claim = await keeping.store.claim(keeping.source, kept.version, now=now,
                                                  until=now + CLAIM)
                if claim is not None:
                    return await self._renew_claimed(keeping, kept, claim)
                continue
            waited = True
            if loop.time() >= deadline:
                raise SourceUnavailable(f"{self._what}: another process has been renewing the "
                                        "access token for too long", retry_after=WAIT_AGAIN)
            await asyncio.sleep(WAIT_STEP)

    async def _renew_claimed(self, keeping: Keeping, kept: Kept, claim: str) -> str:
        try:
            grant = await self._renew_now(kept.grant)
        except SourceUnavailable as failure:
            await keeping.store.release(keeping.source, claim, failure=str(failure)[:500],
                                        now=self._clock.now())
            raise
        except BaseException:
            # Cancelled (the app stopping) or a bug: the others need not wait for the claim.
            await asyncio.shield(keeping.store.release(keeping.source, claim, failure=None,
                                                       now=self._clock.now()))
            raise
        stored = await keeping.store.keep(keeping.source, claim, grant, now=self._clock.now())
        if stored is None:
            # New tokens were set in the environment meanwhile: they win; this one serves
            # this process until it runs out.
            log.warning("%s: a renewed token was not kept: the kept one changed meanwhile",
                        self._what)
            self._adopt(grant, now=True)
        else:
            self._adopt_kept(stored)
        return self._require()

    async def _renew_now(self, grant: Grant | None) -> Grant:
        if self._renew is None:
            raise self._nothing_to_renew_with()
        renewed = await self._renew(grant)
        self.renewals += 1
        return renewed

    async def _load(self) -> Kept:
        assert self._keeping is not None
        kept = await self._keeping.store.load(self._keeping.source, self._seed,
                                              fingerprint=self._fingerprint)
        self._adopt_kept(kept)
        self._loaded = True
        return kept

    def _adopt_kept(self, kept: Kept) -> None:
        self._grant = kept.grant if kept.grant.access_token or kept.grant.refresh_token \
            else None
        self._renewed_at = kept.renewed_at

    def _adopt(self, grant: Grant, *, now: bool) -> None:
        self._grant = grant
        if now:
            self._renewed_at = self._clock.now()

    def _require(self) -> str:
        assert self._grant is not None
        return self._grant.access_token

    def _nothing_to_renew_with(self) -> TokenExpired:
        return TokenExpired(f"{self._what}: the access token has expired and there is "
                            "nothing to renew it with; set a new one")

    def _ending(self, grant: Grant) -> bool:
        return grant.expires_at is not None and grant.expires_at - EARLY <= self._clock.now()


def fingerprint(grant: Grant) -> str:
    """A SHA-256 of the tokens an environment gave: tells a new one from one seen before."""
    return hashlib.sha256(
        f"{grant.access_token}\n{grant.refresh_token or ''}".encode()).hexdigest()


def expires(clock: Clock, seconds: object) -> datetime | None:
    """When a token given `seconds` to live runs out (None if the answer did not say)."""
    if isinstance(seconds, int | float) and not isinstance(seconds, bool) and seconds > 0:
        return clock.now() + timedelta(seconds=float(seconds))
    return None
