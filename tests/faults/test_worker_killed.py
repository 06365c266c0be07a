"""A worker killed with SIGKILL in the middle of a 10,000-mention ingest loses nothing:
once a worker runs again, every mention has exactly one case.

Separate processes share the queue through Redis, so this runs on the servers only.
"""

from __future__ import annotations

import signal
from collections.abc import Awaitable
from pathlib import Path

import pytest
from redis.asyncio import Redis
from sqlalchemy import String, func, select

from socialcare.storage.database import create_engine
from socialcare.storage.schema import cards, cases, inbox, mentions
from tests.conftest import TEST_DATABASE_URL, TEST_REDIS_URL, reset_database
from tests.faults.processes import bodies, count, post_all, running, until

pytestmark = pytest.mark.skipif(
    not (TEST_DATABASE_URL and TEST_REDIS_URL),
    reason="processes with separate roles share Redis and a database server "
           "(set TEST_DATABASE_URL and TEST_REDIS_URL)")

MENTIONS = 10_000


async def test_a_worker_killed_mid_ingest_loses_and_doubles_nothing(tmp_path: Path) -> None:
    assert TEST_DATABASE_URL and TEST_REDIS_URL
    await reset_database(TEST_DATABASE_URL)
    redis = Redis.from_url(TEST_REDIS_URL, decode_responses=True)
    await redis.flushdb()
    engine = create_engine(TEST_DATABASE_URL)
    urls = {"database_url": TEST_DATABASE_URL, "redis_url": TEST_REDIS_URL}

    def rows(table: object) -> Awaitable[int]:
        return count(engine, table)

    async def pending_entries() -> int:
        return int((await redis.xpending("ingest", "workers"))["pending"])

    try:
        async with running(tmp_path, "collectors", **urls) as collector:
            answers = await post_all(collector.url, bodies(0, MENTIONS))
            async with running(tmp_path, "workers", **urls) as doomed:
                await until(lambda: rows(cases), lambda made: made >= MENTIONS // 5,
                            seconds=120)
                killed_with = await doomed.kill()
            stored_when_killed = await rows(cases)
            # It dies mid-batch (it is never idle with thousands queued): what it had
            # taken is left pending, for XAUTOCLAIM.
            left_pending = await pending_entries()
            async with running(tmp_path, "workers", **urls):
                await until(lambda: rows(inbox), lambda waiting: waiting == 0, seconds=180)
                # What the killed worker took and never acknowledged is taken over too.
                pending = await until(pending_entries, lambda left: left == 0, seconds=30)
        async with engine.connect() as conn:
            stored, distinct = (await conn.execute(select(
                func.count(), func.count(func.distinct(mentions.c.external_id))))).one()
        made = await rows(cases)
        async with engine.connect() as conn:
            card_rows, card_places = (await conn.execute(select(
                func.count(), func.count(func.distinct(
                    cards.c.case_id.cast(String) + ":" + cards.c.messenger + ":"
                    + cards.c.channel))))).one()
    finally:
        await redis.aclose()
        await engine.dispose()

    assert answers == [(202, {"queued"})] * (MENTIONS // 500)
    assert killed_with == -signal.SIGKILL
    assert MENTIONS // 5 <= stored_when_killed < MENTIONS
    assert left_pending > 0
    assert stored == distinct == made == MENTIONS
    # One card per channel: the example config's Slack channel and Telegram chat, each
    # queued once for the messenger processes to post (they post each card once).
    assert card_rows == card_places == 2 * MENTIONS
    assert pending == 0
