"""Stopping the app: each background loop ends at the first cancellation, and a stop
while the loops wait for the database leaves nothing running behind it (a task left
running keeps the process from ever exiting)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest

from socialcare.bot.actions import ActionKind, CaseAction
from socialcare.handlers.background import STOP_SECONDS
from socialcare.storage.database import SqlUnitOfWork, create_engine
from tests.conftest import TEST_REDIS_URL, FlowingClock, database_url
from tests.e2e.chat import (
    AIGERIM_SLACK,
    OUTLIVE_GRACE,
    SLACK_CHANNEL,
    Chat,
    eventually,
    mention,
    minutes_ago,
    running_chat,
)

# The loops of a process with every role and both messengers, by task name.
LOOPS = {"cards", "announcements", "scheduler", "incidents", "reports", "collectors",
         "worker", "wallboard"} | (
    {"card-wakeups"} if TEST_REDIS_URL else set())
T = TypeVar("T")


async def _still_running(*, within: float) -> list[asyncio.Task[object]]:
    """Return the tasks (but this one) still running after waiting up to `within` s."""
    others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    if others:
        await asyncio.wait(others, timeout=within)
    return [task for task in others if not task.done()]


async def _hold_the_database(chat: Chat, on_server: str, *,
                             seconds: float) -> asyncio.Task[None]:
    """Hold a lock — SQLite's write lock, or what the statement `on_server` takes on a
    database server — and return the task that lets it go `seconds` later."""
    holder = await chat.deps.engine.connect()
    if holder.dialect.name == "sqlite":
        await holder.exec_driver_sql("SELECT 1")  # in BEGIN IMMEDIATE: the write lock
    else:
        await holder.exec_driver_sql(on_server)

    async def release_later() -> None:
        await asyncio.sleep(seconds)
        await holder.rollback()
        await holder.close()

    return asyncio.create_task(release_later())


async def _after_the_stop(tmp_path: Path,
                          read: Callable[[SqlUnitOfWork], Awaitable[T]]) -> T:
    """Read what the stopped app left in its database, through a unit of work of a
    fresh engine (the app's own is closed)."""
    engine = create_engine(database_url(tmp_path))
    try:
        async with SqlUnitOfWork(engine) as uow:
            return await read(uow)
    finally:
        await engine.dispose()


async def test_every_loop_ends_at_one_cancellation_in_the_middle_of_its_work(
    tmp_path: Path, flowing_clock: FlowingClock
) -> None:
    async with running_chat(tmp_path, flowing_clock) as chat:
        # Work for the loops: cases to post cards for, timers to arm, the wallboard.
        await chat.ingest(*(mention(f"ig-{n}", published=minutes_ago(flowing_clock, n))
                            for n in range(1, 9)))
        loops = {task.get_name(): task for task in asyncio.all_tasks()
                 if task.get_name() in LOOPS}
        assert set(loops) == LOOPS

        for task in loops.values():
            task.cancel()
        _, pending = await asyncio.wait(loops.values(), timeout=STOP_SECONDS)

        assert sorted(task.get_name() for task in pending) == []
        assert all(task.cancelled() for task in loops.values())


async def test_a_stop_while_the_loops_wait_for_the_database_leaves_nothing_running(
    tmp_path: Path, flowing_clock: FlowingClock
) -> None:
    async with running_chat(tmp_path, flowing_clock) as chat:
        await chat.ingest(mention("ig-1", published=minutes_ago(flowing_clock, 2)))
        # Released long after the stop has begun: every loop met the lock, and is stopped
        # while its query waits (a loop cancelled then is closing its connection).
        releasing = await _hold_the_database(
            chat, "LOCK TABLE cases, cards IN ACCESS EXCLUSIVE MODE", seconds=4)
        await asyncio.sleep(1.5)  # the loops' next rounds wait for the lock
    await releasing

    assert await _still_running(within=STOP_SECONDS) == []


async def test_a_click_acknowledged_as_the_stop_begins_is_acted_on_before_the_database_closes(
    tmp_path: Path, flowing_clock: FlowingClock
) -> None:
    # On PostgreSQL only the claim waits (for the case's row); on SQLite the whole
    # database is locked, so the loops' own stop waits for the lock too and the click's
    # work ends with them either way.
    async with running_chat(tmp_path, flowing_clock) as chat:
        await chat.ingest(mention("ig-1", published=minutes_ago(flowing_clock, 2)))
        await eventually(lambda: chat.slack_cards())
        # On a server the case's row alone: the loops go on, only the claim waits. Let
        # go well into the stop: later than a task left behind is given to end after it.
        releasing = await _hold_the_database(
            chat, "SELECT id FROM cases WHERE id = 1 FOR UPDATE", seconds=OUTLIVE_GRACE + 4)
        # Acknowledged at once; Bolt works on it in a task of its own, which waits for
        # the lock — and Slack will never send this click again.
        delivery = await chat.slack_send(chat.slack.block_actions(
            action_id=CaseAction(ActionKind.CLAIM, 1).pack(), channel=SLACK_CHANNEL,
            user=AIGERIM_SLACK))
        assert delivery.status == 200
        await asyncio.sleep(0.5)
    await releasing

    case = await _after_the_stop(tmp_path, lambda uow: uow.cases.get(1))
    assert case.claimed_by == "aigerim"


async def test_a_task_left_running_after_the_stop_fails_the_test_naming_it(
    tmp_path: Path, flowing_clock: FlowingClock
) -> None:
    left: list[asyncio.Task[None]] = []
    with pytest.raises(AssertionError, match=r"outlived the app's stop.*left behind"):
        async with running_chat(tmp_path, flowing_clock):
            left.append(asyncio.create_task(asyncio.sleep(3600), name="left behind"))

    assert left[0].cancelled()  # not left to the event loop's close


async def test_mentions_posted_as_the_stop_begins_are_stored_before_the_database_closes(
    tmp_path: Path, flowing_clock: FlowingClock
) -> None:
    # The request waits for the mentions' table (on SQLite, for the whole database)
    # when the stop begins; its answer may be lost with the stop, its mentions not.
    async with running_chat(tmp_path, flowing_clock) as chat:
        releasing = await _hold_the_database(
            chat, "LOCK TABLE mentions IN ACCESS EXCLUSIVE MODE", seconds=OUTLIVE_GRACE + 4)
        posting = asyncio.create_task(chat.ingest(
            mention("ig-late", published=minutes_ago(flowing_clock, 2))))
        await asyncio.sleep(0.5)
    await releasing
    await asyncio.gather(posting, return_exceptions=True)

    stored = await _after_the_stop(
        tmp_path, lambda uow: uow.mentions.existing({("webhook", "ig-late")}))
    assert stored == {("webhook", "ig-late")}
