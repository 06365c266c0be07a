"""Every message to a Telegram chat takes the chat's shared budget, and a 429 holds the
chat for every sender: two bots (as in two processes) on one Redis, against the fake
Bot API with its flood control."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import fakeredis
import pytest
from redis.asyncio import Redis
from telegram.error import RetryAfter
from telegram.ext import ExtBot

from socialcare.adapters.messengers.telegram_budget import (
    PER_CHAT_BURST,
    TAKEN,
    Budget,
    SharedBudgets,
    chat_limits,
)
from socialcare.storage.budgets import RedisRateBudgets
from tests.conftest import TEST_REDIS_URL
from tests.fakes.telegram import FakeTelegram

CHAT = -1001234567890


@pytest.fixture
async def two_redis() -> AsyncIterator[tuple[Redis[Any], Redis[Any]]]:
    """Two clients of one Redis, as two processes would have."""
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


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as fake:
        fake.add_chat(CHAT, title="Care team")
        yield fake


@pytest.fixture
async def bots(two_redis: tuple[Redis[Any], Redis[Any]], telegram: FakeTelegram
               ) -> AsyncIterator[list[ExtBot[Budget]]]:
    """One bot per process, each with its rate limiter over the shared Redis."""
    made: list[ExtBot[Budget]] = [
        ExtBot(telegram.token, base_url=telegram.url,
               rate_limiter=SharedBudgets(RedisRateBudgets(redis))) for redis in two_redis]
    for bot in made:
        await bot.initialize()
    try:
        yield made
    finally:
        for bot in made:
            await bot.shutdown()


async def test_a_429_in_a_chat_holds_it_for_every_sender(
    bots: list[ExtBot[Budget]], telegram: FakeTelegram
) -> None:
    first, second = bots
    telegram.fail_next("sendMessage", 429, retry_after=2)

    with pytest.raises(RetryAfter):
        await first.send_message(CHAT, "a card")
    started = time.monotonic()
    await second.send_message(CHAT, "a command's answer")
    waited = time.monotonic() - started

    assert waited >= 1.9
    assert [c.status for c in telegram.calls_to("sendMessage")] == [429, 200]


async def test_a_person_s_answer_waits_out_a_429_and_goes(
    bots: list[ExtBot[Budget]], telegram: FakeTelegram
) -> None:
    bot = bots[0]
    telegram.fail_next("sendMessage", 429, retry_after=1)

    sent = await bot.send_message(CHAT, "your queue", rate_limit_args=Budget(retries=1))

    assert sent.text == "your queue"
    assert [c.status for c in telegram.calls_to("sendMessage")] == [429, 200]


async def test_sends_share_the_chats_budget_with_calls_the_caller_took_already(
    two_redis: tuple[Redis[Any], Redis[Any]], bots: list[ExtBot[Budget]],
    telegram: FakeTelegram
) -> None:
    first, second = bots
    # The dispatcher takes a card's call from the budgets, then sends it as taken; the
    # chat's burst was spent just before.
    for _ in range(PER_CHAT_BURST):
        assert await RedisRateBudgets(two_redis[0]).acquire(chat_limits(str(CHAT))) == 0
    started = time.monotonic()
    await first.send_message(CHAT, "a card", rate_limit_args=TAKEN)
    card_sent = time.monotonic() - started
    await second.send_message(CHAT, "a command's answer")
    answer_sent = time.monotonic() - started
    await first.get_me()  # no chat: no budget
    await second.send_chat_action(CHAT, "typing")  # not a message: no budget
    others = time.monotonic() - started - answer_sent

    assert card_sent < 0.5
    assert answer_sent >= 0.9  # one a second in a chat, whoever sends
    assert others < 0.5
    assert all(c.status == 200 for c in telegram.calls)


async def test_a_call_waiting_for_its_slot_gives_up_at_once_when_the_app_stops(
    bots: list[ExtBot[Budget]], telegram: FakeTelegram
) -> None:
    bot = bots[0]
    telegram.fail_next("sendMessage", 429, retry_after=30)
    with pytest.raises(RetryAfter):
        await bot.send_message(CHAT, "a card")
    limiter = bot.rate_limiter
    assert isinstance(limiter, SharedBudgets)

    started = time.monotonic()
    waiting = asyncio.create_task(bot.send_message(CHAT, "a lead's ping"))
    await asyncio.sleep(0.3)  # it waits for the chat's hold to end
    limiter.stop_waiting()
    with pytest.raises(RetryAfter):
        await waiting
    gave_up = time.monotonic() - started

    # python-telegram-bot's stop waits for the handler that sends it: not 30 s.
    assert gave_up < 2.0
    assert [c.status for c in telegram.calls_to("sendMessage")] == [429]
