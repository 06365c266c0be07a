"""Rate budgets in Redis, shared by every process: sliding windows, taken atomically.

Each limit is a sorted set of the moments calls were made. A call may go only if
every limit it counts against has room in its window; then it is recorded in all of
them at once, inside one Lua script, so two processes can never both take the last
slot. Redis's own clock is used, so processes on different hosts agree.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis

from socialcare.bot.ports import RateLimit

# KEYS: one window per limit. ARGV: a unique member, then rate and window (ms) per key.
# Returns 0 when the call was taken, else the milliseconds until every window has room.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local wait = 0
for i, key in ipairs(KEYS) do
    local rate = tonumber(ARGV[2 * i])
    local window = tonumber(ARGV[2 * i + 1])
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
    local blocked = tonumber(redis.call('HGET', 'budget:hold', key) or '0')
    if blocked > now then
        wait = math.max(wait, blocked - now)
    end
    if redis.call('ZCARD', key) >= rate then
        local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
        wait = math.max(wait, tonumber(oldest[2]) + window - now)
    end
end
if wait > 0 then
    return wait
end
for i, key in ipairs(KEYS) do
    local window = tonumber(ARGV[2 * i + 1])
    redis.call('ZADD', key, now, ARGV[1] .. ':' .. now)
    redis.call('PEXPIRE', key, window)
end
return 0
"""

_HOLD = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local until_ms = now + tonumber(ARGV[1])
local current = tonumber(redis.call('HGET', 'budget:hold', KEYS[1]) or '0')
if until_ms > current then
    redis.call('HSET', 'budget:hold', KEYS[1], until_ms)
end
return until_ms
"""


class RedisRateBudgets:
    """`RateBudgets` on Redis (or the in-process stand-in)."""

    def __init__(self, redis: Redis[Any]) -> None:
        self._redis = redis

    async def acquire(self, limits: Sequence[RateLimit]) -> float:
        """Take one call from every limit if all have room and return 0; else take
        nothing and return the seconds to wait."""
        if not limits:
            return 0.0
        keys = [f"budget:{limit.key}" for limit in limits]
        args: list[Any] = [secrets.token_hex(6)]
        for limit in limits:
            args += [limit.rate, int(limit.per_seconds * 1000)]
        wait_ms = await self._redis.eval(_ACQUIRE, len(keys), *keys, *args)
        return int(wait_ms) / 1000

    async def hold_off(self, key: str, seconds: float) -> None:
        """Let nothing through under `key` for `seconds`."""
        await self._redis.eval(_HOLD, 1, f"budget:{key}", int(seconds * 1000))
