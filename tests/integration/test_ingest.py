"""The ingest pipeline on real storage: dedupe, threads, brand answers."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from socialcare.bot import cases, collecting
from socialcare.bot.model import Author, EventKind, State
from socialcare.bot.pipeline import DropReason, Outcome, Pipeline
from socialcare.bot.sources import Polled
from socialcare.bot.team import Source, Team
from socialcare.storage.database import SqlUnitOfWork
from socialcare.storage.schema import cases as cases_table
from socialcare.storage.schema import events as events_table
from socialcare.storage.schema import mentions as mentions_table
from tests.conftest import T0, FakeClock, Storage
from tests.mentions import BRAND_REPLY, mention


async def _count(storage: Storage, table) -> int:  # type: ignore[no-untyped-def]
    async with storage.engine.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(table))).scalar_one()


async def test_ten_thousand_mentions_with_two_thousand_repeats_make_eight_thousand_cases(
    storage: Storage, team: Team, clock: FakeClock
) -> None:
    originals = [mention(i, f"Kcell #{i}: no signal") for i in range(8_000)]
    rng = random.Random(7)
    stream = originals + [rng.choice(originals) for _ in range(2_000)]
    rng.shuffle(stream)
    pipeline = Pipeline(team, clock=clock)
    # Two workers share the stream, as two processes would.
    other = storage.new_engine()

    async def work(batches: list[list]) -> list:  # type: ignore[type-arg]
        results = []
        for i, batch in enumerate(batches):
            uow = SqlUnitOfWork(other) if i % 2 else storage.uow()
            results += await pipeline.ingest(batch, uow=uow)
        return results

    batches = [stream[i:i + 500] for i in range(0, len(stream), 500)]
    first, second = await asyncio.gather(work(batches[0::2]), work(batches[1::2]))
    outcomes = [r.outcome for r in first + second]

    assert outcomes.count(Outcome.CREATED) == 8_000
    assert outcomes.count(Outcome.DROPPED) == 2_000
    assert {r.reason for r in first + second if r.reason} == {DropReason.DUPLICATE}
    assert await _count(storage, cases_table) == 8_000
    assert await _count(storage, mentions_table) == 8_000
    assert await _count(storage, events_table) == 8_000


async def test_a_repeat_after_a_restart_is_still_a_duplicate(
    storage: Storage, team: Team, clock: FakeClock
) -> None:
    await Pipeline(team, clock=clock).ingest([mention(1)], uow=storage.uow())

    restarted = Pipeline(team, clock=clock)
    [result] = await restarted.ingest([mention(1)], uow=SqlUnitOfWork(storage.new_engine()))

    assert result.outcome is Outcome.DROPPED
    assert result.reason is DropReason.DUPLICATE
    assert await _count(storage, cases_table) == 1


async def test_mentions_without_a_brand_are_dropped_and_the_rest_stored(
    storage: Storage, team: Team, clock: FakeClock
) -> None:
    results = await Pipeline(team, clock=clock).ingest(
        [
            mention(1, "Kcell Arena concert tonight"),
            mention(2, "#kcell, the app is down"),
            mention(3, "Мой кселл опять без связи"),
            mention(4, "nothing to see here"),
        ],
        uow=storage.uow(),
    )

    assert [r.outcome for r in results] == [
        Outcome.DROPPED, Outcome.CREATED, Outcome.CREATED, Outcome.DROPPED,
    ]
    assert results[0].reason is DropReason.NO_BRAND


async def test_a_brand_account_reply_in_the_thread_records_the_first_response(
    storage: Storage, team: Team, clock: FakeClock
) -> None:
    pipeline = Pipeline(team, clock=clock)
    [created] = await pipeline.ingest([mention("p1", minutes_ago=10)], uow=storage.uow())
    clock.advance(minutes=2)

    [answer] = await pipeline.ingest(
        [mention("r1", "We are on it, DM us", author=BRAND_REPLY, thread_id="p1", minutes_ago=3)],
        uow=storage.uow(),
    )

    assert answer.outcome is Outcome.JOINED
    assert answer.case_id == created.case_id
    assert answer.role == "agent"
    async with storage.uow() as uow:
        case = await uow.cases.get(created.case_id)
        events = await uow.events.for_case(created.case_id)
    assert case.state is State.ANSWERED
    assert case.first_response_at == T0 - _minutes(3)
    assert case.claimed_by is None
    assert events[-1].kind is EventKind.AGENT_MESSAGE
    assert events[-1].actor == "brand:@kcell_kz"


async def test_a_follow_up_joins_the_open_case_and_needs_no_brand_name(
    storage: Storage, team: Team, clock: FakeClock
) -> None:
    pipeline = Pipeline(team, clock=clock)
    [created] = await pipeline.ingest([mention("p1")], uow=storage.uow())

    [by_thread, by_parent] = await pipeline.ingest(
        [
            mention("c1", "still nothing, hello?", thread_id="p1"),
            mention("c2", "same here", parent_id="c1"),
        ],
        uow=storage.uow(),
    )

    assert (by_thread.outcome, by_thread.case_id) == (Outcome.JOINED, created.case_id)
    assert (by_parent.outcome, by_parent.case_id) == (Outcome.JOINED, created.case_id)
    assert by_thread.role == "customer"
    assert await _count(storage, cases_table) == 1


async def test_a_thread_started_and_answered_in_one_batch_is_one_answered_case(
    storage: Storage, team: Team, clock: FakeClock
) -> None:
    results = await Pipeline(team, clock=clock).ingest(
        [
            mention("p1", minutes_ago=9),
            mention("r1", "Sorry! Fixed now.", author=BRAND_REPLY, thread_id="p1", minutes_ago=1),
        ],
        uow=storage.uow(),
    )

    assert [r.outcome for r in results] == [Outcome.CREATED, Outcome.JOINED]
    async with storage.uow() as uow:
        case = await uow.cases.get(results[0].case_id)
    assert case.state is State.ANSWERED
    assert case.first_response_at == T0 - _minutes(1)


async def test_the_customer_writing_after_an_answer_starts_the_next_response_clock(
    storage: Storage, team: Team, clock: FakeClock
) -> None:
    pipeline = Pipeline(team, clock=clock)
    [created] = await pipeline.ingest([mention("p1")], uow=storage.uow())
    deps = {"uow": storage.uow(), "clock": clock, "team": team}
    await cases.claim(cases.Claim(created.case_id, "aigerim"), **deps)
    await cases.mark_answered(cases.MarkAnswered(created.case_id, "aigerim"), **deps)
    clock.advance(minutes=30)

    await pipeline.ingest(
        [mention("c1", "that did not help", thread_id="p1", published_at=clock.now())],
        uow=storage.uow(),
    )

    async with storage.uow() as uow:
        case = await uow.cases.get(created.case_id)
    assert case.state is State.CLAIMED
    assert case.claimed_by == "aigerim"
    assert case.response_cycle == 2
    assert case.response_due_at == clock.now() + _minutes(15)


async def test_the_customer_writing_after_resolution_reopens_the_case(
    storage: Storage, team: Team, clock: FakeClock
) -> None:
    pipeline = Pipeline(team, clock=clock)
    [created] = await pipeline.ingest([mention("p1")], uow=storage.uow())
    deps = {"uow": storage.uow(), "clock": clock, "team": team}
    await cases.mark_answered(cases.MarkAnswered(created.case_id, "aigerim"), **deps)
    await cases.resolve(cases.Resolve(created.case_id, "aigerim"), **deps)
    clock.advance(hours=2)

    [again] = await pipeline.ingest(
        [mention("c1", "it broke again", thread_id="p1", published_at=clock.now())],
        uow=storage.uow(),
    )

    assert again.case_id == created.case_id
    async with storage.uow() as uow:
        case = await uow.cases.get(created.case_id)
        kinds = [e.kind for e in await uow.events.for_case(created.case_id)]
    assert case.state is State.REOPENED
    assert case.claimed_by is None
    assert kinds[-2:] == [EventKind.CUSTOMER_MESSAGE, EventKind.REOPENED]


async def test_own_account_posts_outside_a_case_thread_are_not_cases(
    storage: Storage, team: Team, clock: FakeClock
) -> None:
    [result] = await Pipeline(team, clock=clock).ingest(
        [mention("ad1", "Kcell: new tariff!", author=Author(handle="@KCELL_KZ"))],
        uow=storage.uow(),
    )

    assert result.reason is DropReason.OWN_ACCOUNT


async def test_the_sla_clock_starts_when_the_customer_published(
    storage: Storage, team: Team, clock: FakeClock
) -> None:
    [main, extra] = await Pipeline(team, clock=clock).ingest(
        [
            mention("m1", minutes_ago=6),
            mention("f1", "Актив Казахстан списал деньги", source="forums", minutes_ago=20),
        ],
        uow=storage.uow(),
    )

    async with storage.uow() as uow:
        main_case = await uow.cases.get(main.case_id)
        extra_case = await uow.cases.get(extra.case_id)
        created = (await uow.events.for_case(main.case_id))[0]
    assert main_case.response_due_at == T0 + _minutes(15 - 6)
    assert main_case.collector_lag_seconds == 6 * 60
    assert created.data["lag_seconds"] == 360
    assert extra_case.response_due_at == T0 + _minutes(60 - 20)
    assert extra_case.resolve_due_at == T0 + _minutes(240 - 20)
    assert extra_case.platform == "forum"  # the source's platform when none is given


async def test_urgent_keywords_raise_the_priority(
    storage: Storage, team: Team, clock: FakeClock
) -> None:
    [urgent, normal] = await Pipeline(team, clock=clock).ingest(
        [mention(1, "Kcell, I'm taking you to СУД"), mention(2, "Kcell, hi")], uow=storage.uow()
    )

    async with storage.uow() as uow:
        found = await uow.cases.get_many([urgent.case_id, normal.case_id])
    assert found[urgent.case_id].priority.value == "urgent"
    assert found[normal.case_id].priority.value == "high"


def _minutes(n: float):  # type: ignore[no-untyped-def]
    from datetime import timedelta

    return timedelta(minutes=n)


async def test_nul_in_ids_thread_and_platform_is_dropped_before_dedupe_on_every_back_end(
    storage: Storage, team: Team, clock: FakeClock
) -> None:
    pipeline = Pipeline(team, clock=clock)
    first = await pipeline.ingest([mention("a\x00b", thread_id="t\x001", platform="vk\x00")],
                                  uow=storage.uow())
    again = await pipeline.ingest([mention("ab")], uow=storage.uow())

    async with storage.uow() as uow:
        [stored] = await uow.mentions.for_case(first[0].case_id or 0)
    assert first[0].outcome is Outcome.CREATED
    assert again[0].reason is DropReason.DUPLICATE
    assert (stored.external_id, stored.thread_key, stored.platform) == ("ab", "t1", "vk")


async def test_a_polled_mention_dated_year_1_or_9999_is_stored_at_the_time_it_came(
    storage: Storage, team: Team, clock: FakeClock
) -> None:
    results = await Pipeline(team, clock=clock).ingest([
        mention(1, published_at=datetime.fromisoformat("0001-01-01T00:00:00+05:00")),
        mention(2, published_at=datetime.fromisoformat("9999-12-31T23:59:59-05:00")),
    ], uow=storage.uow())

    async with storage.uow() as uow:
        found = await uow.cases.get_many([r.case_id or 0 for r in results])
    assert [r.outcome for r in results] == [Outcome.CREATED, Outcome.CREATED]
    assert [case.published_at for case in found.values()] == [clock.now(), clock.now()]


async def test_a_polled_mention_with_an_absurdly_long_id_is_dropped_and_the_rest_stored(
    storage: Storage, team: Team, clock: FakeClock
) -> None:
    # A social API may answer ids of any length; the store keeps 256 characters.
    results = await Pipeline(team, clock=clock).ingest([
        mention("x" * 10_000),
        mention("ok-1", thread_id="t" * 300),
        mention("ok-2", parent_id="p" * 257),
        mention("\x00\x01"),  # nothing left of it once cleaned
        mention("ok-3", platform="v" * 500, author=Author(
            id="i" * 1000, name="n" * 5000, handle="h" * 1000)),
        mention("x" * 256),
    ], uow=storage.uow())

    assert [(r.outcome, r.reason) for r in results] == [
        (Outcome.DROPPED, DropReason.BAD_ID), (Outcome.DROPPED, DropReason.BAD_ID),
        (Outcome.DROPPED, DropReason.BAD_ID), (Outcome.DROPPED, DropReason.BAD_ID),
        (Outcome.CREATED, None), (Outcome.CREATED, None)]
    async with storage.uow() as uow:
        [stored] = await uow.mentions.for_case(results[4].case_id or 0)
    assert (len(stored.platform), len(stored.author.id or ""), len(stored.author.name or ""),
            len(stored.author.handle or "")) == (64, 256, 512, 256)


async def test_a_poll_that_finds_an_absurdly_long_id_stores_the_rest_and_stays_healthy(
    storage: Storage, team: Team, clock: FakeClock
) -> None:
    class Poller:
        async def poll(self, source: Source, cursor: Mapping[str, Any]) -> Polled:
            return Polled([mention("y" * 100_000, source=source.name),
                           mention("fine", source=source.name)], {"since": "fine"})

    source = team.sources[0]
    collected = await collecting.poll(source, Poller(), uow=storage.uow,
                                      pipeline=Pipeline(team, clock=clock), clock=clock)

    async with storage.uow() as uow:
        state = await uow.sources.get(source.name)
    assert collected.error is None and collected.created == 1
    assert (state.failures, state.cursor) == (0, {"since": "fine"})
