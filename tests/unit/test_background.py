"""Background loops stop at one cancellation, even when a library turned it into an
error or swallowed it; a loop that will not stop is left after the grace time."""

from __future__ import annotations

import asyncio

import pytest

from socialcare.handlers.background import stop, stop_if_asked


async def _library_call(rounds: list[str], how: str) -> None:
    """A client library's call that mishandles a cancellation landing in it."""
    try:
        await asyncio.sleep(0.05)
    except asyncio.CancelledError:
        rounds.append("cancelled inside the library")
        if how == "turns it into an error":  # e.g. into its own timeout or connection error
            raise ConnectionError("connection lost") from None
        # "swallows it": returns as if the call had ended


async def _retrying_loop(rounds: list[str], how: str) -> None:
    """A loop written as socialcare's are: a failure is logged and tried again."""
    while True:
        stop_if_asked()
        try:
            await _library_call(rounds, how)
        except Exception:
            stop_if_asked()
            rounds.append("failed: trying again")


async def test_a_loop_whose_library_turns_the_cancellation_into_an_error_stops_at_once(
) -> None:
    rounds: list[str] = []
    task = asyncio.create_task(_retrying_loop(rounds, "turns it into an error"))
    await asyncio.sleep(0.01)

    async with asyncio.timeout(5):
        await stop(task, seconds=2)

    assert task.cancelled()
    assert rounds == ["cancelled inside the library"]  # not retried


async def test_a_loop_whose_library_swallows_the_cancellation_stops_at_its_next_round(
) -> None:
    rounds: list[str] = []
    task = asyncio.create_task(_retrying_loop(rounds, "swallows it"))
    await asyncio.sleep(0.01)

    async with asyncio.timeout(5):
        await stop(task, seconds=2)

    assert task.cancelled()
    assert rounds == ["cancelled inside the library"]


async def test_a_timeout_that_expired_in_a_loop_is_not_taken_for_a_stop() -> None:
    rounds = 0

    async def loop() -> None:
        nonlocal rounds
        while rounds < 3:
            stop_if_asked()
            try:
                async with asyncio.timeout(0.01):
                    await asyncio.sleep(1)
            except TimeoutError:
                stop_if_asked()
                rounds += 1

    async with asyncio.timeout(5):
        await loop()

    assert rounds == 3


@pytest.mark.parametrize("cancelled_before", [False, True],
                         ids=["stopped", "cancelled, then stopped"])
async def test_a_task_that_cleans_up_when_cancelled_is_let_finish_its_cleanup(
    cancelled_before: bool,
) -> None:
    cleaned = False

    async def closing_on_cancel() -> None:
        nonlocal cleaned
        try:
            await asyncio.sleep(10)
        finally:
            # As a database connection is closed after a cancel: cut short by a second
            # cancellation, the close is left half-done.
            await asyncio.sleep(0.8)
            cleaned = True

    task = asyncio.create_task(closing_on_cancel())
    await asyncio.sleep(0.01)
    if cancelled_before:
        task.cancel()
        await asyncio.sleep(0.1)  # in its cleanup when stop() comes
    async with asyncio.timeout(5):
        await stop(task, seconds=3)

    assert task.cancelled()
    assert cleaned


async def test_a_loop_that_never_stops_is_left_after_the_grace_time() -> None:
    released = asyncio.Event()

    async def stubborn() -> None:
        while not released.is_set():
            try:
                await asyncio.sleep(1)
            except asyncio.CancelledError:
                continue

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0.01)
    async with asyncio.timeout(5):
        await stop(task, seconds=0.6)
    left_running = not task.done()
    released.set()  # let it end, or the test's event loop could not close
    await task

    assert left_running
