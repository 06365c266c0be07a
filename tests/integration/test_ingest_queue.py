"""The ingest queue: mentions handed over by collecting processes reach a case once,
whatever happens to the worker that took them or to Redis."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import fakeredis
import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select, update

from socialcare.adapters.telemetry import Telemetry
from socialcare.bot.model import Author, RawMention
from socialcare.bot.pipeline import Pipeline
from socialcare.bot.team import Team
from socialcare.deps import Deps, Role
from socialcare.handlers import workers
from socialcare.settings import Settings, load_catalog
from socialcare.storage.queue import IngestQueue
from socialcare.storage.schema import cases, inbox, mentions
from tests.conftest import FakeClock, Storage


def _mention(n: int, *, source: str = "webhook") -> RawMention:
    return RawMention(
        source=source, external_id=f"m{n}", text=f"Kcell, no signal in block {n}",
        published_at=FakeClock().now() - timedelta(minutes=1), url=f"https://example.org/{n}",
        author=Author(id=f"u{n}", name=f"Customer {n}", handle=f"@c{n}"), thread_id=f"t{n}",
    )


def _deps(storage: Storage, team: Team, clock: FakeClock, *,
          roles: frozenset[Role] = frozenset({Role.WORKERS})) -> Deps:
    return Deps(
        settings=Settings(database_url=storage.url), team=team, catalog=load_catalog("en"),
        clock=clock, engine=storage.engine, redis=storage.redis,
        pipeline=Pipeline(team, clock=clock), telemetry=Telemetry(), roles=roles,
        queue=IngestQueue(storage.engine, storage.redis),
    )


async def _count(storage: Storage, table: object) -> int:
    async with storage.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def test_a_worker_ingests_what_was_handed_over_and_forgets_it(
    storage: Storage, team: Team, clock: FakeClock
) -> None:
    deps = _deps(storage, team, clock)
    assert deps.queue is not None
    await deps.queue.put([_mention(n) for n in range(450)], now=clock.now())

    done = 0
    while (taken := await workers.work_once(deps, deps.queue, "w1", claim_seconds=30,
                                            block_ms=10)):
        done += taken

    assert done == 450
    assert await _count(storage, cases) == 450
    assert await _count(storage, inbox) == 0
    assert await storage.redis.xpending("ingest", "workers") == {
        "pending": 0, "min": None, "max": None, "consumers": []}
    assert deps.telemetry.mentions.labels("webhook", "created", "")._value.get() == 450


async def test_a_mention_with_nul_characters_is_handed_over_like_any_other(
    storage: Storage, team: Team, clock: FakeClock
) -> None:
    deps = _deps(storage, team, clock)
    assert deps.queue is not None
    raw = RawMention(
        source="webhook", external_id="m\x001", text="Kcell\x00, no signal",
        published_at=clock.now() - timedelta(minutes=1),
        author=Author(id="u1", name="Ai\x00gerim", handle="@aigerim"))

    await deps.queue.put([raw], now=clock.now())
    taken = await workers.work_once(deps, deps.queue, "w1", claim_seconds=30, block_ms=10)

    async with storage.engine.connect() as conn:
        stored = (await conn.execute(select(mentions.c.text, mentions.c.author_name))).one()
    assert taken == 1
    assert tuple(stored) == ("Kcell, no signal", "Aigerim")
    assert await _count(storage, inbox) == 0


async def test_a_row_that_cannot_be_read_waits_aside_and_holds_up_no_other(
    storage: Storage, team: Team, clock: FakeClock
) -> None:
    deps = _deps(storage, team, clock)
    assert deps.queue is not None
    too_long = RawMention(  # longer than the column: dropped as a bad id on every back end
        source="webhook", external_id="x" * 300, text="Kcell?",
        published_at=clock.now() - timedelta(minutes=1), author=Author(id="u9"))
    ids = await deps.queue.put([_mention(1), _mention(2), too_long, _mention(3)],
                               now=clock.now())
    async with storage.engine.begin() as conn:  # written by a version that knew more
        await conn.execute(update(inbox).where(inbox.c.id == ids[1])
                           .values(mention={"source": "webhook", "shape": "unknown"}))

    clock.advance(seconds=5)
    taken = await workers.work_once(deps, deps.queue, "w1", claim_seconds=30, block_ms=10)

    async with storage.engine.connect() as conn:
        waiting = (await conn.execute(select(inbox.c.id, inbox.c.queued_at))).all()
    assert taken == 4
    assert await _count(storage, cases) == 2
    assert [row.id for row in waiting] == [ids[1]]
    assert all(row.queued_at == clock.now() for row in waiting)  # wait a full sweep again
    assert (await storage.redis.xpending("ingest", "workers"))["pending"] == 0


async def test_what_a_dead_worker_took_is_claimed_by_another_and_stored_once(
    storage: Storage, team: Team, clock: FakeClock
) -> None:
    deps = _deps(storage, team, clock)
    queue = deps.queue
    assert queue is not None
    await queue.put([_mention(n) for n in range(30)], now=clock.now())
    # The first worker takes the entry and stores the mentions, then dies before
    # acknowledging: the entry stays pending under its name.
    taken = await queue.take("dead", count=5, block_ms=10, claim_idle_ms=60_000)
    await deps.pipeline.ingest([raw for _, raw in taken.rows], uow=deps.uow())

    nothing_yet = await workers.work_once(deps, queue, "alive", claim_seconds=60, block_ms=10)
    claimed = await workers.work_once(deps, queue, "alive", claim_seconds=0, block_ms=10)

    assert len(taken.rows) == 30
    assert nothing_yet == 0  # not idle long enough to be taken from its worker
    assert claimed == 30
    assert await _count(storage, cases) == 30
    assert await _count(storage, mentions) == 30
    assert deps.telemetry.mentions.labels("webhook", "dropped", "duplicate")._value.get() == 30
    assert (await storage.redis.xpending("ingest", "workers"))["pending"] == 0


async def test_mentions_survive_redis_losing_the_stream(
    storage: Storage, team: Team, clock: FakeClock
) -> None:
    deps = _deps(storage, team, clock)
    queue = deps.queue
    assert queue is not None
    await queue.put([_mention(n) for n in range(10)], now=clock.now())
    await storage.redis.flushdb()  # a Redis restarted without persistence

    lost = await workers.work_once(deps, queue, "w1", claim_seconds=30, block_ms=10)
    early = await workers.requeue(deps, queue, claim_seconds=30)
    clock.advance(minutes=3)
    again = await workers.requeue(deps, queue, claim_seconds=30)
    stored = await workers.work_once(deps, queue, "w1", claim_seconds=30, block_ms=10)

    assert (lost, early, again, stored) == (0, 0, 10, 10)
    assert await _count(storage, cases) == 10


async def test_a_mention_handed_over_while_redis_is_away_is_kept_and_sent_later(
    storage: Storage, team: Team, clock: FakeClock
) -> None:
    deps = _deps(storage, team, clock)
    assert deps.queue is not None
    away = IngestQueue(storage.engine, _unreachable_redis())

    ids = await away.put([_mention(1), _mention(2)], now=clock.now())
    clock.advance(minutes=3)
    announced = await workers.requeue(deps, deps.queue, claim_seconds=30)
    stored = await workers.work_once(deps, deps.queue, "w1", claim_seconds=30, block_ms=10)

    assert len(ids) == 2
    assert (announced, stored) == (2, 2)


async def test_what_was_queued_while_redis_was_away_goes_out_with_the_next_hand_over(
    storage: Storage, team: Team, clock: FakeClock
) -> None:
    server = fakeredis.FakeServer()  # a Redis this test can take away and bring back
    redis = fakeredis.FakeAsyncRedis(server=server, decode_responses=True)
    deps = dataclasses.replace(_deps(storage, team, clock), redis=redis,
                               queue=IngestQueue(storage.engine, redis))
    assert deps.queue is not None
    await deps.queue.ensure_group()
    server.connected = False
    away = await deps.queue.put([_mention(1), _mention(2)], now=clock.now())
    server.connected = True
    back = await deps.queue.put([_mention(3)], now=clock.now())

    taken = await workers.work_once(deps, deps.queue, "w1", claim_seconds=30, block_ms=10)

    assert len(away) == 2 and len(back) == 1
    assert taken == 3  # all of them, at once: no sweep was needed
    assert await _count(storage, cases) == 3
    assert await _count(storage, inbox) == 0


def _unreachable_redis() -> Redis[Any]:
    return Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2,
                 retry_on_error=[], retry=None)


@pytest.mark.parametrize("roles", [frozenset({Role.COLLECTORS}), frozenset(Role)])
async def test_only_a_process_without_workers_hands_over(
    storage: Storage, team: Team, clock: FakeClock, roles: frozenset[Role]
) -> None:
    assert _deps(storage, team, clock, roles=roles).hands_over is (Role.WORKERS not in roles)



async def test_rows_on_their_way_through_a_busy_stream_are_not_announced_twice(
    storage: Storage, team: Team, clock: FakeClock
) -> None:
    deps = _deps(storage, team, clock)
    queue = deps.queue
    assert queue is not None
    await queue.put([_mention(n) for n in range(10)], now=clock.now())
    clock.advance(minutes=3)

    busy = await workers.requeue(deps, queue, claim_seconds=30)  # undelivered: on their way
    clock.advance(minutes=20)
    stuck = await workers.requeue(deps, queue, claim_seconds=30)  # ten times as long: stuck

    assert (busy, stuck) == (0, 10)


async def test_a_reviews_rating_goes_through_the_queue_and_makes_its_case_urgent(
    storage: Storage, team: Team, clock: FakeClock
) -> None:
    deps = _deps(storage, team, clock)
    assert deps.queue is not None
    one_star = dataclasses.replace(_mention(1), rating=1)
    four_stars = dataclasses.replace(_mention(2), rating=4)

    await deps.queue.put([one_star, four_stars], now=clock.now())
    await workers.work_once(deps, deps.queue, "w1", claim_seconds=30, block_ms=10)

    async with storage.engine.connect() as conn:
        priorities = (await conn.execute(
            select(cases.c.priority).order_by(cases.c.id))).scalars().all()
    assert list(priorities) == ["urgent", "high"]
