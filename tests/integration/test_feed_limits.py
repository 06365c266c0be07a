"""Hostile feeds: parsing stays off the event loop; reading and decompressing stop at
the size limit, over real HTTP.

Which thread ran a function is seen by a profile hook (`sys.setprofile` on the loop's
thread, `threading.setprofile` on the worker threads started after it): it records
every call of the function's code and the thread it ran on, and changes nothing.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from types import CodeType, FrameType
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import feedparser
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from socialcare.adapters import spreadsheet
from socialcare.adapters.collectors import rss
from socialcare.adapters.collectors.rss import FeedCollector, Options, fetch
from socialcare.bot.metrics import CaseFacts, Standing
from socialcare.bot.model import Tier
from socialcare.bot.team import Source
from tests.conftest import T0, FakeClock
from tests.fakes.feeds import HUGE_FEED, FakeFeeds, huge_rss

FEED = Source(name="qala-forum", kind="rss", platform="forum", tier=Tier.EXTRA,
              poll_seconds=120)
MIB = 1024 * 1024


@contextmanager
def threads_calling(*functions: Callable[..., Any]) -> Iterator[list[int]]:
    """Record the thread of every call of these functions while the block runs."""
    codes: set[CodeType] = {f.__code__ for f in functions}
    seen: list[int] = []

    def hook(frame: FrameType, event: str, _arg: Any) -> None:
        if event == "call" and frame.f_code in codes:
            seen.append(threading.get_ident())

    sys.setprofile(hook)
    threading.setprofile(hook)
    try:
        yield seen
    finally:
        sys.setprofile(None)
        threading.setprofile(None)  # type: ignore[arg-type]


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def test_a_feed_is_parsed_off_the_event_loops_thread(
    http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    loop_thread = threading.get_ident()
    async with FakeFeeds(now=clock.now) as feeds:
        options = Options.model_validate({"url": feeds.url("qalaforum-atom.xml"),
                                          "backfill_hours": 24 * 365})
        with threads_calling(feedparser.parse, rss._decode, rss._mention) as seen:
            polled = await FeedCollector(http, options, clock=clock).poll(FEED, {})

    assert len(polled.mentions) == 5
    assert seen, "the parser never ran"
    assert loop_thread not in seen


async def test_the_cases_csv_is_written_off_the_event_loops_thread() -> None:
    # The console's and the chat's CSV both come through this coroutine's thread hop.
    fact = CaseFacts(
        case_id=1, tier=Tier.MAIN, platform="vk", brand="Kcell", source="webhook",
        published_at=T0, collected_at=T0, response_due_at=T0 + timedelta(minutes=15),
        standing=Standing.OPEN, first_answer_at=None, first_answer_by=None,
        resolved_at=None, messages_to_resolve=None, second_line_closed=timedelta(0),
        with_second_line_since=None)
    loop_thread = threading.get_ident()
    with threads_calling(spreadsheet.cases_csv) as seen:
        await asyncio.to_thread(spreadsheet.cases_csv, [fact], now=T0,
                                zone=ZoneInfo("Asia/Almaty"))
    assert seen and loop_thread not in seen


# ---------------------------------------------------------------- reading stops at the cap


class Hostile:
    """A server of endless and explosive bodies that counts what it managed to send."""

    def __init__(self) -> None:
        self.sent = 0
        self.done = asyncio.Event()

    async def endless(self, request: web.Request) -> web.StreamResponse:
        """200 MB of feed-looking text, 64 KiB at a time."""
        return await self._stream(request, (b"<item>" + b"x" * (64 * 1024 - 6)
                                            for _ in range(3200)), {})

    async def bomb(self, request: web.Request) -> web.StreamResponse:
        """A gzip bomb: 256 MB of zeros in a few hundred kilobytes."""
        return await self._stream(request, _gzip_zeros(256), {"Content-Encoding": "gzip"})

    async def _stream(self, request: web.Request, chunks: Iterator[bytes],
                      headers: dict[str, str]) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/rss+xml",
                                               **headers})
        try:
            await response.prepare(request)
            for chunk in chunks:
                await response.write(chunk)
                self.sent += len(chunk)
            await response.write_eof()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self.done.set()
        return response


def _gzip_zeros(megabytes: int) -> Iterator[bytes]:
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(MIB)
    for _ in range(megabytes):
        packed = packer.compress(block)
        if packed:
            yield packed
    yield packer.flush()


@pytest.fixture
async def hostile() -> AsyncIterator[tuple[Hostile, str]]:
    server = Hostile()
    app = web.Application()
    app.router.add_get("/endless.xml", server.endless)
    app.router.add_get("/bomb.xml", server.bomb)
    test_server = TestServer(app)
    await test_server.start_server()
    try:
        yield server, str(test_server.make_url(""))
    finally:
        await test_server.close()


async def test_reading_a_body_stops_at_the_size_limit(
    hostile: tuple[Hostile, str], http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    server, root = hostile
    fetched = await fetch(http, root + "/endless.xml", {}, clock=clock, limit=MIB)
    await asyncio.wait_for(server.done.wait(), 10)

    assert fetched is not None and fetched.truncated
    assert len(fetched.body) == MIB
    # Of 200 MB, what the socket buffers held when the reader hung up, not the rest.
    assert server.sent < 40 * MIB, f"sent {server.sent / MIB:.1f} MiB"


async def test_decompressing_a_gzip_bomb_stops_at_the_size_limit(
    hostile: tuple[Hostile, str], http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    _server, root = hostile
    tracemalloc.start()
    try:
        fetched = await fetch(http, root + "/bomb.xml", {}, clock=clock, limit=MIB)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert fetched is not None and fetched.truncated
    assert fetched.body == bytes(MIB)
    # 256 MB unpacked would pass through memory; a bounded read holds a few megabytes.
    assert peak < 16 * MIB, f"peak {peak / MIB:.1f} MiB"


async def test_a_gzip_bomb_feed_is_read_up_to_the_limit_and_says_so(
    hostile: tuple[Hostile, str], http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    _server, root = hostile
    collector = FeedCollector(http, Options.model_validate({"url": root + "/bomb.xml"}),
                              clock=clock)

    with pytest.raises(rss.SourceUnavailable) as failed:
        await collector.poll(FEED, {})

    assert "over 10 MB" in str(failed.value)
    assert failed.value.cursor is not None and failed.value.cursor["unreadable"]


async def test_a_big_feed_is_parsed_a_piece_at_a_time_and_read_whole(
    http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    sizes: list[int] = []

    def hook(frame: FrameType, event: str, _arg: Any) -> None:
        if event == "call" and frame.f_code is rss._parse.__code__:
            sizes.append(len(frame.f_locals["text"]))

    generated = huge_rss()
    async with FakeFeeds(now=clock.now) as feeds:
        options = Options.model_validate({"url": feeds.url(HUGE_FEED),
                                          "backfill_hours": 24 * 365})
        threading.setprofile(hook)
        try:
            polled = await FeedCollector(http, options, clock=clock).poll(FEED, {})
        finally:
            threading.setprofile(None)  # type: ignore[arg-type]

    assert [m.external_id for m in polled.mentions] == [i.guid for i in generated.items]
    assert polled.note is None
    # The 10 MB feed went to the parser in pieces of about PIECE characters (a piece
    # ends with the item that reaches PIECE; the head comes with each).
    assert len(sizes) >= len(generated.body) // (2 * rss.PIECE)
    assert max(sizes) < 2 * rss.PIECE
