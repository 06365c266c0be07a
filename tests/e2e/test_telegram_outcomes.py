"""Telegram calls tell a request that may have been carried out (its answer was lost)
from one that surely was not: only the first can have left a card nobody knows of."""

from __future__ import annotations

import pytest
from telegram import Bot

from socialcare.adapters.messengers.telegram import TelegramMessenger
from socialcare.bot.ports import MessengerError, Note, OutcomeUnknown
from tests.e2e.chat import free_port
from tests.fakes.telegram import DEFAULT_GROUP, FakeTelegram


async def test_a_sent_message_whose_answer_is_lost_may_be_there_and_says_so() -> None:
    async with FakeTelegram() as tg, Bot(tg.token, base_url=tg.url) as bot:
        tg.add_chat(DEFAULT_GROUP)
        messenger = TelegramMessenger(bot)
        tg.timeout_next("sendMessage", delay=0.1, applied=True)
        with pytest.raises(OutcomeUnknown):
            await messenger.post_note(str(DEFAULT_GROUP), Note("hello"))
        tg.fail_next("sendMessage", status=500)
        with pytest.raises(MessengerError) as answered:
            await messenger.post_note(str(DEFAULT_GROUP), Note("hello"))

    assert not isinstance(answered.value, OutcomeUnknown)  # Telegram answered: not done
    assert len(tg.bot_messages(DEFAULT_GROUP)) == 1  # the one whose answer was lost


async def test_a_request_that_never_reached_telegram_is_surely_not_there() -> None:
    bot = Bot("123456:TEST-TOKEN", base_url=f"http://127.0.0.1:{free_port()}/bot")
    try:
        with pytest.raises(MessengerError) as refused:
            await TelegramMessenger(bot).post_note("-100500", Note("hello"))
    finally:
        await bot.shutdown()

    assert "ConnectError" in str(refused.value)
    assert not isinstance(refused.value, OutcomeUnknown)
