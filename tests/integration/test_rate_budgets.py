"""Messenger rate budgets are shared through Redis: two processes sending to one
channel together stay within the channel's limit, never twice it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import fakeredis
import pytest
from redis.asyncio import Redis

from socialcare.bot.ports import RateLimit
from socialcare.storage.budgets import MARGIN_SECONDS, RedisRateBudgets
from tests.conftest import TEST_REDIS_URL


@pytest.fixture
async def two_processes() -> AsyncIterator[tuple[Redis[Any], Redis[Any]]]:
    """Two clients of one Redis, as two processes on different hosts would have."""
    if TEST_REDIS_URL:
        first = Redis.from_url(TEST_REDIS_URL, decode_responses=True)
        second = Redis.from_url(TEST_REDIS_URL, decode_responses=True)
    else:
        server = fakeredis.FakeServer()
        first = fakeredis.FakeAsyncRedis(server=server, decode_responses=True)
        second = fakeredis.FakeAsyncRedis(server=server, decode_responses=True)
    await first.flushdb()
    try:
        yield first, second
    finally:
        await first.aclose()
        await second.aclose()


async def _send_for(budgets: RedisRateBudgets, limits: list[RateLimit], seconds: float,
                    sent: list[float]) -> None:
    """Send whenever the budget allows, for `seconds`, noting each send's time."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        wait = await budgets.acquire(limits)
        if wait == 0:
            sent.append(time.monotonic())
        else:
            await asyncio.sleep(min(wait, max(0.0, end - time.monotonic())))


async def test_two_processes_share_one_channel_budget(
    two_processes: tuple[Redis[Any], Redis[Any]],
) -> None:
    first, second = two_processes
    # 2 a second, one at a time (no burst), for a shorter test.
    channel = [RateLimit("slack:post:C0CARE", 2, 1.0, burst=1)]
    sent: list[float] = []

    await asyncio.gather(_send_for(RedisRateBudgets(first), channel, 2.5, sent),
                         _send_for(RedisRateBudgets(second), channel, 2.5, sent))

    sent.sort()
    # No window holds more than the limit (0.8 s, not 1: the sends are timed here, up to
    # 200 ms after Redis counted them), and the budget was used, not starved.
    busiest = max(sum(1 for t in sent if start <= t < start + 0.8) for start in sent)
    assert busiest <= 2
    assert 4 <= len(sent) <= 6


async def test_a_hold_off_after_a_429_holds_every_process(
    two_processes: tuple[Redis[Any], Redis[Any]],
) -> None:
    first, second = two_processes
    limits = [RateLimit("telegram:chat:-100123", 1, 1.0), RateLimit("telegram:all", 30, 1.0)]

    await RedisRateBudgets(first).hold_off("telegram:chat:-100123", 2.0)
    wait = await RedisRateBudgets(second).acquire(limits)

    assert 1.5 < wait <= 2.0


async def test_every_process_sees_which_keys_are_held_off_and_for_how_long(
    two_processes: tuple[Redis[Any], Redis[Any]],
) -> None:
    first, second = two_processes
    await RedisRateBudgets(first).hold_off("slack:post:C0CARE", 3.0)

    held = await RedisRateBudgets(second).held(["slack:post:C0CARE", "slack:post:C0OTHER"])

    assert list(held) == ["slack:post:C0CARE"]
    assert 2.5 < held["slack:post:C0CARE"] <= 3.0


async def test_a_call_counts_against_all_its_limits_or_none(
    two_processes: tuple[Redis[Any], Redis[Any]],
) -> None:
    first, second = two_processes
    overall = RateLimit("telegram:all", 2, 60.0)
    chat_a, chat_b = RateLimit("telegram:chat:a", 5, 60.0), RateLimit("telegram:chat:b", 5, 60.0)

    taken = [await RedisRateBudgets(first).acquire([chat_a, overall]),
             await RedisRateBudgets(second).acquire([chat_b, overall]),
             await RedisRateBudgets(second).acquire([chat_b, overall])]
    # The refused call took nothing from chat b's own budget: of its 5, 1 is spent, so
    # 4 more go and the 5th more waits.
    room_in_b = [await RedisRateBudgets(first).acquire([chat_b]) for _ in range(5)]

    assert taken[:2] == [0.0, 0.0] and taken[2] > 0
    assert room_in_b[:4] == [0.0] * 4 and room_in_b[4] > 0


async def test_a_bucket_starts_full_and_books_each_next_slot_as_it_frees(
    two_processes: tuple[Redis[Any], Redis[Any]],
) -> None:
    first, second = two_processes
    group = [RateLimit("telegram:group:-100123", 20, 60.0)]  # 20 at once, then one per 3 s

    at_once = [await RedisRateBudgets(first).book(group, within=5.0) for _ in range(20)]
    twenty_first = await RedisRateBudgets(second).book(group, within=5.0)
    twenty_second = await RedisRateBudgets(first).book(group, within=5.0)

    assert all(b.taken and b.wait == 0.0 for b in at_once)
    # Not a minute later (a window of 20 would say 60 s): the first token back, in 3 s
    # (and the margin); the next, 3 s after it, is further than was asked: not taken.
    # (The lower bounds leave room for the time the twenty bookings took.)
    assert twenty_first.taken and 2.0 <= twenty_first.wait <= 3.0 + MARGIN_SECONDS
    assert not twenty_second.taken and 5.0 < twenty_second.wait <= 6.0 + MARGIN_SECONDS


async def test_a_call_that_went_late_moves_its_bucket_on(
    two_processes: tuple[Redis[Any], Redis[Any]],
) -> None:
    first, _ = two_processes
    budgets = RedisRateBudgets(first)
    chat = [RateLimit("slack:post:C0LATE", 1, 1.0)]  # one a second, no burst

    booked = await budgets.book(chat, within=0.0)
    await asyncio.sleep(0.5)  # the process was busy: the call reached Slack half a second late
    await budgets.sent(chat, booked)
    after_late = await budgets.book(chat, within=5.0)

    assert booked.taken and booked.wait == 0.0
    # Slack counts the second from the late call's arrival: the next slot is a second
    # after it, not after the booking.
    assert after_late.taken and after_late.wait >= 0.9
