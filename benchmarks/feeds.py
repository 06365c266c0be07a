"""Hostile feeds and big reports against the event loop and memory.

  j. event-loop lag (p99 of how late a 5 ms timer fires) while a 16 MB feed is fetched
     and parsed, and while `/report month … csv` is built over many cases (PostgreSQL:
     the figures, the text, both charts and the CSV), against the idle loop measured
     in the same run. Target: p99 under 50 ms.
  k. peak RSS of a process polling every hostile feed at once — a 16 MB feed, a gzip
     bomb (300 MB of zeros in about 300 KB), a malformed 16 MB feed — against the
     same process before it polls. Target: under 250 MB.

The feeds are served by another process, so that serving them costs the measured
loop or process nothing. Each row's note gives the load
average, since two cores shared with other work move these figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
import zlib
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web

from benchmarks import report_month, running, stores
from benchmarks.table import Figure, at_most, percentile
from socialcare.adapters.clock import SystemClock
from socialcare.adapters.collectors.rss import FeedCollector, Options
from socialcare.adapters.telemetry import Telemetry
from socialcare.bot.model import Tier
from socialcare.bot.pipeline import Pipeline
from socialcare.bot.report_text import DEFAULT_BREAKDOWNS
from socialcare.bot.reports import parse_period
from socialcare.bot.team import Source
from socialcare.deps import Deps
from socialcare.handlers import reporting
from socialcare.main import share_the_interpreter
from socialcare.settings import Settings, load_catalog, load_team
from socialcare.storage import redis as redis_store
from socialcare.storage.database import create_engine
from tests.fakes.feeds import huge_rss

LAG_TARGET_MS = 50.0
RSS_TARGET_MB = 250.0
TICK = 0.005  # the lag monitor's timer
IDLE_SECONDS = 2.0
FEED_BYTES = 16 * 1024 * 1024
BOMB_MB = 300
SOURCE = Source(name="hostile", kind="rss", platform="forum", tier=Tier.EXTRA,
                poll_seconds=300)


def load() -> str:
    """The load average, for the notes."""
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} / {five:.2f} (1 / 5 min), {os.cpu_count()} cores"


# ---------------------------------------------------------------- the hostile feeds


def _gzip_zeros(megabytes: int) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(1024 * 1024)
    return b"".join(packer.compress(block) for _ in range(megabytes)) + packer.flush()


def hostile_bodies() -> dict[str, tuple[bytes, dict[str, str]]]:
    """Return each hostile feed's body and headers, by path."""
    huge = huge_rss(FEED_BYTES).body
    # The same feed broken at its first item: the XML parser gives up and feedparser
    # reads all of it again with its loose parser, the costlier path.
    malformed = huge.replace(b"<item>", b"<item><title>unclosed <b>tag &nbsp</x>", 1)
    feed = {"Content-Type": "application/rss+xml; charset=utf-8"}
    return {
        "/huge.xml": (huge, feed),
        "/malformed.xml": (malformed, feed),
        "/bomb.xml": (_gzip_zeros(BOMB_MB), {**feed, "Content-Encoding": "gzip"}),
    }


def _app(bodies: dict[str, tuple[bytes, dict[str, str]]]) -> web.Application:
    async def serve(request: web.Request) -> web.StreamResponse:
        body, headers = bodies[request.path]
        response = web.StreamResponse(headers=headers)
        await response.prepare(request)
        try:
            for start in range(0, len(body), 256 * 1024):
                await response.write(body[start:start + 256 * 1024])
            await response.write_eof()
        except ConnectionError:
            pass  # the reader stopped at its limit
        return response

    app = web.Application()
    for path in bodies:
        app.router.add_get(path, serve)
    return app


@asynccontextmanager
async def served(bodies: dict[str, tuple[bytes, dict[str, str]]]) -> AsyncIterator[str]:
    """Serve the feeds from this loop; yield the root URL."""
    runner = web.AppRunner(_app(bodies), access_log=None)
    await runner.setup()
    port = running.free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def served_elsewhere() -> AsyncIterator[str]:
    """Serve the 16 MB feed from another process (its serving takes no turn of this
    process's interpreter); yield the root URL."""
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "benchmarks.feeds", "--serve", cwd=running.ROOT,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    assert server.stdout is not None and server.stdin is not None
    try:
        line = await asyncio.wait_for(server.stdout.readline(), 120)
        yield line.decode().strip()
    finally:
        server.stdin.close()
        await asyncio.wait_for(server.wait(), 30)


async def _serve_until_stdin_closes() -> None:
    async with served({"/huge.xml": hostile_bodies()["/huge.xml"]}) as root:
        print(root, flush=True)
        await asyncio.to_thread(sys.stdin.read)


# ---------------------------------------------------------------- j. loop lag


async def lags_during(work: Awaitable[Any]) -> list[float]:
    """Return how late (ms) each tick of a 5 ms timer fired while `work` ran."""
    lags: list[float] = []
    done = asyncio.Event()

    async def monitor() -> None:
        while not done.is_set():
            began = time.perf_counter()
            await asyncio.sleep(TICK)
            lags.append((time.perf_counter() - began - TICK) * 1000)

    watching = asyncio.create_task(monitor())
    await asyncio.sleep(TICK * 4)
    try:
        await work
    finally:
        done.set()
        await watching
    return lags


def _p99(lags: list[float]) -> float:
    return percentile(lags, 99) if lags else 0.0


async def _poll_quietly(collector: FeedCollector) -> None:
    # A hostile feed may fail its poll: the lag while it was read counts all the same.
    with contextlib.suppress(Exception):
        await collector.poll(SOURCE, {})


async def loop_lag(*, report_cases: int, runs: int, log: Any = print) -> list[Figure]:
    """j. The loop's p99 lag idle, during a 16 MB feed's parse, during a big report."""
    share_the_interpreter()  # as the app's process does (`serve`)
    url = stores.postgres_url()
    await stores.reset_database(url)
    now = datetime.now(UTC)
    period = parse_period("month", now=now, zone=report_month.ZONE)
    await report_month.seed(url, report_cases, period.start, min(period.end, now))
    log(f"  j. seeded {report_cases:,} cases this month")
    engine = create_engine(url)
    redis = redis_store.connect(stores.redis_url())
    team = load_team(running.CONFIG)
    deps = Deps(settings=Settings(database_url=url), team=team, catalog=load_catalog("en"),
                clock=SystemClock(), engine=engine, redis=redis,
                pipeline=Pipeline(team, clock=SystemClock()), telemetry=Telemetry())
    idle, feed, report = [], [], []
    try:
        async with served_elsewhere() as root, \
                aiohttp.ClientSession() as session:
            collector = FeedCollector(session, Options.model_validate(
                {"url": root + "/huge.xml"}), clock=SystemClock())
            for run in range(runs):
                idle.append(_p99(await lags_during(asyncio.sleep(IDLE_SECONDS))))
                feed.append(_p99(await lags_during(_poll_quietly(collector))))
                report.append(_p99(await lags_during(reporting.report_reply(
                    period, deps, breakdowns=DEFAULT_BREAKDOWNS, csv=True))))
                log(f"  j. run {run + 1}/{runs}: p99 lag idle {idle[-1]:.1f} ms, feed "
                    f"{feed[-1]:.1f} ms, report {report[-1]:.1f} ms")
    finally:
        await engine.dispose()
        await redis.aclose()
    note = (f"p99 of how late a {TICK * 1000:g} ms timer fires; the idle loop of the same "
            f"run is the baseline; {load()}")
    return [
        at_most("j. loop lag p99, idle (baseline)", idle, "ms", note=note),
        at_most("j. loop lag p99, 16 MB feed fetched and parsed", feed, "ms", LAG_TARGET_MS,
                note="the feed is read to the 10 MB limit and parsed in a worker thread"),
        at_most(f"j. loop lag p99, /report month + CSV, {report_cases:,} cases", report,
                "ms", LAG_TARGET_MS,
                note="PostgreSQL; the figures in SQL, text, charts and CSV off the loop"),
    ]


# ---------------------------------------------------------------- k. hostile feeds' RSS


async def _run_child(root: str) -> dict[str, Any]:
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "benchmarks.feeds_child", root, cwd=running.ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await child.communicate()
    if child.returncode != 0:
        raise RuntimeError(f"feeds child failed ({child.returncode}): "
                           f"{err.decode(errors='replace')[-2000:]}")
    return dict(json.loads(out.decode().strip().splitlines()[-1]))


async def hostile_rss(*, runs: int, log: Any = print) -> list[Figure]:
    """k. Peak RSS of a process polling every hostile feed at once."""
    bodies = hostile_bodies()
    results = []
    async with served(bodies) as root:
        for run in range(runs):
            result = await _run_child(root)
            results.append(result)
            log(f"  k. run {run + 1}/{runs}: before {result['before_kb'] / 1024:.0f} MB, "
                f"peak {result['peak_kb'] / 1024:.0f} MB; {result['outcomes']}")
    before = [r["before_kb"] / 1024 for r in results]
    note = (f"a child process polls {', '.join(p.strip('/') for p in bodies)} at once "
            f"(gzip bomb: {BOMB_MB} MB of zeros in {len(bodies['/bomb.xml'][0]) // 1024} KB); "
            f"its RSS before polling (baseline) {min(before):.0f}-{max(before):.0f} MB; "
            f"{load()}")
    return [at_most("k. peak RSS, every hostile feed polled at once",
                    [r["peak_kb"] / 1024 for r in results], "MB", RSS_TARGET_MB, note=note,
                    detail={"runs": results})]


if __name__ == "__main__" and sys.argv[1:] == ["--serve"]:
    asyncio.run(_serve_until_stdin_closes())
