"""The unit of work: one transaction over every repository.

The engine and the migrations are in `socialcare.storage.engine` (named here too).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Self

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from socialcare.bot.errors import ConcurrentUpdate
from socialcare.storage import facts
from socialcare.storage.announcements import SqlAnnouncementRepository
from socialcare.storage.cards import SqlCardRepository
from socialcare.storage.console import SqlConsoleRepository
from socialcare.storage.engine import (
    READS_ONLY,
    create_engine,
    ping,
    upgrade,
    upgrade_if_behind,
)
from socialcare.storage.escalations import SqlEscalationRepository, SqlNoticeRepository
from socialcare.storage.incidents import SqlIncidentRepository
from socialcare.storage.jobs import SqlJobRepository
from socialcare.storage.reports import SqlReportRepository
from socialcare.storage.repositories import (
    SqlCaseRepository,
    SqlEventRepository,
    SqlMentionRepository,
)
from socialcare.storage.sources import SqlSourceStateRepository
from socialcare.storage.webhooks import SqlWebhookRepository

log = logging.getLogger(__name__)

__all__ = ["SqlUnitOfWork", "create_engine", "ping", "upgrade", "upgrade_if_behind"]


class SqlUnitOfWork:
    """A transaction over the SQL repositories; see `socialcare.bot.ports.UnitOfWork`.

    One that only reads (`reads_only`) is never committed, and on PostgreSQL it is
    no transaction: each statement reads on its own (`Deps.reads`)."""

    cases: SqlCaseRepository
    mentions: SqlMentionRepository
    events: SqlEventRepository
    cards: SqlCardRepository
    escalations: SqlEscalationRepository
    notices: SqlNoticeRepository
    jobs: SqlJobRepository
    webhooks: SqlWebhookRepository
    reports: SqlReportRepository
    sources: SqlSourceStateRepository
    console: SqlConsoleRepository
    announcements: SqlAnnouncementRepository
    incidents: SqlIncidentRepository

    def __init__(self, engine: AsyncEngine, *,
                 give_way: Callable[[], Awaitable[None]] | None = None,
                 reads_only: bool = False) -> None:
        self._engine = engine
        self._conn: AsyncConnection | None = None
        # Awaited before each transaction: the running app's requests in flight go
        # first (`socialcare.foreground`).
        self._give_way = give_way
        self._reads_only = reads_only

    async def __aenter__(self) -> Self:
        if self._conn is not None:
            raise RuntimeError("this unit of work is already in a transaction")
        if self._give_way is not None:
            await self._give_way()
        conn = await self._engine.connect()
        try:
            if self._reads_only:
                await conn.execution_options(**_READS[conn.dialect.name])
            await conn.begin()
        except BaseException:
            await conn.close()
            raise
        self._conn = conn
        self.cases = SqlCaseRepository(conn)
        self.mentions = SqlMentionRepository(conn)
        self.events = SqlEventRepository(conn)
        self.cards = SqlCardRepository(conn)
        self.escalations = SqlEscalationRepository(conn)
        self.notices = SqlNoticeRepository(conn)
        self.jobs = SqlJobRepository(conn)
        self.webhooks = SqlWebhookRepository(conn)
        self.reports = SqlReportRepository(conn, self._engine)
        self.sources = SqlSourceStateRepository(conn)
        self.console = SqlConsoleRepository(conn)
        self.announcements = SqlAnnouncementRepository(conn)
        self.incidents = SqlIncidentRepository(conn)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        # Shielded: a task cancelled mid-transaction (a loop stopping at shutdown) must
        # still roll back and hand the connection back, or it keeps SQLite's write lock.
        await asyncio.shield(_end(conn))
        if isinstance(exc, DBAPIError) and _is_transient(exc):
            # Lost a race with another transaction: the command runs again on fresh data.
            raise ConcurrentUpdate(str(exc.orig)) from exc

    async def commit(self) -> None:
        """Bring the touched cases' facts in step with their events, and commit."""
        if self._conn is None:
            raise RuntimeError("commit outside a transaction")
        if self._reads_only:
            raise RuntimeError("a unit of work that only reads has nothing to commit")
        await facts.refresh(self._conn, self.events.touched, self.events,
                            label=self.events.labelled, relabel=self.events.relabelled)
        self.events.touched.clear()
        self.events.labelled.clear()
        self.events.relabelled.clear()
        await self._conn.commit()


# A unit of work that only reads: on PostgreSQL each statement on its own, no BEGIN and
# COMMIT (two round trips; at READ COMMITTED a transaction's statements each see their
# own snapshot anyway); on SQLite a deferred BEGIN, which takes no write lock.
_READS: dict[str, dict[str, object]] = {"postgresql": {"isolation_level": "AUTOCOMMIT"},
                                        "sqlite": {READS_ONLY: True}}


async def _end(conn: AsyncConnection) -> None:
    try:
        if conn.in_transaction():
            await conn.rollback()
    finally:
        await conn.close()


# PostgreSQL: serialization_failure, deadlock_detected.
_TRANSIENT_SQLSTATES = frozenset({"40001", "40P01"})


def _is_transient(error: DBAPIError) -> bool:
    code = getattr(error.orig, "sqlstate", None) or getattr(error.orig, "pgcode", None)
    return code in _TRANSIENT_SQLSTATES
