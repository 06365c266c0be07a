"""The database engine, the unit of work, and migrations.

One code path for both back ends: SQLite (the embedded default) and PostgreSQL.
SQLite gets WAL and `BEGIN IMMEDIATE`, so that concurrent writers queue for the
write lock instead of failing half-way through a read-then-write transaction.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from socialcare.bot.errors import ConcurrentUpdate
from socialcare.storage import facts
from socialcare.storage.announcements import SqlAnnouncementRepository
from socialcare.storage.cards import SqlCardRepository
from socialcare.storage.console import SqlConsoleRepository
from socialcare.storage.escalations import SqlEscalationRepository, SqlNoticeRepository
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

MIGRATIONS = Path(__file__).parent / "migrations"
# Any constant: several processes starting at once take turns to migrate.
_MIGRATION_LOCK = 7_420_611


def create_engine(url: str) -> AsyncEngine:
    """Create the async engine for a database URL."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_async_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, connect_args={"timeout": 60})

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


class SqlUnitOfWork:
    """A transaction over the SQL repositories; see `socialcare.bot.ports.UnitOfWork`."""

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

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._conn: AsyncConnection | None = None

    async def __aenter__(self) -> Self:
        if self._conn is not None:
            raise RuntimeError("this unit of work is already in a transaction")
        conn = await self._engine.connect()
        try:
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
        await facts.refresh(self._conn, self.events.touched, self.events)
        self.events.touched.clear()
        await self._conn.commit()


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


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Apply the Alembic migrations up to `revision`."""
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        await conn.run_sync(_upgrade, revision)


def _upgrade(conn: Connection, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = conn
    command.upgrade(config, revision)


async def ping(engine: AsyncEngine) -> None:
    """Raise if the database does not answer."""
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
