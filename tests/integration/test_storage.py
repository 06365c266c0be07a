"""Migrations, the schema they build, and the Redis parts."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from socialcare.storage.database import create_engine, upgrade
from socialcare.storage.engine import ping
from socialcare.storage.redis import lease
from socialcare.storage.schema import metadata
from tests.conftest import Storage


async def test_migrations_build_exactly_the_schema_the_code_uses(storage: Storage) -> None:
    def diff(conn: Any) -> list[Any]:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(context, metadata)

    async with storage.engine.connect() as conn:
        differences = await conn.run_sync(diff)

    assert differences == []


async def test_upgrading_twice_and_from_two_processes_at_once_is_harmless(
    storage: Storage,
) -> None:
    engines = [create_engine(storage.url) for _ in range(2)]
    try:
        await asyncio.gather(*(upgrade(engine) for engine in engines))
        await upgrade(engines[0])
    finally:
        for engine in engines:
            await engine.dispose()


async def test_a_lease_is_held_by_one_holder_until_released(storage: Storage) -> None:
    async with (
        lease(storage.redis, "sweep", seconds=30) as first,
        lease(storage.redis, "sweep", seconds=30) as second,
    ):
        assert (first, second) == (True, False)
    async with lease(storage.redis, "sweep", seconds=30) as after:
        assert after is True


async def test_an_expired_lease_taken_by_another_is_not_released_by_the_first(
    storage: Storage,
) -> None:
    first = lease(storage.redis, "sweep", seconds=0.05)
    assert await first.__aenter__()
    await asyncio.sleep(0.1)  # the first holder stalls past its lease
    async with lease(storage.redis, "sweep", seconds=30) as second:
        assert second
        await first.__aexit__(None, None, None)  # the first one wakes up and lets go
        async with lease(storage.redis, "sweep", seconds=30) as third:
            assert third is False  # the second still holds it


# About half a second of work for the database, in one statement.
_SLOW = {
    "sqlite": "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n "
              "WHERE x < 2000000) SELECT count(*) FROM n",
    "postgresql": "SELECT pg_sleep(0.5)",
}
# A write that needs what a writer holds: SQLite's write lock, PostgreSQL's row lock.
_WRITE = "UPDATE alembic_version SET version_num = version_num"


async def test_a_call_cancelled_half_way_through_a_write_leaves_no_lock_behind(
    storage: Storage,
) -> None:
    """A stopping task or a timed-out probe cancels a call in the middle of its
    transaction: the database must be writable again once the statement in flight
    ends, not only when the garbage collector finds the cancelled call's traceback."""

    async def write_then_read_slowly() -> None:
        async with storage.engine.begin() as conn:
            await conn.execute(text(_WRITE))
            await conn.execute(text(_SLOW[storage.engine.dialect.name]))

    task = asyncio.create_task(write_then_read_slowly())
    await asyncio.sleep(0.2)
    task.cancel()
    cancelled = await asyncio.gather(task, return_exceptions=True)  # kept: its traceback

    other = storage.new_engine()
    async with asyncio.timeout(15):
        async with other.begin() as conn:
            await conn.execute(text(_WRITE))
    assert isinstance(cancelled[0], asyncio.CancelledError)


async def test_the_database_ping_answers_while_a_writer_holds_the_lock(
    storage: Storage,
) -> None:
    async with storage.new_engine().begin() as writer:
        await writer.execute(text(_WRITE))
        await asyncio.wait_for(ping(storage.engine), 2)  # busy is not down
