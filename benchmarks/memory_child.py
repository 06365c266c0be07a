"""The memory benchmark's child: run socialcare for a while, then print its memory.

    python -m benchmarks.memory_child '{"database_url": …, "redis_url": …, "port": …,
                                        "endpoints": {…}, "seconds": 30}'

Prints one JSON line: the peak resident set (VmHWM), getrusage's ru_maxrss, the
resident set at the end, all in kB. Imports only what the app itself needs.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks import mentions, running

SAMPLE_SECONDS = 0.5
_READ = ("Кселл, верните деньги за роуминг", "Кселлдің интернеті нашар",
         "Kcell, why is there no 4G in Almaty?")


def _status_kb(field: str) -> int:
    """Return a VmXXX field of /proc/self/status in kB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise LookupError(field)


async def _child(args: dict[str, Any]) -> dict[str, Any]:
    """Run the app for `seconds`; return its memory figures."""
    config = running.settings(args["database_url"], args["redis_url"], port=args["port"],
                              messengers=running.Endpoints(**args["endpoints"]))
    samples = []
    started = time.perf_counter()
    async with running.serving(config) as app:
        ready = time.perf_counter() - started
        # A few mentions in Russian, Kazakh and English, so that the running app holds
        # what reading them loads (the language detector's models) as it would live.
        published = datetime.now(UTC) - timedelta(minutes=1)
        async with aiohttp.ClientSession() as session:
            await running.post_ingest(session, app.url, [
                mentions.mention(n, published=published, prefix="memory", text=text)
                for n, text in enumerate(_READ)])
        deadline = time.monotonic() + args["seconds"]
        while time.monotonic() < deadline:
            await asyncio.sleep(SAMPLE_SECONDS)
            samples.append(_status_kb("VmRSS"))
    return {
        "peak_kb": _status_kb("VmHWM"),
        "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "end_kb": samples[-1] if samples else _status_kb("VmRSS"),
        "startup_seconds": round(ready, 2),
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(_child(json.loads(sys.argv[1])))))
