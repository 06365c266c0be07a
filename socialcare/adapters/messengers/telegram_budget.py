"""Every message the bot sends to a Telegram chat takes that chat's shared rate budget.

Cards, notes, command replies, announcements, files: whatever sends or edits a message
in a chat counts against the same budgets in Redis (`socialcare.storage.budgets`) —
1 a second per chat, 20 a minute per group, 30 a second overall — so that a burst of
command replies next to card posts draws no flood control from Telegram. A 429 holds
the chat for every sender, in every process, for as long as Telegram asked.

This is python-telegram-bot's rate limiter: every Bot API call passes through it. The
dispatcher takes a card's call from the budgets itself before making it (it must not
wait: it holds the channel and moves on), and says so with `TAKEN`; every other call
waits here for room.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from telegram.error import RetryAfter
from telegram.ext import BaseRateLimiter

from socialcare.bot.ports import RateBudgets, RateLimit

# Telegram: about 1 message per second per chat, 20 per minute per group (edits seem
# to count too), 30 per second overall.
PER_CHAT_PER_SECOND = 1
# "Short bursts are allowed": a chat that was quiet takes three at once. The group's
# 20 a minute is a bucket of 20 that starts full and gets one back every 3 s (as
# python-telegram-bot's AIORateLimiter keeps it), not 20 and then a silent minute.
PER_CHAT_BURST = 3
PER_GROUP_PER_MINUTE = 20
OVERALL_PER_SECOND = 30
# Longer than this without room (a full group, a long flood-control pause), a call
# gives up with RetryAfter instead of holding its sender any longer.
MAX_WAIT_SECONDS = 60.0

_Result = bool | dict[str, Any] | list[dict[str, Any]]


@dataclass(frozen=True)
class Budget:
    """How one call meets the shared budgets (python-telegram-bot's `rate_limit_args`)."""

    # The caller took this call from the budgets already (the dispatcher, for cards).
    taken: bool = False
    # Flood-control answers to wait out and try again: a person waits for this message.
    retries: int = 0


TAKEN = Budget(taken=True)


def chat_limits(chat: str) -> list[RateLimit]:
    """Return the rate limits a message to this chat counts against."""
    limits = [RateLimit(f"telegram:chat:{chat}", PER_CHAT_PER_SECOND, 1.0,
                        burst=PER_CHAT_BURST)]
    if chat.startswith("-"):  # groups, supergroups and channels
        limits.append(RateLimit(f"telegram:group:{chat}", PER_GROUP_PER_MINUTE, 60.0))
    limits.append(RateLimit("telegram:all", OVERALL_PER_SECOND, 1.0))
    return limits


def hold_key(chat: str) -> str:
    """Return the budget key a 429 in this chat holds."""
    return f"telegram:chat:{chat}"


def _counts(endpoint: str) -> bool:
    """Tell whether a Bot API method sends or edits a message (what flood control counts)."""
    return (endpoint.startswith(("send", "edit", "copy", "forward"))
            and endpoint != "sendChatAction")


def _seconds(retry_after: float | timedelta) -> float:
    if isinstance(retry_after, timedelta):
        return retry_after.total_seconds()
    return float(retry_after)


class SharedBudgets(BaseRateLimiter[Budget]):
    """python-telegram-bot's rate limiter over the budgets every process shares."""

    def __init__(self, budgets: RateBudgets, *, max_wait: float = MAX_WAIT_SECONDS) -> None:
        self._budgets = budgets
        self._max_wait = max_wait
        self._stopping = asyncio.Event()

    def stop_waiting(self) -> None:
        """Let no call wait for its slot any more: the app is stopping.

        python-telegram-bot's `Application.stop` waits for every update being handled,
        cancelling none: a handler waiting here for a slot (a ping paced by a group's
        budget) would hold the app's stop for up to `max_wait`. It gives up at once
        with RetryAfter instead; a call with room now still goes."""
        self._stopping.set()

    async def initialize(self) -> None:
        """Nothing to set up: the budgets live in Redis."""

    async def shutdown(self) -> None:
        """Nothing to close."""

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, _Result]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: Budget | None,
    ) -> _Result:
        """Make the call once its chat has room; on a 429 hold the chat for everyone."""
        chat = data.get("chat_id")
        if chat is None or not _counts(endpoint):
            return await callback(*args, **kwargs)
        budget = rate_limit_args or Budget()
        limits = chat_limits(str(chat))
        attempt = 0
        while True:
            if attempt > 0 or not budget.taken:
                await self._room(limits)
            try:
                return await callback(*args, **kwargs)
            except RetryAfter as error:
                await self._budgets.hold_off(hold_key(str(chat)), _seconds(error.retry_after))
                if attempt >= budget.retries:
                    raise
            attempt += 1

    async def _room(self, limits: Sequence[RateLimit]) -> None:
        """Book the first slot every limit has and wait for it."""
        booking = await self._budgets.book(limits, within=self._max_wait)
        if not booking.taken:
            raise RetryAfter(math.ceil(booking.wait))
        if booking.wait <= 0:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(booking.wait):
                await self._stopping.wait()
            raise RetryAfter(math.ceil(booking.wait))  # stopping: no more waiting
