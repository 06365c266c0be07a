"""Language and topics on the cards of both messengers; an agent changes a topic from
Slack, and Telegram's card, the case's history and the report follow; /topic."""

from __future__ import annotations

import asyncio
from pathlib import Path

from socialcare.bot.actions import ActionKind, CaseAction
from tests.conftest import FlowingClock
from tests.e2e.chat import (
    AIGERIM_SLACK,
    AIGERIM_TG,
    SAULE_SLACK,
    SLACK_CHANNEL,
    STRANGER_SLACK,
    Chat,
    eventually,
    mention,
    minutes_ago,
    running_chat,
)

# config.example.toml's topics: billing is the 3rd, roaming the 5th.
BILLING, ROAMING = 3, 5


async def test_cards_show_language_and_topics_and_a_slack_change_reaches_telegram_and_report(
    tmp_path: Path, flowing_clock: FlowingClock
) -> None:
    async with running_chat(tmp_path, flowing_clock) as chat:
        [result] = await chat.ingest(mention(
            "ig-1", "Кселлдің интернеті Алматыда нашар, не болып жатыр?",
            published=minutes_ago(flowing_clock, 2)))
        case_id = result["case_id"]
        slack = await eventually(lambda: chat.slack_cards())
        telegram = await eventually(lambda: chat.telegram_cards())
        assert "🌐 Kazakh · 🏷 Mobile internet · 📍 Almaty" in str(slack[0].blocks)
        assert "🌐 Kazakh · 🏷 Mobile internet · 📍 Almaty" in telegram[0].text

        select = CaseAction(ActionKind.TOPIC, case_id).pack()
        billing = CaseAction(ActionKind.TOPIC, case_id, BILLING).pack()
        assert select in slack[0].action_ids()
        await chat.slack_send(chat.slack.block_actions(
            action_id=select, value=billing, channel=SLACK_CHANNEL, user=AIGERIM_SLACK))
        await eventually(lambda: "🏷 Mobile internet, Billing and charges"
                         in chat.telegram_cards()[0].text)
        await eventually(lambda: "changed the topics" in chat.telegram_cards()[0].text)

        # The stranger is not in the roster: nothing changes, and they are told.
        await chat.slack_send(chat.slack.block_actions(
            action_id=select, value=billing, channel=SLACK_CHANNEL, user=STRANGER_SLACK))
        await eventually(lambda: chat.slack.ephemerals_for(STRANGER_SLACK))

        # Telegram: the card's button opens the topics in private; a press takes one away.
        card = chat.telegram_cards()[0]
        await chat.telegram_send(chat.telegram.callback_query_update(
            card, select, from_user=AIGERIM_TG))
        chooser = await eventually(lambda: [
            m for m in chat.telegram.bot_messages(AIGERIM_TG["id"]) if m.reply_markup])
        assert "✓ Billing and charges" in str(chooser[-1].reply_markup)
        await chat.telegram_send(chat.telegram.callback_query_update(
            chooser[-1], billing, from_user=AIGERIM_TG))
        # Taken away: the event is there (a card may still show the state before Billing,
        # each messenger's cards going at their own pace).
        await _until_topic_changes(chat, case_id, 2)
        await eventually(lambda: "🏷 Mobile internet · 📍" in str(chat.slack_cards()[0].blocks))

        answer = await chat.slack_command("/topic", f"{case_id} internet roaming",
                                          user=AIGERIM_SLACK)
        assert "Mobile internet, Roaming" in answer.body["text"]
        await eventually(lambda: "🏷 Mobile internet, Roaming" in chat.telegram_cards()[0].text)
        wrong = await chat.slack_command("/topic", f"{case_id} weather", user=AIGERIM_SLACK)
        assert "There is no topic weather" in wrong.body["text"]

        report = await chat.slack_command("/report", "today topic", user=SAULE_SLACK)
        async with chat.deps.uow() as uow:
            events = await uow.events.for_case(case_id)

    assert "By topic (change against the period before):" in report.body["text"]
    assert "Mobile internet, Roaming" not in report.body["text"]  # one line per topic
    assert "Roaming (new)" in report.body["text"] and "Mobile internet (new)" in report.body[
        "text"]
    changes = [e.data["topics"] for e in events if e.kind.value == "topics_changed"]
    assert changes == [["internet", "billing"], ["internet"], ["internet", "roaming"]]


async def _until_topic_changes(chat: Chat, case_id: int, count: int) -> None:
    """Wait until the case has `count` topic changes recorded."""
    async with asyncio.timeout(20):
        while True:
            async with chat.deps.uow() as uow:
                events = await uow.events.for_case(case_id)
            if sum(e.kind.value == "topics_changed" for e in events) >= count:
                return
            await asyncio.sleep(0.05)
