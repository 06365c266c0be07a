"""A request already acted on is acknowledged and not acted on again: Slack requests
sent again with their signature (a proxy's resend, a replay, an event's redelivery) and
Telegram updates delivered again, whichever process gets the copy."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import text

from socialcare.bot.actions import ActionKind, CaseAction
from socialcare.bot.model import EventKind
from socialcare.main import build_app, runtime
from tests.conftest import TEST_DATABASE_URL, TEST_REDIS_URL, FlowingClock
from tests.e2e.chat import (
    AIGERIM_SLACK,
    DANIYAR_TG,
    SAULE_SLACK,
    SAULE_TG,
    SLACK_CHANNEL,
    TELEGRAM_CHAT,
    Chat,
    eventually,
    free_port,
    mention,
    minutes_ago,
    running_chat,
)


async def _escalations(chat: Chat) -> int:
    async with chat.deps.uow() as uow:
        return len(await uow.escalations.find())


async def test_the_same_signed_escalate_sent_three_times_escalates_once(
    tmp_path: Path, flowing_clock: FlowingClock
) -> None:
    async with running_chat(tmp_path, flowing_clock) as chat:
        await chat.ingest(mention("ig-1", published=minutes_ago(flowing_clock, 2)))
        request = chat.slack.slash_command("/escalate", "1 critical @nurlan 4G down in Samal",
                                           user=AIGERIM_SLACK, channel=SLACK_CHANNEL)
        answers = await asyncio.gather(*(chat.slack_send(request) for _ in range(3)))
        await eventually(lambda: chat.slack.responses())
        again = await chat.slack_send(request)
        await asyncio.sleep(0.5)  # time for a second escalation, were one made
        escalated = await _escalations(chat)
        told = len(chat.slack.responses())

    assert [a.status for a in (*answers, again)] == [200] * 4
    assert escalated == 1
    assert told == 1


async def _claims(chat: Chat, case_id: int) -> int:
    async with chat.deps.uow() as uow:
        return sum(e.kind is EventKind.CLAIMED for e in await uow.events.for_case(case_id))


async def test_the_same_signed_claim_click_sent_four_times_claims_once_and_says_nothing(
    tmp_path: Path, flowing_clock: FlowingClock
) -> None:
    # A card click is marked as taken after its ack: the copies are answered alike, and
    # only the first acts (a second would tell Aigerim the case is already claimed).
    async with running_chat(tmp_path, flowing_clock) as chat:
        [result] = await chat.ingest(mention("ig-1", published=minutes_ago(flowing_clock, 2)))
        case_id = result["case_id"]
        await eventually(lambda: chat.slack_cards() and chat.telegram_cards())
        click = chat.slack.block_actions(action_id=CaseAction(ActionKind.CLAIM, case_id).pack(),
                                         channel=SLACK_CHANNEL, user=AIGERIM_SLACK)
        answers = await asyncio.gather(*(chat.slack_send(click) for _ in range(3)))
        for _ in range(200):  # the claims are made after the acks: 10 s at most
            if await _claims(chat, case_id):
                break
            await asyncio.sleep(0.05)
        again = await chat.slack_send(click)
        await asyncio.sleep(0.5)  # time for a second claim's private answer, were one made
        claims = await _claims(chat, case_id)

    assert [a.status for a in (*answers, again)] == [200] * 4
    assert claims == 1
    assert chat.slack.responses() == []


async def test_announce_sent_three_times_posts_and_pins_once(
    tmp_path: Path, flowing_clock: FlowingClock
) -> None:
    async with running_chat(tmp_path, flowing_clock) as chat:
        request = chat.slack.slash_command("/announce", "Almaty outage: use the apology",
                                           user=SAULE_SLACK, channel=SLACK_CHANNEL)
        for _ in range(3):
            assert (await chat.slack_send(request)).status == 200
        await eventually(lambda: chat.slack.responses())
        # The copies go out after the answer: wait for them, and a while for any more.
        await eventually(lambda: [m for m in chat.slack.messages(SLACK_CHANNEL) if m.pinned]
                         and chat.telegram.calls_to("pinChatMessage"))
        await asyncio.sleep(1.5)
        pinned = [m for m in chat.slack.messages(SLACK_CHANNEL) if m.pinned]
        pins = len(chat.telegram.calls_to("pinChatMessage"))

    assert len(pinned) == 1 and pins == 1
    assert len(chat.slack.responses()) == 1


async def test_a_slack_event_redelivered_with_a_new_signature_is_taken_once(
    tmp_path: Path, flowing_clock: FlowingClock
) -> None:
    async with running_chat(tmp_path, flowing_clock) as chat:
        event = {"type": "app_mention", "user": AIGERIM_SLACK, "text": "hello",
                 "ts": "1700000000.000100", "channel": SLACK_CHANNEL}
        first = await chat.slack_send(chat.slack.event_callback(event, event_id="Ev0REPLAY1"))
        again = await chat.slack_send(chat.slack.event_callback(event, event_id="Ev0REPLAY1",
                                                                retry_num=1))
        other = await chat.slack_send(chat.slack.event_callback(event, event_id="Ev0OTHER01"))

    # No listener takes app mentions: Bolt answers 404 to a new event; a redelivery of
    # one already taken is acknowledged, so Slack stops sending it.
    assert (first.status, again.status, other.status) == (404, 200, 404)


async def test_a_redelivered_telegram_update_acts_once_by_webhook(
    tmp_path: Path, flowing_clock: FlowingClock
) -> None:
    async with running_chat(tmp_path, flowing_clock) as chat:
        await chat.ingest(mention("ig-1", published=minutes_ago(flowing_clock, 2)))
        update = chat.telegram.command_update("escalate", "1 insight @askar Samal towers",
                                              from_user=DANIYAR_TG)
        for _ in range(3):
            assert (await chat.telegram_send(update)).status == 200
        await eventually(lambda: [m for m in chat.telegram.bot_messages(TELEGRAM_CHAT)
                                  if (m.text or "").startswith("Escalation #1")])
        await asyncio.sleep(0.5)
        answers = [m for m in chat.telegram.bot_messages(TELEGRAM_CHAT)
                   if (m.text or "").startswith("Escalation #")]

        assert await _escalations(chat) == 1
    assert len(answers) == 1


async def test_a_redelivered_telegram_update_acts_once_when_polling(
    tmp_path: Path, flowing_clock: FlowingClock
) -> None:
    async with running_chat(tmp_path, flowing_clock, polling=True) as chat:
        update = chat.telegram.command_update("announce", "Almaty outage", from_user=SAULE_TG)
        chat.telegram.push_update(update)
        await eventually(lambda: chat.telegram.calls_to("pinChatMessage"))
        # Confirmed by the next poll; delivered again, as to a poller after a restart.
        await eventually(lambda: not chat.telegram.pending_updates)
        chat.telegram.push_update(update)
        await eventually(lambda: not chat.telegram.pending_updates)
        await asyncio.sleep(0.5)
        pins = len(chat.telegram.calls_to("pinChatMessage"))

    assert pins == 1


async def test_a_request_that_failed_in_storage_acts_when_it_comes_again(
    tmp_path: Path, flowing_clock: FlowingClock
) -> None:
    async with running_chat(tmp_path, flowing_clock) as chat:
        await chat.ingest(mention("ig-1", published=minutes_ago(flowing_clock, 2)))
        request = chat.slack.slash_command("/escalate", "1 critical @nurlan 4G down in Samal",
                                           user=AIGERIM_SLACK, channel=SLACK_CHANNEL)
        async with chat.deps.engine.begin() as conn:
            await conn.execute(text("ALTER TABLE escalation_events RENAME TO away"))
        failed = await chat.slack_send(request)
        # The listener runs after the ack, fails, and takes the request's mark back.
        await _marks_given_back(chat)
        async with chat.deps.engine.begin() as conn:
            await conn.execute(text("ALTER TABLE away RENAME TO escalation_events"))
        assert await _escalations(chat) == 0
        retried = await chat.slack_send(request)
        await eventually(lambda: chat.slack.responses())
        escalated = await _escalations(chat)

    assert (failed.status, retried.status) == (200, 200)
    assert escalated == 1


async def _marks_given_back(chat: Chat) -> None:
    """Wait until no Slack request is marked as taken: the one that failed in storage
    has had its mark taken back."""
    async with asyncio.timeout(20):
        while True:
            if not await chat.deps.redis.keys("replay:slack:*"):
                return
            await asyncio.sleep(0.05)


@pytest.mark.skipif(TEST_DATABASE_URL is None or TEST_REDIS_URL is None,
                    reason="two processes share one database and one Redis only on the "
                           "servers; the embedded back end is one process")
async def test_two_processes_on_one_redis_see_each_others_marks(
    tmp_path: Path, flowing_clock: FlowingClock
) -> None:
    async with running_chat(tmp_path, flowing_clock) as chat:
        await chat.ingest(mention("ig-1", published=minutes_ago(flowing_clock, 2)))
        port = free_port()
        settings = chat.deps.settings.model_copy(update={
            "telegram_webhook_url": f"http://127.0.0.1:{port}/telegram/webhook"})
        async with runtime(settings, clock=flowing_clock) as other:
            server = TestServer(build_app(other), port=port)
            await server.start_server()
            try:
                request = chat.slack.slash_command(
                    "/escalate", "1 critical @nurlan 4G down in Samal", user=AIGERIM_SLACK,
                    channel=SLACK_CHANNEL)
                update = chat.telegram.command_update("escalate", "1 insight @askar Towers",
                                                      from_user=DANIYAR_TG)
                answers = await asyncio.gather(
                    chat.slack_send(request),
                    chat.slack.deliver(request, f"http://127.0.0.1:{port}/slack/events"),
                    chat.telegram_send(update),
                    chat.telegram.deliver_webhook(update,
                                                  f"http://127.0.0.1:{port}/telegram/webhook",
                                                  secret_token=chat.deps.settings
                                                  .telegram_webhook_secret.get_secret_value()))
                # Each is told once its escalation is stored (Telegram's in the chat).
                await eventually(lambda: chat.slack.responses() and [
                    m for m in chat.telegram.bot_messages(TELEGRAM_CHAT)
                    if (m.text or "").startswith("Escalation #")])
                await asyncio.sleep(1.0)  # time for a second escalation, were one made
            finally:
                await server.close()
        escalated = await _escalations(chat)

    assert [a.status for a in answers] == [200] * 4
    assert escalated == 2  # one from Slack, one from Telegram
    assert len(chat.slack.responses()) == 1
