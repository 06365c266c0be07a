"""Background loops stop with the app, even when a library swallowed a cancellation."""

from __future__ import annotations

import asyncio

from socialcare.handlers.background import stop


async def test_a_loop_that_takes_a_cancellation_for_an_error_is_still_stopped() -> None:
    rounds = 0

    async def retrying_loop() -> None:
        nonlocal rounds
        while True:
            rounds += 1
            try:
                await asyncio.sleep(0.05)
            except asyncio.CancelledError:
                # What a client library does when the cancel lands in its own timeout.
                if rounds == 1:
                    continue
                raise

    task = asyncio.create_task(retrying_loop())
    await asyncio.sleep(0.01)

    async with asyncio.timeout(5):
        await stop(task)

    assert task.cancelled()
    assert rounds >= 2


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
