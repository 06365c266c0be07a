"""Hand-offs to the second line end to end: the team's channel, its ticket system, and
the way back to the agent."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp

from socialcare.adapters.collectors.signature import sign
from socialcare.bot.actions import ActionKind, CaseAction
from socialcare.bot.metrics import case_figures
from tests.conftest import FlowingClock
from tests.e2e.chat import (
    AIGERIM_SLACK,
    AIGERIM_TG,
    BILLING_CHANNEL,
    CALLBACK_CHAT,
    DANIYAR_TG,
    GULNARA_SLACK,
    HANDOFF_SECRET,
    SLACK_CHANNEL,
    Chat,
    eventually,
    mention,
    minutes_ago,
    running_chat,
)


async def _callback(chat: Chat, team: str, body: dict, secret: str = HANDOFF_SECRET) -> tuple:  # type: ignore[type-arg]
    raw = json.dumps(body).encode()
    async with aiohttp.ClientSession() as session, session.post(
        f"{chat.base_url}/handoff/{team}", data=raw, headers={"X-Signature": sign(raw, secret)}
    ) as response:
        return response.status, await response.json()


async def test_a_hand_off_reaches_the_team_and_its_ticket_system_and_the_answer_returns_it(
    tmp_path: Path, flowing_clock: FlowingClock
) -> None:
    async with running_chat(tmp_path, flowing_clock) as chat:
        [result] = await chat.ingest(mention(
            "ig-1", "Kcell charged me twice, my number is +7 777 123 45 12",
            published=minutes_ago(flowing_clock, 2)))
        case_id = result["case_id"]
        await eventually(lambda: chat.slack_cards())
        for kind in (ActionKind.CLAIM, ActionKind.HAND_OFF):
            await chat.slack_send(chat.slack.block_actions(
                action_id=CaseAction(kind, case_id).pack(), channel=SLACK_CHANNEL,
                user=AIGERIM_SLACK))
        await eventually(lambda: chat.slack.views)
        await chat.slack_send(chat.slack.view_submission(values={
            "team": {"team": "billing"}, "note": {"note": "Double charge, please refund"}}))
        [team_card] = await eventually(lambda: chat.slack_cards(BILLING_CHANNEL))
        team_buttons = team_card.action_ids()
        [ticket] = await eventually(lambda: chat.tickets.replies)
        await eventually(lambda: "With the second line: Billing" in chat.telegram_cards()[0].text)

        forged = await _callback(chat, "billing", {"case_id": case_id}, secret="guess")
        malformed = await _callback(chat, "billing", {"case": case_id})
        unknown = await _callback(chat, "legal", {"case_id": case_id})
        flowing_clock.advance(minutes=20)  # the team takes twenty minutes
        answered = await _callback(chat, "billing", {"case_id": case_id, "note": "Refunded"})
        again = await _callback(chat, "billing", {"case_id": case_id})
        await eventually(lambda: "Claimed by Aigerim" in chat.telegram_cards()[0].text
                         and "With the second line" not in chat.telegram_cards()[0].text)
        history = chat.telegram_cards()[0].text
        # Each messenger's cards go at their own pace: the team's Slack card too.
        await eventually(lambda: chat.slack_cards(BILLING_CHANNEL)[0].action_ids() == [])
        told = await eventually(lambda: [m for m in chat.telegram.bot_messages(AIGERIM_TG["id"])
                                         if "is back from Billing" in (m.text or "")])
        async with chat.deps.uow() as uow:
            events = await uow.events.for_case(case_id)

    assert team_buttons == [f"sc1:handback:{case_id}"]
    assert team_card.action_ids() == []  # back with the agent: nothing left for the team
    assert ticket["case_id"] == case_id and ticket["priority"] == "social_media"
    assert ticket["note"] == "Double charge, please refund"
    # The number is for the call centre alone: the billing team's ticket and card mask it.
    assert ticket["text"] == "Kcell charged me twice, my number is +7 7** *** **12"
    assert "+7 7** *** **12" in str(team_card.blocks) and "123 45 12" not in str(team_card.blocks)
    assert chat.tickets.refused == 0
    assert (forged[0], malformed[0], unknown[0]) == (401, 400, 404)
    assert answered == (200, {"case_id": case_id, "returned_to": "aigerim"})
    assert again[0] == 409
    assert "Billing sent it back from the second line" in history
    assert told[0].text == f"↩ Case #{case_id} is back from Billing: Refunded. It is yours again."
    second_line = case_figures(events, now=flowing_clock.now()).second_line
    assert second_line.total_seconds() >= 20 * 60


async def test_a_telegram_hand_off_is_answered_with_the_teams_button(
    tmp_path: Path, flowing_clock: FlowingClock
) -> None:
    async with running_chat(tmp_path, flowing_clock) as chat:
        await chat.ingest(mention("ig-1", "Kcell, call me back please",
                                  published=minutes_ago(flowing_clock, 2)))
        await eventually(lambda: chat.telegram_cards())
        await chat.telegram_send(chat.telegram.command_update(
            "handoff", "1 callback wants a call at 18:00", from_user=DANIYAR_TG))
        [team_card] = await eventually(lambda: chat.telegram_cards(CALLBACK_CHAT))
        refused = chat.telegram.callback_query_update(
            team_card, CaseAction(ActionKind.HAND_BACK, 1).pack(), from_user=AIGERIM_TG)
        await chat.telegram_send(refused)
        await chat.slack_send(chat.slack.slash_command("/handback", "1 called, all good",
                                                       user=GULNARA_SLACK,
                                                       channel=SLACK_CHANNEL))
        told = await eventually(lambda: [r.body["text"] for r in chat.slack.responses()])
        back = chat.telegram.callback_query_update(
            chat.telegram_cards(CALLBACK_CHAT)[0], CaseAction(ActionKind.HAND_BACK, 1).pack(),
            from_user=DANIYAR_TG)
        await chat.telegram_send(back)
        await eventually(lambda: "Claimed by Daniyar" in chat.telegram_cards()[0].text)
        await eventually(lambda: chat.telegram_cards(CALLBACK_CHAT)[0].callback_data() == [])

    assert "Case #1 is with callback, not your team." in told[0]
    other_agent = chat.telegram.callback_queries[refused["callback_query"]["id"]]
    assert other_agent.answer["text"].startswith(
        "Case #1 is with callback: only that team, Daniyar (who handed it off)")
    assert chat.telegram.callback_queries[back["callback_query"]["id"]].answered
