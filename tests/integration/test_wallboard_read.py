"""The wallboard's one statement: an empty queue, piled-up rows of changes, a read
outside a transaction. (The truth of its rows and counts, over random histories, is
held in test_reports.py.)"""

from __future__ import annotations

import pytest
from sqlalchemy import func, insert, select

from socialcare.bot.model import Tier
from socialcare.bot.pipeline import Pipeline
from socialcare.bot.reports import Group, parse_period
from socialcare.bot.team import Team
from socialcare.storage import wallboard
from socialcare.storage.console import BoardRead
from socialcare.storage.database import SqlUnitOfWork
from socialcare.storage.schema import wallboard_open
from tests.conftest import FakeClock, Storage
from tests.mentions import mention


async def _read(storage: Storage, clock: FakeClock, team: Team) -> BoardRead:
    async with SqlUnitOfWork(storage.engine, reads_only=True) as uow:
        return await uow.console.board(
            rows=100, period=parse_period("today", now=clock.now(), zone=team.zone),
            now=clock.now())


async def test_an_empty_queue_reads_as_the_figures_alone(
    storage: Storage, clock: FakeClock, team: Team
) -> None:
    read = await _read(storage, clock, team)

    assert read.head == []
    assert read.figures == wallboard.Figures(open={}, share=Group("all"), to_fold=False)


async def test_changes_piled_past_the_limit_are_reported_and_fold_to_the_same_counts(
    storage: Storage, clock: FakeClock, team: Team
) -> None:
    await Pipeline(team, clock=clock).ingest([mention(n) for n in range(3)], uow=storage.uow())
    before = await _read(storage, clock, team)
    # Changes that cancel out, as many claims and releases leave behind.
    async with storage.engine.begin() as conn:
        await conn.execute(insert(wallboard_open), [
            {"tier": Tier.MAIN.value, "open": 1 if n % 2 else -1}
            for n in range(wallboard.FOLD_ROWS)])
    piled = await _read(storage, clock, team)
    async with storage.uow() as uow:
        await uow.console.fold_counts()
        await uow.commit()
    folded = await _read(storage, clock, team)
    async with storage.engine.connect() as conn:
        left = (await conn.execute(select(func.count()).select_from(wallboard_open))).scalar()

    assert [case.id for case, _ in before.head] == [case.id for case, _ in folded.head]
    assert len(before.head) == 3 and all(first is not None for _, first in before.head)
    assert before.figures.open == {Tier.MAIN: 3}
    assert not before.figures.to_fold
    assert (piled.figures.open, piled.figures.to_fold) == ({Tier.MAIN: 3}, True)
    assert (folded.figures.open, folded.figures.to_fold) == ({Tier.MAIN: 3}, False)
    assert left == 1


async def test_a_unit_of_work_that_only_reads_refuses_to_commit(storage: Storage) -> None:
    async with SqlUnitOfWork(storage.engine, reads_only=True) as uow:
        with pytest.raises(RuntimeError):
            await uow.commit()
