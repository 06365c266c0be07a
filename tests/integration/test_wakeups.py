"""A change in one process wakes the card loops of the messengers processes."""

from __future__ import annotations

import asyncio

from socialcare.handlers import background, wakeups
from tests.conftest import Storage


async def test_a_change_relayed_by_one_process_wakes_the_listeners(storage: Storage) -> None:
    changed, heard, other_heard = asyncio.Event(), asyncio.Event(), asyncio.Event()
    subscribed, other_subscribed = asyncio.Event(), asyncio.Event()
    tasks = [
        asyncio.create_task(wakeups.listen(storage.redis, heard, subscribed)),
        asyncio.create_task(wakeups.listen(storage.redis, other_heard, other_subscribed)),
        asyncio.create_task(wakeups.relay(storage.redis, changed)),
    ]
    try:
        async with asyncio.timeout(10):
            await subscribed.wait()
            await other_subscribed.wait()
        assert not heard.is_set()

        changed.set()
        async with asyncio.timeout(10):
            await heard.wait()
            await other_heard.wait()
        assert not changed.is_set()  # the relay took the change; the next one is new

        heard.clear()
        changed.set()
        async with asyncio.timeout(10):
            await heard.wait()
    finally:
        for task in tasks:
            await background.stop(task)

