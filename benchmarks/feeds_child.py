"""Benchmark k's child: poll every hostile feed at once, then print its memory.

    python -m benchmarks.feeds_child ROOT_URL

Imports only what polling a feed needs (the collector, aiohttp, feedparser), so that
its resident set before polling is the baseline the peak is compared with. Prints one
JSON line: the resident set before polling and the peak (VmHWM), in kB, and what each
poll came to.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import aiohttp

from socialcare.adapters.clock import SystemClock
from socialcare.adapters.collectors.rss import FeedCollector, Options
from socialcare.bot.model import Tier
from socialcare.bot.team import Source

PATHS = ("/huge.xml", "/malformed.xml", "/bomb.xml")
SOURCE = Source(name="hostile", kind="rss", platform="forum", tier=Tier.EXTRA,
                poll_seconds=300)


def status_kb(field: str) -> int:
    """Return a VmXXX field of /proc/self/status in kB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    raise LookupError(field)


async def child(root: str) -> dict[str, Any]:
    """Poll every hostile feed at once; return the memory before and at the peak."""
    async with aiohttp.ClientSession() as session:
        collectors = [FeedCollector(session, Options.model_validate({"url": root + path}),
                                    clock=SystemClock()) for path in PATHS]
        before = status_kb("VmRSS")
        polled = await asyncio.gather(*(c.poll(SOURCE, {}) for c in collectors),
                                      return_exceptions=True)
    outcomes = {path.strip("/"): (f"failed: {str(p)[:60]}" if isinstance(p, BaseException)
                                  else f"{len(p.cursor.get('seen') or [])} items read")
                for path, p in zip(PATHS, polled, strict=True)}
    return {"before_kb": before, "peak_kb": status_kb("VmHWM"), "outcomes": outcomes}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(child(sys.argv[1]))))
