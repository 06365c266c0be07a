"""Wake the card loops of other processes when a case changes.

In a layout of several processes, the process that changes a case (a worker storing a
mention, the scheduler at an SLA step) is often not one that keeps the cards. It
publishes the change on a Redis channel, and every process with the messengers role
listens and looks at once, instead of at its next idle round. A lost message costs
only that wait: the card loops still look every second on their own.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web
from redis.asyncio import Redis
from redis.exceptions import RedisError

from socialcare.deps import Deps, Role
from socialcare.handlers import background

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 30.0


def channel(redis: Redis[Any]) -> str:
    """The channel of this Redis database (channels are shared by all its databases)."""
    return f"socialcare:{redis.connection_pool.connection_kwargs.get('db', 0)}:cards"


async def relay(redis: Redis[Any], changes: asyncio.Event) -> None:
    """Publish each change set on `changes` (changes close together go as one)."""
    backoff = 1.0
    while True:
        background.stop_if_asked()
        await changes.wait()
        changes.clear()
        try:
            await redis.publish(channel(redis), "changed")
            backoff = 1.0
        except RedisError as error:
            background.stop_if_asked()
            log.warning("cannot tell the messengers that cards changed (%s); they will see "
                        "it within a second", type(error).__name__)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)


async def listen(redis: Redis[Any], changes: asyncio.Event,
                 subscribed: asyncio.Event | None = None) -> None:
    """Set `changes` whenever another process publishes a change."""
    backoff = 1.0
    while True:
        background.stop_if_asked()
        try:
            async with redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                await pubsub.subscribe(channel(redis))
                if subscribed is not None:
                    subscribed.set()
                backoff = 1.0
                async for _message in pubsub.listen():
                    changes.set()
        except RedisError as error:
            background.stop_if_asked()
            log.warning("not hearing of other processes' changes (%s); listening again in "
                        "%.0f s", type(error).__name__, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)


def register(app: web.Application, deps: Deps) -> None:
    """Listen in a messengers process, relay in the others, when they share a Redis."""
    if deps.settings.redis_url is None:
        return  # the in-process Redis: one process, which wakes its own card loop
    if Role.MESSENGERS in deps.roles:
        background.run_while_serving(app, "card-wakeups",
                                     lambda: listen(deps.redis, deps.card_changes))
    else:
        background.run_while_serving(app, "card-changes",
                                     lambda: relay(deps.redis, deps.card_changes))
