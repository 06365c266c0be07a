"""Redis restarting in the middle of a run — without persistence, the worst case —
loses no mention: what was handed over before, during and after the restart each
gets exactly one case once Redis is back.

The test runs its own Redis server, so that restarting it disturbs nobody else.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select

from socialcare.storage.database import create_engine
from socialcare.storage.schema import cases, inbox, mentions
from tests.conftest import TEST_DATABASE_URL, TEST_REDIS_URL, reset_database
from tests.faults.processes import bodies, count, free_port, post_all, running, until

pytestmark = pytest.mark.skipif(
    not (TEST_DATABASE_URL and TEST_REDIS_URL),
    reason="processes with separate roles share Redis and a database server "
           "(set TEST_DATABASE_URL and TEST_REDIS_URL)")

BEFORE, DURING, AFTER = 3000, 1000, 1000


@asynccontextmanager
async def _redis_server(port: int) -> AsyncIterator[asyncio.subprocess.Process]:
    server = shutil.which("redis-server")
    assert server is not None, "redis-server is not installed"
    process = await asyncio.create_subprocess_exec(
        server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
        "--appendonly", "no", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = Redis(port=port)
    try:
        async with asyncio.timeout(10):
            while True:
                try:
                    if await client.ping():
                        break
                except OSError:
                    await asyncio.sleep(0.05)
        yield process
    finally:
        await client.aclose()
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_a_redis_restart_mid_run_loses_no_mention(tmp_path: Path) -> None:
    assert TEST_DATABASE_URL
    await reset_database(TEST_DATABASE_URL)
    engine = create_engine(TEST_DATABASE_URL)
    port = free_port()
    urls = {"database_url": TEST_DATABASE_URL, "redis_url": f"redis://127.0.0.1:{port}/0"}

    def rows(table: object) -> Awaitable[int]:
        return count(engine, table)

    try:
        async with _redis_server(port) as first, \
                running(tmp_path, "collectors", **urls) as collector, \
                running(tmp_path, "workers", **urls):
            before = await post_all(collector.url, bodies(0, BEFORE))
            await until(lambda: rows(cases), lambda made: made >= 200, seconds=60)
            first.kill()  # gone, and the stream with it
            await first.wait()
            during = await post_all(collector.url, bodies(BEFORE, DURING))
            stored_while_away = await rows(cases)
            async with _redis_server(port):
                after = await post_all(collector.url, bodies(BEFORE + DURING, AFTER))
                await until(lambda: rows(inbox), lambda waiting: waiting == 0, seconds=120)
                # Nothing is left on its way either: every entry was acknowledged.
                redis = Redis.from_url(urls["redis_url"], decode_responses=True)
                try:
                    pending = await until(
                        lambda: _pending(redis), lambda left: left == 0, seconds=30)
                finally:
                    await redis.aclose()
        async with engine.connect() as conn:
            stored, distinct = (await conn.execute(select(
                func.count(), func.count(func.distinct(mentions.c.external_id))))).one()
        made = await rows(cases)
    finally:
        await engine.dispose()

    # Taken while Redis was away too: the inbox holds them, the workers get them later.
    assert before + during + after == [(202, {"queued"})] * ((BEFORE + DURING + AFTER) // 500)
    assert stored_while_away < BEFORE + DURING
    assert stored == distinct == made == BEFORE + DURING + AFTER
    assert pending == 0


async def _pending(redis: Redis) -> int:  # type: ignore[type-arg]
    return int((await redis.xpending("ingest", "workers"))["pending"])
