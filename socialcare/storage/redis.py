"""Redis, or with REDIS_URL unset an in-process stand-in with the same API.

Redis holds what several processes must share and may lose without harm: leases
that keep two schedulers from doing the same sweep, rate budgets, queues. The
truth stays in the database.
"""

from __future__ import annotations

import secrets
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from redis.asyncio import Redis

# Delete the key only if it still holds our token: a lease that expired and was
# taken by another process must not be released by us.
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""


def connect(url: str | None) -> Redis[Any]:
    """Return a client for the Redis at `url`, or an in-process stand-in if None."""
    if url is None:
        return _stand_in().FakeAsyncRedis(decode_responses=True)
    return Redis.from_url(url, decode_responses=True, health_check_interval=30)


def _stand_in() -> Any:
    """Import fakeredis (not loaded where a real Redis is used) without numpy.

    fakeredis offers Redis's vector sets when it can import numpy, and so loads it
    (20 MB of the embedded default's memory) at its own import; socialcare uses no
    vector set. numpy is unimportable for that import alone, as on a machine without
    it — which fakeredis supports — and importable again right after (the charts)."""
    if "fakeredis" in sys.modules or "numpy" in sys.modules:
        import fakeredis

        return fakeredis
    sys.modules["numpy"] = None  # type: ignore[assignment]
    try:
        import fakeredis
    finally:
        if sys.modules.get("numpy", False) is None:
            del sys.modules["numpy"]
    return fakeredis


@asynccontextmanager
async def lease(redis: Redis[Any], name: str, *, seconds: float) -> AsyncIterator[bool]:
    """Hold `name` for at most `seconds` if nobody else holds it; yield whether we do."""
    token = secrets.token_hex(8)
    held = bool(await redis.set(f"lease:{name}", token, nx=True, px=int(seconds * 1000)))
    try:
        yield held
    finally:
        if held:
            await redis.eval(_RELEASE, 1, f"lease:{name}", token)
