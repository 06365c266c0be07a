"""Requests already acted on, marked in Redis so that every process sees the mark.

A request is marked before it is acted on (SET NX: of two copies arriving together
one goes on, the other is acknowledged and dropped) and stays marked for as long as
the platform may deliver it again. If acting failed because storage failed, nothing
was stored: the mark is taken back, so that a redelivery can act. Any other failure
(a messenger's answer lost after the change was made, a bug) keeps the mark: acting
twice is worse than acting once late, and a person who types a command again sends a
new request (a new timestamp, a new update) that no mark stops.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

log = logging.getLogger(__name__)

# Slack refuses a request whose signed timestamp is more than 5 minutes from its clock,
# either way: a signed request can be replayed for up to 10 minutes after it was sent.
SLACK_SECONDS = 10 * 60
# Telegram keeps an update it could not deliver for up to 24 hours.
TELEGRAM_SECONDS = 24 * 3600


def slack_key(timestamp: str, body: str, *, event_id: str | None = None) -> str:
    """Return the mark of a Slack request: an Events API event by its id (a redelivery
    is signed anew), anything else by a digest of its signed timestamp and body."""
    if event_id:
        return f"replay:slack:event:{event_id}"
    digest = hashlib.sha256(f"{timestamp}:{body}".encode()).hexdigest()
    return f"replay:slack:{digest}"


def telegram_key(bot_id: str, update_id: int) -> str:
    """Return the mark of a Telegram update (update ids are a bot's own)."""
    return f"replay:telegram:{bot_id}:{update_id}"


def storage_failed(error: BaseException) -> bool:
    """Tell whether a failure was storage's (the database or Redis): nothing was stored."""
    return isinstance(error, SQLAlchemyError | RedisError)


class Replays:
    """Marks of requests taken, shared by every process through Redis."""

    def __init__(self, redis: Redis[Any]) -> None:
        self._redis = redis

    async def take(self, key: str, *, seconds: int) -> bool:
        """Mark a request as taken; False if it was taken already (by any process).

        Without Redis the request is acted on unmarked: a click or a command must not
        fail because Redis is away, and a replay meanwhile is the lesser harm."""
        try:
            return bool(await self._redis.set(key, "1", nx=True, ex=seconds))
        except RedisError as error:
            log.warning("cannot mark request %s as taken (Redis: %s); acting on it unmarked",
                        key, error)
            return True

    async def give_back(self, key: str) -> None:
        """Take a mark back after a failure that stored nothing, so a redelivery acts."""
        try:
            await self._redis.delete(key)
        except RedisError as error:
            log.warning("cannot take back the mark of request %s (Redis: %s)", key, error)
