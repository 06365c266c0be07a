"""One thread, one case: two brand-new mentions of one brand-new thread, stored by two
workers at the same moment, make one case — whether they share the thread id or the
second names the first only as its parent."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from sqlalchemy import func, select

from socialcare.bot.model import RawMention
from socialcare.bot.pipeline import Outcome, Pipeline
from socialcare.bot.team import Team
from socialcare.storage.database import SqlUnitOfWork
from socialcare.storage.schema import cases, mentions
from tests.conftest import FakeClock, Storage
from tests.mentions import mention

ROUNDS = 50
Pair = Callable[[int], tuple[RawMention, RawMention]]


def _by_thread_id(n: int) -> tuple[RawMention, RawMention]:
    return (mention(f"a{n}", "Kcell, no signal", thread_id=f"t{n}"),
            mention(f"b{n}", "Kcell, same here", thread_id=f"t{n}"))


def _reply_by_parent_id(n: int) -> tuple[RawMention, RawMention]:
    return (mention(f"a{n}", "Kcell, no signal"),
            mention(f"b{n}", "Kcell, same here", parent_id=f"a{n}"))


def _reply_by_parent_id_to_a_threaded_post(n: int) -> tuple[RawMention, RawMention]:
    return (mention(f"a{n}", "Kcell, no signal", thread_id=f"t{n}"),
            mention(f"b{n}", "Kcell, same here", parent_id=f"a{n}"))


@pytest.mark.parametrize(
    "pair", [_by_thread_id, _reply_by_parent_id, _reply_by_parent_id_to_a_threaded_post],
    ids=["same thread id", "reply by parent id", "reply by parent id to a threaded post"])
async def test_two_new_mentions_of_a_new_thread_in_concurrent_batches_make_one_case(
    storage: Storage, team: Team, clock: FakeClock, pair: Pair
) -> None:
    pipeline = Pipeline(team, clock=clock)
    other = storage.new_engine()  # a second worker process's connections
    joined = 0
    for n in range(ROUNDS):
        first, second = pair(n)
        one, two = await asyncio.gather(
            pipeline.ingest([first], uow=storage.uow()),
            pipeline.ingest([second], uow=SqlUnitOfWork(other)),
        )
        outcomes = sorted(r.outcome for r in one + two)
        assert outcomes == [Outcome.CREATED, Outcome.JOINED], (n, one, two)
        assert one[0].case_id == two[0].case_id, n
        joined += 1

    async with storage.engine.connect() as conn:
        made = (await conn.execute(select(func.count()).select_from(cases))).scalar_one()
        stored = (await conn.execute(select(func.count()).select_from(mentions))).scalar_one()
    assert joined == made == ROUNDS
    assert stored == 2 * ROUNDS


async def test_a_post_that_arrives_after_a_reply_to_it_joins_the_reply_s_case(
    storage: Storage, team: Team, clock: FakeClock
) -> None:
    pipeline = Pipeline(team, clock=clock)

    [reply] = await pipeline.ingest([mention("b1", "Kcell, same here", parent_id="a1")],
                                    uow=storage.uow())
    [post] = await pipeline.ingest([mention("a1", "Kcell, no signal", thread_id="t1")],
                                   uow=storage.uow())
    [later] = await pipeline.ingest([mention("c1", "any news?", thread_id="t1")],
                                    uow=storage.uow())
    [both] = [await pipeline.ingest(
        [mention("b2", "Kcell, me too", parent_id="a2"), mention("a2", "Kcell, down")],
        uow=storage.uow())]

    assert reply.outcome is Outcome.CREATED
    assert (post.outcome, post.case_id) == (Outcome.JOINED, reply.case_id)
    assert (later.outcome, later.case_id) == (Outcome.JOINED, reply.case_id)
    assert [r.outcome for r in both] == [Outcome.CREATED, Outcome.JOINED]
    assert both[0].case_id == both[1].case_id
