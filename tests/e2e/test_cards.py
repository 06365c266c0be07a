"""Cards in Slack and Telegram, kept in step, with the real SDKs against fake servers."""

from __future__ import annotations

import asyncio
from pathlib import Path

from socialcare.bot.actions import ActionKind, CaseAction
from tests.conftest import FlowingClock
from tests.e2e.chat import (
    AIGERIM_SLACK,
    DANIYAR_TG,
    SAULE_TG,
    SLACK_CHANNEL,
    TELEGRAM_CHAT,
    eventually,
    mention,
    minutes_ago,
    running_chat,
)


def _claim(case_id: int) -> str:
    return CaseAction(ActionKind.CLAIM, case_id).pack()


async def test_a_mention_becomes_one_card_in_each_slack_channel_and_telegram_chat(
    tmp_path: Path, flowing_clock: FlowingClock
) -> None:
    async with running_chat(tmp_path, flowing_clock) as chat:
        [result] = await chat.ingest(mention("ig-1", published=minutes_ago(flowing_clock, 3)))

        slack_card = await eventually(lambda: chat.slack_cards())
        telegram_card = await eventually(lambda: chat.telegram_cards())
        await asyncio.sleep(0.3)  # nothing more arrives

        assert len(chat.slack_cards()) == 1 and len(chat.telegram_cards()) == 1
        assert slack_card[0].metadata["event_payload"] == {"case_id": result["case_id"]}
        assert _claim(result["case_id"]) in slack_card[0].action_ids()
        assert _claim(result["case_id"]) in telegram_card[0].callback_data()
        assert "10+ min left" in telegram_card[0].text
        assert "Unclaimed" in telegram_card[0].text


async def test_a_claim_in_slack_shows_in_telegram_and_a_release_in_telegram_shows_in_slack(
    tmp_path: Path, flowing_clock: FlowingClock
) -> None:
    async with running_chat(tmp_path, flowing_clock) as chat:
        [result] = await chat.ingest(mention("ig-1", published=minutes_ago(flowing_clock, 1)))
        case_id = result["case_id"]
        await eventually(lambda: chat.slack_cards() and chat.telegram_cards())

        delivery = await chat.slack_send(chat.slack.block_actions(
            action_id=_claim(case_id), channel=SLACK_CHANNEL, user=AIGERIM_SLACK))
        assert delivery.status == 200
        await eventually(lambda: "Claimed by Aigerim" in chat.telegram_cards()[0].text)

        card = chat.telegram_cards()[0]
        release = CaseAction(ActionKind.RELEASE, case_id).pack()
        update = chat.telegram.callback_query_update(card, release, from_user=SAULE_TG)
        assert (await chat.telegram_send(update)).status == 200

        def slack_says_unclaimed() -> bool:
            blocks = str(chat.slack_cards()[0].blocks)
            return "Unclaimed" in blocks and "Claimed by" not in blocks

        await eventually(slack_says_unclaimed)
        answered = await eventually(lambda: chat.telegram.callback_queries[
            update["callback_query"]["id"]].answered)
        assert answered


async def test_two_claims_at_once_from_both_messengers_have_one_winner(
    tmp_path: Path, flowing_clock: FlowingClock
) -> None:
    async with running_chat(tmp_path, flowing_clock) as chat:
        [result] = await chat.ingest(mention("ig-1", published=minutes_ago(flowing_clock, 1)))
        case_id = result["case_id"]
        await eventually(lambda: chat.slack_cards() and chat.telegram_cards())
        telegram_click = chat.telegram.callback_query_update(
            chat.telegram_cards()[0], _claim(case_id), from_user=DANIYAR_TG)
        slack_click = chat.slack.block_actions(action_id=_claim(case_id),
                                               channel=SLACK_CHANNEL, user=AIGERIM_SLACK)

        await asyncio.gather(chat.slack_send(slack_click), chat.telegram_send(telegram_click))

        query = chat.telegram.callback_queries[telegram_click["callback_query"]["id"]]
        await eventually(lambda: query.answered)
        telegram_told = (query.answer or {}).get("text", "")
        card = await eventually(lambda: [m.text for m in chat.telegram_cards()
                                         if "Claimed by" in (m.text or "")])
        if "Claimed by Aigerim" in card[0]:
            assert "already claimed by Aigerim" in telegram_told
            assert query.answer and query.answer.get("show_alert")
            await asyncio.sleep(0.3)
            assert not chat.slack.responses()
        else:
            told = await eventually(lambda: [r.body.get("text", "")
                                             for r in chat.slack.responses()])
            assert "already claimed by Daniyar" in told[0]
            assert "already claimed" not in telegram_told
        async with chat.deps.uow() as uow:
            events = await uow.events.for_case(case_id)
        assert [e.kind.value for e in events].count("claimed") == 1
