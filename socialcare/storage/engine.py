"""The database engine and the migrations.

One code path for both back ends: SQLite (the embedded default) and PostgreSQL.
SQLite gets WAL and `BEGIN IMMEDIATE`, so that concurrent writers queue for the
write lock instead of failing half-way through a read-then-write transaction.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError

from socialcare.storage.revisions import (
    MIGRATIONS,
    UnknownSchema,
    head_revision,
    known_revisions,
)

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

SQLITE_CACHE_KIB = 512  # per connection
# An execution option: this connection only reads (SQLite: no write lock is taken).
READS_ONLY = "socialcare_reads_only"
# A pooled connection that lay idle this long is pinged before it is used again (a
# database restarted meanwhile has closed it); one in steady use is not: asyncpg's ping
# is three round trips (BEGIN, ";", ROLLBACK), on every unit of work of a busy process.
PING_IDLE_SECONDS = 5.0
_IDLE_SINCE = "socialcare_idle_since"
# Any constant: several processes starting at once take turns to migrate.
_MIGRATION_LOCK = 7_420_611


class _SQLiteConnection(sqlite3.Connection):
    """A SQLite connection that ends its transaction when it is closed.

    A call cancelled half-way (a stopping task, a health probe's timeout) makes
    SQLAlchemy close its connection while a statement of it is still referenced from
    the cancelled call's traceback. SQLite then keeps the connection as a "zombie"
    until that statement is finalized — by a garbage collection, at some later time —
    and the zombie keeps its transaction, and with it the database's write lock: every
    other writer waited, then failed with "database is locked". Rolled back first, the
    zombie holds nothing."""

    def close(self) -> None:
        try:
            if self.in_transaction:
                self.rollback()
        finally:
            super().close()


def create_engine(url: str) -> AsyncEngine:
    """Create the async engine for a database URL."""
    # SQLAlchemy's asyncio package loads its ORM (a tenth of a second): imported here,
    # a command that needs no engine does without.
    from sqlalchemy.ext.asyncio import create_async_engine

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        engine = create_async_engine(url, pool_size=10, max_overflow=20)
        _ping_when_idle(engine)
        return engine
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    # SQLite takes one writer at a time: two connections kept (more opened for a burst
    # and closed after it), each with a page cache of 512 KiB instead of 2 MiB. The
    # file's pages stay in the OS's cache; each connection (with its thread) kept its
    # own copy of the same hot pages: ~8 MB of the embedded default's memory.
    engine = create_async_engine(
        url, connect_args={"timeout": 60, "factory": _SQLiteConnection}, pool_size=2)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A reader that asked for it (`READS_ONLY`) takes no write lock: in WAL mode it
        # reads beside the writer instead of queueing behind it.
        reads_only = conn.get_execution_options().get(READS_ONLY, False)
        conn.exec_driver_sql("BEGIN" if reads_only else "BEGIN IMMEDIATE")

    return engine


def _ping_when_idle(engine: AsyncEngine) -> None:
    """Ping a connection taken from the pool after `PING_IDLE_SECONDS` unused; a dead
    one is replaced by a new one (the pool's own answer to DisconnectionError)."""

    @event.listens_for(engine.sync_engine, "connect")
    def _connected(_dbapi_connection: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if time.monotonic() - record.info.get(_IDLE_SINCE, 0.0) < PING_IDLE_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as error:
            raise DisconnectionError(f"a pooled connection is gone: {error}") from error


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Apply the Alembic migrations up to `revision`."""
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        await conn.run_sync(_upgrade, revision)


async def upgrade_if_behind(engine: AsyncEngine) -> None:
    """Apply the migrations unless the database is at the latest already.

    The usual case — nothing to do — is told without loading Alembic (a third of a
    second of a command's start): by the revision the database records and the one
    the migration files end with."""
    head = head_revision()
    if head is not None and await revisions(engine) == [head]:
        return
    await upgrade(engine)


async def revisions(engine: AsyncEngine) -> list[str]:
    """Return the migrations the database records as applied (none for a new one)."""
    try:
        async with engine.connect() as conn:
            found = await conn.execute(text("SELECT version_num FROM alembic_version"))
            return [str(row[0]) for row in found]
    except DBAPIError:  # no such table yet: a new database
        return []


async def check_schema(engine: AsyncEngine) -> None:
    """Raise UnknownSchema if the database is at a migration this version lacks."""
    known = known_revisions()
    for revision in await revisions(engine):
        if revision not in known:
            raise UnknownSchema(revision)


def _upgrade(conn: Connection, revision: str) -> None:
    from alembic import command  # a third of a second: loaded only to migrate
    from alembic.config import Config
    from alembic.util import CommandError

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = conn
    try:
        command.upgrade(config, revision)
    except CommandError:
        current = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        if current is not None and current not in known_revisions():
            raise UnknownSchema(str(current)) from None
        raise


async def ping(engine: AsyncEngine) -> None:
    """Raise if the database does not answer. Busy is not down: on SQLite the ping
    reads beside a long write instead of waiting for it."""
    async with engine.connect() as conn:
        await conn.execution_options(**{READS_ONLY: True})
        await conn.execute(text("SELECT 1"))
