"""Sources' renewed tokens in the `source_tokens` table (see adapters/collectors/tokens.py).

One row per source: the newest access and refresh token of its chain, the fingerprint of
the environment's tokens the chain started from (and of earlier ones, so that a process
still running with an old environment does not undo a newer one), and a claim while one
process renews. Each call is its own short transaction: a renewal's HTTP call never runs
inside one. The tokens are kept as they are (no encryption at rest): the database is as
secret as the environment, and nothing here is logged or shown.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import insert, or_, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from socialcare.adapters.collectors.tokens import Grant, Kept
from socialcare.bot.errors import ConcurrentUpdate
from socialcare.bot.sources import SourceUnavailable
from socialcare.storage.schema import source_tokens as table

RETIRED_KEPT = 8
_ATTEMPTS = 5
RETRY_SECONDS = 30.0


class _Conflict(Exception):
    """Another process inserted the row first."""


class SqlTokenStore:
    """Renewed tokens in SQL, one renewal at a time per source across processes."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def load(self, source: str, seed: Grant, *, fingerprint: str) -> Kept:
        """Return the kept grant; keep `seed` first if none is, or if it is a new one."""
        for _ in range(_ATTEMPTS):
            row = await self._row(source)
            if row is None:
                await self._insert(source, seed, fingerprint)
                continue
            if row.seed == fingerprint or fingerprint in (row.retired or []):
                return _kept(row)
            # The environment has tokens this chain never saw: an admin set new ones.
            await self._reseed(row, seed, fingerprint)
        raise ConcurrentUpdate(f"the tokens of source {source} kept changing meanwhile")

    async def claim(self, source: str, version: int, *, now: datetime,
                    until: datetime) -> str | None:
        """Claim the renewal of the grant at `version`; return the claim, None if taken."""
        claim = secrets.token_hex(16)
        async with self._begin() as conn:
            result = await conn.execute(
                update(table)
                .where(table.c.source == source, table.c.version == version,
                       or_(table.c.claimed_until.is_(None), table.c.claimed_until <= now))
                .values(claim=claim, claimed_until=until))
        return claim if result.rowcount == 1 else None

    async def keep(self, source: str, claim: str, grant: Grant, *, now: datetime) -> Kept | None:
        """Keep a renewed grant and end the claim; None if the claim was lost meanwhile."""
        async with self._begin() as conn:
            result = await conn.execute(
                update(table).where(table.c.source == source, table.c.claim == claim)
                .values(access_token=grant.access_token, refresh_token=grant.refresh_token,
                        expires_at=grant.expires_at, renewed_at=now,
                        version=table.c.version + 1, claim=None, claimed_until=None,
                        failure=None, failed_at=None))
        if result.rowcount != 1:
            return None
        row = await self._row(source)
        return _kept(row) if row is not None else None

    async def release(self, source: str, claim: str, *, failure: str | None,
                      now: datetime) -> None:
        """End a claim whose renewal failed (`failure` says why) or was given up."""
        async with self._begin() as conn:
            await conn.execute(
                update(table).where(table.c.source == source, table.c.claim == claim)
                .values(claim=None, claimed_until=None, failure=failure,
                        failed_at=now if failure else None))

    @asynccontextmanager
    async def _begin(self) -> AsyncIterator[AsyncConnection]:
        """A transaction whose database errors never carry the statement's parameters
        (SQLAlchemy puts them in the message: here they are tokens) to a log or /sources."""
        try:
            async with self._engine.begin() as conn:
                yield conn
        except IntegrityError:
            raise _Conflict from None
        except SQLAlchemyError as error:
            raise SourceUnavailable(f"the database keeping the access tokens is unavailable "
                                    f"({type(error).__name__})",
                                    retry_after=RETRY_SECONDS) from None

    async def _row(self, source: str) -> Any:
        async with self._begin() as conn:
            return (await conn.execute(select(table).where(table.c.source == source))).first()

    async def _insert(self, source: str, seed: Grant, fingerprint: str) -> None:
        try:
            async with self._begin() as conn:
                await conn.execute(insert(table).values(
                    source=source, **_tokens(seed), renewed_at=None, seed=fingerprint,
                    retired=[], version=1))
        except _Conflict:
            pass  # another process kept its seed first: read that

    async def _reseed(self, row: Any, seed: Grant, fingerprint: str) -> None:
        retired = [*(row.retired or []), row.seed][-RETIRED_KEPT:]
        async with self._begin() as conn:
            await conn.execute(
                update(table).where(table.c.source == row.source,
                                    table.c.version == row.version)
                .values(**_tokens(seed), renewed_at=None, seed=fingerprint, retired=retired,
                        version=row.version + 1, claim=None, claimed_until=None,
                        failure=None, failed_at=None))


def _tokens(grant: Grant) -> dict[str, Any]:
    return {"access_token": grant.access_token or None, "refresh_token": grant.refresh_token,
            "expires_at": grant.expires_at}


def _kept(row: Any) -> Kept:
    return Kept(grant=Grant(row.access_token or "", row.expires_at, row.refresh_token),
                version=row.version, renewed_at=row.renewed_at,
                claimed_until=row.claimed_until, failure=row.failure)
