"""What the running app does where a mention or a card could be lost or doubled: a
Telegram card whose answer was lost is posted again and counted as a possible double;
a queued mention set aside as a dead letter is announced once in the team's chats."""

from __future__ import annotations

import asyncio
import re
from functools import partial
from pathlib import Path

import aiohttp
from sqlalchemy import insert

from socialcare.bot.actions import ActionKind, CaseAction
from socialcare.handlers import workers
from socialcare.storage.queue import DEAD_AFTER, Taken
from socialcare.storage.schema import inbox
from tests.conftest import FlowingClock
from tests.e2e.chat import (
    DANIYAR_TG,
    SLACK_CHANNEL,
    TELEGRAM_CHAT,
    Chat,
    eventually,
    mention,
    minutes_ago,
    running_chat,
)


async def _metric(chat: Chat, name: str, *, wanted: float) -> float:
    """Read a metric from /metrics, waiting a while for it to reach `wanted` (the round
    that counts it ends after what the test watches)."""
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        async with aiohttp.ClientSession() as session, \
                session.get(f"{chat.base_url}/metrics") as response:
            text = await response.text()
        found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
        value = float(found[1]) if found else 0.0
        if value == wanted or asyncio.get_running_loop().time() > deadline:
            return value
        await asyncio.sleep(0.1)


async def test_a_telegram_card_stored_unanswered_is_posted_again_counted_and_its_copy_goes_on_click(
    tmp_path: Path, flowing_clock: FlowingClock
) -> None:
    async with running_chat(tmp_path, flowing_clock) as chat:
        # Telegram stores the card, then the answer never comes (the connection drops).
        chat.telegram.timeout_next("sendMessage", delay=0.2, applied=True)
        [result] = await chat.ingest(mention("1", published=minutes_ago(flowing_clock, 1)))

        deadline = asyncio.get_running_loop().time() + 30
        while True:
            async with chat.deps.uow() as uow:
                cards = await uow.cards.for_case(result["case_id"])
            if all(card.message_id is not None for card in cards):
                break
            assert asyncio.get_running_loop().time() < deadline, cards
            await asyncio.sleep(0.1)
        counted = await _metric(
            chat, 'socialcare_card_possible_doubles_total{messenger="telegram"}', wanted=1)
        async with chat.deps.uow() as uow:
            [telegram] = [c for c in await uow.cards.for_case(result["case_id"])
                          if c.messenger == "telegram"]
        cards_in_chat = chat.telegram_cards()
        slack_cards = chat.slack_cards()
        # Someone clicks Claim on the copy: the click counts, and the copy goes.
        copy = cards_in_chat[0]
        click = chat.telegram.callback_query_update(
            copy, CaseAction(ActionKind.CLAIM, result["case_id"]).pack(), from_user=DANIYAR_TG)
        assert (await chat.telegram_send(click)).status == 200
        left = await eventually(
            lambda: len(chat.telegram_cards()) == 1
            and "Claimed by Daniyar" in (chat.telegram_cards()[0].text or "")
            and chat.telegram_cards())
        removed = await _metric(
            chat, 'socialcare_card_doubles_removed_total{messenger="telegram"}', wanted=1)

    assert [call.fault for call in chat.telegram.calls_to("sendMessage")][:2] == [
        "lost_response", None]
    assert len(cards_in_chat) == 2  # the one we never heard of, and the one we know
    assert telegram.message_id == str(cards_in_chat[1].message_id)
    assert telegram.unsure_posts == 1
    assert counted == 1.0
    assert len(slack_cards) == 1
    assert [m.message_id for m in left] == [cards_in_chat[1].message_id]
    assert removed == 1.0


async def test_a_dead_letter_is_announced_once_in_the_team_chats(
    tmp_path: Path, flowing_clock: FlowingClock
) -> None:
    async with running_chat(tmp_path, flowing_clock) as chat:
        queue = chat.deps.queue
        assert queue is not None
        # A row that failed twice already, in a shape this version cannot read; it is
        # taken as its worker would take it on its last try.
        async with chat.deps.engine.begin() as conn:
            row_id = (await conn.execute(insert(inbox).returning(inbox.c.id), [{
                "source": "webhook", "mention": {"source": "webhook", "shape": "newer"},
                "queued_at": flowing_clock.now(), "tries": DEAD_AFTER - 1}])).scalar_one()
        taken = await queue.load(Taken((), ids=(row_id,)))
        dead = await queue.done(taken, now=flowing_clock.now(),
                                alert=partial(workers.dead_letter_notices, chat.deps))
        chat.deps.wake()

        def alerts() -> tuple[list[str], list[str]]:
            slack = [m.text for m in chat.slack.messages(SLACK_CHANNEL)
                     if "set aside" in (m.text or "")]
            telegram = [m.text or "" for m in chat.telegram.bot_messages(TELEGRAM_CHAT)
                        if "set aside" in (m.text or "")]
            assert slack and telegram
            return slack, telegram

        slack, telegram = await eventually(alerts, within=20)
        await asyncio.sleep(1.5)  # the dispatcher's next rounds send nothing more
        assert alerts() == (slack, telegram)

    assert [letter.id for letter in dead] == [row_id]
    assert len(slack) == len(telegram) == 1
    assert f"#{row_id}" in telegram[0] and "socialcare inbox list" in telegram[0]
