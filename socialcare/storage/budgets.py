"""Rate budgets in Redis, shared by every process: token buckets, taken atomically.

Each limit is a token bucket that holds `capacity` calls, starts full and gets one
call back every `interval` seconds — the shape of the platforms' own limits (Slack:
one post a second per channel with short bursts; Telegram: 20 a minute per group,
which python-telegram-bot's limiter also keeps as a bucket of 20 draining at one per
3 s). A bucket is kept as its theoretical arrival time (GCRA): one number a key.

A call may go only if every limit it counts against has a token; then it is taken
from all of them at once, inside one Lua script, so two processes can never both
take the last one. A caller may also book the first slot to come (within a bound):
the slot is taken now and the caller waits for it, so that a channel's calls go
out exactly as fast as its limits allow — each slot is reserved before it comes, and
the time the caller spends between calls costs none of the pace. A call that went
out later than the moment its token was counted from (the process was busy) moves
its buckets on by as much when the caller says it was sent, as the platform's own
bucket, which counts from the call's arrival, has moved. Redis's own clock is used,
so processes on different hosts agree.

A call that has to wait for a bucket's next slot waits `margin` more: the platform
stamps a call when it arrives, a little after Redis counted it, and the next one may
arrive sooner after it than they were counted. The margin delays that one call; it
does not slow the pace (the bucket counts the slot, not the late call).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from redis.asyncio import Redis

from socialcare.bot.ports import Booking, RateLimit

# Redis key of a bucket's theoretical arrival time (milliseconds, Redis's clock).
_PREFIX = "bucket:"
HOLDS = "budget:hold"
MARGIN_SECONDS = 0.2

# KEYS: one bucket per limit, then its hold key. ARGV: within (ms), margin (ms), then
# per limit its interval and tolerance ((capacity - 1) × interval) in ms.
# Returns {taken (1/0), wait in ms}.
_BOOK = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local within = tonumber(ARGV[1])
local margin = tonumber(ARGV[2])
local count = #KEYS / 2
local start = now   -- the slot every bucket and hold allows
local edge = now    -- when the call goes: a bucket's future slot plus the margin
local tats = {}
local counted = {}
for i = 1, count do
    local tolerance = tonumber(ARGV[2 + 2 * i])
    local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
    tats[i] = tat
    start = math.max(start, tat - tolerance)
    if tat - tolerance > now then
        edge = math.max(edge, tat - tolerance + margin)
    end
    local held = tonumber(redis.call('HGET', 'budget:hold', KEYS[count + i]) or '0')
    start = math.max(start, held)
    edge = math.max(edge, held)
end
local wait = edge - now
if wait > within then
    return {0, wait}
end
for i = 1, count do
    local interval = tonumber(ARGV[1 + 2 * i])
    counted[i] = math.floor(math.max(tats[i], start))
    local tat = math.max(tats[i], start) + interval
    redis.call('SET', KEYS[i], tat, 'PX', math.max(1, math.ceil(tat - now)))
end
return {1, wait, unpack(counted)}
"""

# KEYS: one bucket per limit. ARGV: per limit, the moment its token was counted from.
_SENT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i, key in ipairs(KEYS) do
    local late = now - tonumber(ARGV[i])
    local tat = tonumber(redis.call('GET', key) or '0')
    if late > 0 and tat > now then
        tat = tat + late
        redis.call('SET', key, tat, 'PX', math.max(1, math.ceil(tat - now)))
    end
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

# KEYS: hold keys. Returns the milliseconds left of each (0: not held).
_HELD = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local left = {}
for i, key in ipairs(KEYS) do
    local held = tonumber(redis.call('HGET', 'budget:hold', key) or '0')
    left[i] = math.max(0, held - now)
end
return left
"""


class RedisRateBudgets:
    """`RateBudgets` on Redis (or the in-process stand-in)."""

    def __init__(self, redis: Redis[Any], *, margin: float = MARGIN_SECONDS) -> None:
        self._redis = redis
        self._margin_ms = int(margin * 1000)

    async def acquire(self, limits: Sequence[RateLimit]) -> float:
        """Take one call from every limit if all have room and return 0; else take
        nothing and return the seconds to wait."""
        booking = await self.book(limits, within=0.0)
        return 0.0 if booking.taken else booking.wait

    async def book(self, limits: Sequence[RateLimit], *, within: float) -> Booking:
        """Take the first slot every limit has, if it comes within `within` seconds
        (the caller then waits for it); else take nothing."""
        if not limits:
            return Booking(taken=True, wait=0.0)
        keys = [f"{_PREFIX}{limit.key}" for limit in limits]
        keys += [f"budget:{limit.key}" for limit in limits]
        args: list[Any] = [int(within * 1000), self._margin_ms]
        for limit in limits:
            interval_ms = limit.interval * 1000
            args += [interval_ms, (limit.capacity - 1) * interval_ms]
        taken, wait_ms, *counted = await self._redis.eval(_BOOK, len(keys), *keys, *args)
        return Booking(taken=bool(int(taken)), wait=max(0.0, float(wait_ms) / 1000),
                       counted_from=tuple(int(c) for c in counted))

    async def sent(self, limits: Sequence[RateLimit], booking: Booking) -> None:
        """Tell the budgets that a booked call went out now: one that went later than
        its token was counted from moves its buckets on by as much (the platform's
        own buckets count it from when it arrived)."""
        if not limits or len(booking.counted_from) != len(limits):
            return
        keys = [f"{_PREFIX}{limit.key}" for limit in limits]
        await self._redis.eval(_SENT, len(keys), *keys, *booking.counted_from)

    async def hold_off(self, key: str, seconds: float) -> None:
        """Let nothing through under `key` for `seconds`."""
        await self._redis.eval(_HOLD, 1, f"budget:{key}", int(seconds * 1000))

    async def held(self, keys: Collection[str]) -> dict[str, float]:
        """Return the keys among these that are held off now, with the seconds left."""
        keys = list(keys)
        if not keys:
            return {}
        left = await self._redis.eval(_HELD, len(keys), *(f"budget:{key}" for key in keys))
        return {key: int(ms) / 1000 for key, ms in zip(keys, left, strict=True) if int(ms) > 0}
