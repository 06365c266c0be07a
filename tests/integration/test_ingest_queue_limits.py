"""The ingest queue keeps what it cannot store yet: a mention of a source a worker's
config does not know waits for one that does; a mention that cannot be stored goes to
the dead letters after a few tries, with one alert; and a slow worker keeps its batch
while it works."""

from __future__ import annotations

import asyncio
import dataclasses
import logging

import pytest
from sqlalchemy import func, select, text, update

from socialcare.bot.model import Tier
from socialcare.bot.team import Channel, Source, Team
from socialcare.handlers import commands, workers
from socialcare.storage.dead_letters import DeadLetters
from socialcare.storage.queue import DEAD_AFTER
from socialcare.storage.schema import cases, inbox, notices
from tests.conftest import FakeClock, Storage
from tests.integration.test_ingest_queue import _count, _deps, _mention

NEW_SOURCE = Source(name="vk2", kind="webhook", platform="vk", tier=Tier.MAIN)


def _with_new_source(team: Team) -> Team:
    return dataclasses.replace(team, sources=(*team.sources, NEW_SOURCE))


async def test_queued_mentions_of_a_new_source_wait_through_a_rolling_config_change(
    storage: Storage, team: Team, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    old = _deps(storage, team, clock)  # a worker not yet restarted with the new config
    new = _deps(storage, _with_new_source(team), clock)
    assert old.queue is not None and new.queue is not None
    # A collector that already has the new config hands over a mention of the new source.
    await new.queue.put([_mention(1, source="vk2"), _mention(2)], now=clock.now())

    with caplog.at_level(logging.WARNING):
        taken = await workers.work_once(old, old.queue, "old", claim_seconds=30, block_ms=10)
    kept = await _count(storage, inbox)
    clock.advance(hours=1)
    swept_by_old = await workers.requeue(old, old.queue, claim_seconds=30)
    again = await workers.work_once(old, old.queue, "old", claim_seconds=30, block_ms=10)
    lead = old.team.person("saule")
    shown = (await commands.run_command("sources", "", lead, old)).text

    taken_back = await workers.requeue(new, new.queue, claim_seconds=30)
    stored = await workers.work_once(new, new.queue, "new", claim_seconds=30, block_ms=10)

    assert (taken, kept) == (2, 1)
    assert any("'vk2'" in r.getMessage() and r.levelno == logging.WARNING
               for r in caplog.records)
    assert (swept_by_old, again) == (0, 0)  # left for a worker that knows the source
    assert shown.splitlines()[-1].startswith(
        "⏳ 1 queued mention(s) of source vk2, which a worker's config does not know")
    assert old.telemetry.inbox_unknown_source._value.get() == 1
    assert (taken_back, stored) == (1, 1)
    assert await _count(storage, cases) == 2
    assert await _count(storage, inbox) == 0
    assert new.telemetry.mentions.labels("vk2", "created", "")._value.get() == 1


async def test_a_poisoned_row_reaches_the_dead_letters_after_its_tries_and_alerts_once(
    storage: Storage, team: Team, clock: FakeClock
) -> None:
    team = dataclasses.replace(
        team, channels=(*team.channels, Channel(messenger="telegram", id="-100500")))
    deps = _deps(storage, team, clock)
    assert deps.queue is not None
    ids = await deps.queue.put([_mention(1), _mention(2), _mention(3)], now=clock.now())
    async with storage.engine.begin() as conn:  # one unreadable, one with a naive time
        await conn.execute(update(inbox).where(inbox.c.id == ids[0])
                           .values(mention={"source": "webhook", "shape": "unknown"}))
        naive = dict((await conn.execute(
            select(inbox.c.mention).where(inbox.c.id == ids[1]))).scalar_one())
        naive["published_at"] = "2026-11-25T09:59:00"
        await conn.execute(update(inbox).where(inbox.c.id == ids[1]).values(mention=naive))

    rounds = []
    for _ in range(DEAD_AFTER + 2):
        rounds.append(await workers.work_once(deps, deps.queue, "w1", claim_seconds=30,
                                              block_ms=10))
        clock.advance(minutes=30)
        await workers.requeue(deps, deps.queue, claim_seconds=30)

    letters = await DeadLetters(storage.engine).all()
    async with storage.engine.connect() as conn:
        alerts = (await conn.execute(select(notices.c.messenger, notices.c.recipient,
                                            notices.c.key, notices.c.params))).all()
    assert rounds == [3, 2, 2, 0, 0]
    assert [(letter.id, letter.tries) for letter in letters] == [(ids[0], 3), (ids[1], 3)]
    assert "KeyError" in letters[0].reason
    assert "timezone" in letters[1].reason
    assert await _count(storage, inbox) == 0
    assert await _count(storage, cases) == 1
    # Once, in each team channel, naming both.
    assert sorted((m, r, k) for m, r, k, _ in alerts) == [
        ("slack", "C0CARE", "notice.dead_letters"), ("telegram", "-100500", "notice.dead_letters")]
    assert all(p["count"] == 2 and p["ids"] == f"#{ids[0]}, #{ids[1]}" for *_, p in alerts)
    assert deps.telemetry.dead_lettered._value.get() == 2
    assert deps.telemetry.dead_letters._value.get() == 2


async def test_a_worker_slower_than_the_claim_time_keeps_its_batch(
    storage: Storage, team: Team, clock: FakeClock
) -> None:
    claim = 0.5
    deps = _deps(storage, team, clock)
    queue = deps.queue
    assert queue is not None
    await queue.put([_mention(1)], now=clock.now())
    blocker = await storage.engine.connect()
    # The database makes the first worker slow: another transaction holds what its
    # ingest needs (PostgreSQL: the cases table; SQLite: the write lock).
    await blocker.begin()
    if storage.is_postgres:
        await blocker.execute(text("LOCK TABLE cases IN EXCLUSIVE MODE"))
    else:  # a write in BEGIN IMMEDIATE: SQLite's one write lock is taken
        await blocker.execute(update(inbox).where(inbox.c.id == -1).values(tries=0))
    slow = asyncio.create_task(
        workers.work_once(deps, queue, "slow", claim_seconds=claim, block_ms=10))
    other_took = []
    try:
        loop = asyncio.get_running_loop()
        until = loop.time() + 5 * claim
        while loop.time() < until:
            await asyncio.sleep(0.1)
            other_took.append(await asyncio.wait_for(workers.work_once(
                deps, queue, "other", claim_seconds=claim, block_ms=10), 1.0))
        assert not slow.done()
    finally:
        await blocker.rollback()
        await blocker.close()
    slow_took = await asyncio.wait_for(slow, 10)

    assert slow_took == 1
    assert set(other_took) == {0}
    assert await _count(storage, cases) == 1
    assert deps.telemetry.mentions.labels("webhook", "dropped", "duplicate")._value.get() == 0
    assert (await storage.redis.xpending("ingest", "workers"))["pending"] == 0
    async with storage.engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(inbox))).scalar_one() == 0
