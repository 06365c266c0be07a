"""A benchmark's server in a process of its own: socialcare whole, or a bare slack-bolt
app that only acks, so that the two sides of a comparison share no event loop, no
garbage collector and no interpreter with each other or with the benchmark.

    python -m benchmarks.serve_child '{"kind": "socialcare", "database_url": …,
                                       "redis_url": …, "port": …, "endpoints": {…}}'
    python -m benchmarks.serve_child '{"kind": "bare", "port": …, "endpoints": {…}}'

Prints one line `ready` once it listens, serves until its standard input closes, then
prints one JSON line: its garbage collections (count and the longest pause of each
generation, the sum of the pauses) while serving, and its peak resident set in kB.
With SOCIALCARE_PROFILE=path it runs under pyinstrument and writes the profile there
(and its session, for `pyinstrument --load`, beside it).
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import re
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from benchmarks import running


class GcWatch:
    """Times every collection of the garbage collector (gc.callbacks)."""

    def __init__(self) -> None:
        self.pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
        self._began = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
        else:
            self.pauses[info["generation"]].append(time.perf_counter() - self._began)

    def summary(self) -> dict[str, Any]:
        return {
            f"gen{gen}": {"count": len(p), "max_ms": round(max(p, default=0.0) * 1000, 2)}
            for gen, p in self.pauses.items()
        } | {"total_ms": round(sum(sum(p) for p in self.pauses.values()) * 1000, 1),
             "tracked_objects": len(gc.get_objects()), "frozen": gc.get_freeze_count()}


@asynccontextmanager
async def _bare(args: dict[str, Any]) -> AsyncIterator[None]:
    from aiohttp import web
    from slack_bolt.async_app import AsyncApp
    from slack_sdk.web.async_client import AsyncWebClient

    from socialcare.foreground import Foreground
    from socialcare.handlers.slack import http_route
    from socialcare.main import settle_memory

    endpoints = running.Endpoints(**args["endpoints"])
    assert endpoints.slack_signing_secret is not None
    bolt = AsyncApp(client=AsyncWebClient(token=endpoints.slack_token,
                                          base_url=endpoints.slack_url),
                    signing_secret=endpoints.slack_signing_secret)

    @bolt.action(re.compile(".*"))
    async def only_ack(ack: Any) -> None:
        await ack()

    web_app = web.Application()
    http_route(web_app, bolt, endpoints.slack_signing_secret, Foreground())
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", args["port"]).start()
        settle_memory()  # the same treatment as socialcare's: a baseline as strong
        yield
    finally:
        await runner.cleanup()


@asynccontextmanager
async def _socialcare(args: dict[str, Any]) -> AsyncIterator[None]:
    config = running.settings(args["database_url"], args["redis_url"], port=args["port"],
                              messengers=running.Endpoints(**args["endpoints"]))
    async with running.serving(config):
        yield


async def _serve(args: dict[str, Any]) -> dict[str, Any]:
    watch = GcWatch()
    server = _bare(args) if args["kind"] == "bare" else _socialcare(args)
    async with server:
        gc.callbacks.append(watch)
        print("ready", flush=True)
        began = time.process_time()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)  # until the parent closes it
        cpu = time.process_time() - began
        gc.callbacks.remove(watch)
    return {"gc": watch.summary(), "peak_kb": _peak_kb(), "cpu_s": round(cpu, 2)}


def _peak_kb() -> int | None:
    """Return the process's peak resident set (VmHWM) in kB."""
    peak = re.search(r"^VmHWM:\s+(\d+)", Path("/proc/self/status").read_text(), re.M)
    return int(peak[1]) if peak else None


def main() -> None:
    args = json.loads(sys.argv[1])
    profile_to = os.environ.get("SOCIALCARE_PROFILE")
    if not profile_to:
        print(json.dumps(asyncio.run(_serve(args))), flush=True)
        return
    from pyinstrument import Profiler  # a developer's tool, installed by hand

    profiler = Profiler(async_mode="disabled", interval=0.0005)
    profiler.start()
    result = asyncio.run(_serve(args))
    profiler.stop()
    Path(profile_to).write_text(profiler.output_text(unicode=True, show_all=False))
    profiler.last_session.save(f"{profile_to}.pyisession")  # to look at in other ways
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
