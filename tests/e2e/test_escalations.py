"""Escalations end to end: from either messenger to a director in the other."""

from __future__ import annotations

import json
from pathlib import Path

from socialcare.bot.actions import ActionKind, CaseAction, EscalationAction
from socialcare.bot.actions import EscalationActionKind as Kind
from socialcare.console import access
from socialcare.handlers import scheduler
from tests.conftest import FlowingClock
from tests.e2e.chat import (
    AIGERIM_SLACK,
    AIGERIM_TG,
    ASKAR_TG,
    DANIYAR_TG,
    NURLAN_SLACK,
    SAULE_SLACK,
    SAULE_TG,
    SLACK_CHANNEL,
    TELEGRAM_CHAT,
    Chat,
    eventually,
    mention,
    minutes_ago,
    running_chat,
)
from tests.e2e.test_console import PASSWORD, browser


def _escalation_cards(chat: Chat, user_id: int) -> list:  # type: ignore[type-arg]
    return [m for m in chat.telegram.bot_messages(user_id)
            if any(d.startswith("sc1e:") for d in m.callback_data())]


async def test_from_slack_to_a_director_only_in_telegram_whose_acknowledgement_updates_all(
    tmp_path: Path, flowing_clock: FlowingClock
) -> None:
    async with running_chat(tmp_path, flowing_clock) as chat:
        [result] = await chat.ingest(mention("ig-1", "Kcell billing charged me twice!",
                                             published=minutes_ago(flowing_clock, 2)))
        case_id = result["case_id"]
        await eventually(lambda: chat.slack_cards() and chat.telegram_cards())
        await chat.slack_send(chat.slack.block_actions(
            action_id=CaseAction(ActionKind.ESCALATE, case_id).pack(), channel=SLACK_CHANNEL,
            user=AIGERIM_SLACK))
        form = await eventually(lambda: chat.slack.views and chat.slack.latest_view())
        submitted = await chat.slack_send(chat.slack.view_submission(values={
            "category": {"category": "critical"},
            "director": {"director": "askar"},
            "problem": {"problem": "Double charge for the November bill"},
            "options": {"options": "Refund today\nFix the billing run"},
        }))
        [card] = await eventually(lambda: _escalation_cards(chat, ASKAR_TG["id"]))
        ack = EscalationAction(Kind.ACKNOWLEDGE, 1).pack()
        await chat.telegram_send(chat.telegram.callback_query_update(card, ack,
                                                                     from_user=ASKAR_TG))
        await eventually(lambda: "acknowledged" in chat.telegram_cards()[0].text
                         and "acknowledged" in str(chat.slack_cards()[0].blocks))
        await eventually(lambda: "Acknowledged by Askar" in
                         (chat.telegram.message(ASKAR_TG["id"], card.message_id).text or ""))
        told = await eventually(lambda: [m for m in chat.telegram.bot_messages(AIGERIM_TG["id"])
                                         if "acknowledged your escalation" in (m.text or "")])

    suggested = form.view["blocks"][1]["element"]["initial_option"]["value"]
    assert suggested == "askar"  # his area, billing, is named in the case
    assert submitted.status == 200
    assert "Double charge for the November bill" in card.text
    assert "1. Refund today" in card.text and "2. Fix the billing run" in card.text
    assert f"#{case_id}" in card.text
    assert "Escalated #1 to Askar (critical)" in chat.telegram_cards()[0].text
    assert told[0].text == "✅ Askar acknowledged your escalation #1 (critical)."


async def test_from_a_telegram_command_to_a_director_only_in_slack_who_decides_there(
    tmp_path: Path, flowing_clock: FlowingClock
) -> None:
    async with running_chat(tmp_path, flowing_clock) as chat:
        await chat.ingest(mention("ig-1", published=minutes_ago(flowing_clock, 2)),
                          mention("ig-2", "Kcell 4G down", published=minutes_ago(flowing_clock, 1)))
        await eventually(lambda: len(chat.slack_cards()) == 2)
        await chat.telegram_send(chat.telegram.command_update(
            "escalate", "1,2 insight @nurlan 4G drops in Samal | Add a tower | Warn customers",
            from_user=DANIYAR_TG))

        def nurlan_cards() -> list:  # type: ignore[type-arg]
            dm = chat.slack.channels and [c for c, info in chat.slack.channels.items()
                                          if info.get("user") == NURLAN_SLACK]
            return [m for m in chat.slack.messages(dm[0]) if m.action_ids()] if dm else []

        [card] = await eventually(nurlan_cards)
        await chat.slack_send(chat.slack.block_actions(
            action_id=EscalationAction(Kind.ACKNOWLEDGE, 1).pack(), channel=card.channel,
            message_ts=card.ts, user=NURLAN_SLACK))
        await eventually(lambda: "acknowledged" in chat.telegram_cards()[0].text)
        decide = EscalationAction(Kind.DECIDE, 1, 2).pack()
        await chat.slack_send(chat.slack.block_actions(action_id=decide, channel=card.channel,
                                                       message_ts=card.ts, user=NURLAN_SLACK))
        await eventually(lambda: all("decided" in c.text for c in chat.telegram_cards()))
        told = await eventually(lambda: [m for m in chat.telegram.bot_messages(DANIYAR_TG["id"])
                                         if "decided on your escalation" in (m.text or "")])
        # Nurlan's own card in Slack, edited at Slack's pace.
        await eventually(lambda: "Decided by Nurlan" in str(
            chat.slack.messages(card.channel)[0].blocks))
        answered = [m.text for m in chat.telegram.bot_messages(TELEGRAM_CHAT)
                    if (m.text or "").startswith("Escalation #1")]

    assert answered == ["Escalation #1 (food for thought) is with Nurlan."]
    assert "Option 2: Warn customers" in told[0].text
    assert all("Escalated #1 to Nurlan (food for thought) · decided" in c.text
               for c in chat.telegram_cards())
    decided = chat.slack.messages(card.channel)[0]
    assert "Decided by Nurlan" in str(decided.blocks)
    assert "sc1e:ack:1" not in decided.action_ids()


async def test_bad_escalate_arguments_get_a_usage_line_and_change_nothing(
    tmp_path: Path, flowing_clock: FlowingClock
) -> None:
    async with running_chat(tmp_path, flowing_clock) as chat:
        await chat.ingest(mention("ig-1", published=minutes_ago(flowing_clock, 2)))
        await eventually(lambda: chat.slack_cards())
        answers = [
            (await chat.slack_command("/escalate", args, user=AIGERIM_SLACK)).body["text"]
            for args in ("", "1 urgentish @nurlan x", "1 critical @aigerim Problem",
                         "99 critical @nurlan Problem", "one critical @nurlan Problem",
                         ",".join(["1"] * 21) + " critical @nurlan Too many cases")
        ]
        async with chat.deps.uow() as uow:
            stored = await uow.escalations.find()

    assert stored == []
    assert all("Usage: /escalate CASE" in a for a in answers)
    assert "Say which category" in answers[1]
    assert "Name the responsible director: @nurlan, @askar" in answers[2]
    assert "There is no case #99" in answers[3]
    assert "The case numbers are not clear" in answers[4]


async def test_an_unacknowledged_critical_escalation_is_resent_then_passed_on(
    tmp_path: Path, flowing_clock: FlowingClock
) -> None:
    async with running_chat(tmp_path, flowing_clock) as chat:
        await chat.ingest(mention("ig-1", "Kcell network down", published=minutes_ago(
            flowing_clock, 1)))
        await eventually(lambda: chat.slack_cards())
        await chat.slack_send(chat.slack.slash_command(
            "/escalate", "1 critical @nurlan Network down | Reboot", user=AIGERIM_SLACK,
            channel=SLACK_CHANNEL))

        def nurlan_dm() -> list:  # type: ignore[type-arg]
            dm = [c for c, info in chat.slack.channels.items()
                  if info.get("user") == NURLAN_SLACK]
            return chat.slack.messages(dm[0]) if dm else []

        await eventually(nurlan_dm)
        await chat.tick(minutes=25)  # two reminders, at 10 and 20 minutes
        await eventually(lambda: len(nurlan_dm()) == 3)
        await chat.tick(minutes=6)  # 31 minutes: passed to the next in the chain
        await eventually(lambda: len(nurlan_dm()) == 4)  # Slack notes go at their own pace
        [askar_card] = await eventually(lambda: _escalation_cards(chat, ASKAR_TG["id"]))
        await chat.telegram_send(chat.telegram.callback_query_update(
            askar_card, EscalationAction(Kind.ACKNOWLEDGE, 1).pack(), from_user=ASKAR_TG))
        await eventually(lambda: "Acknowledged by Askar" in (
            chat.telegram.message(ASKAR_TG["id"], askar_card.message_id).text or ""))
        await chat.tick(minutes=30)
        notes = [m.text for m in nurlan_dm()]

    assert notes[1].startswith("🔴 Reminder 1: critical escalation #1 is waiting for you")
    assert notes[2].startswith("🔴 Reminder 2")
    assert notes[3].startswith("↪ Escalation #1 went on to the next director")
    assert len(notes) == 4  # nothing more once acknowledged


async def test_the_weekly_digest_is_posted_once_with_its_agenda_and_on_demand(
    tmp_path: Path, flowing_clock: FlowingClock
) -> None:
    async with running_chat(tmp_path, flowing_clock) as chat:
        # It is Wednesday: last week's digest fell due on Monday 09:00, so the running
        # scheduler posts it at start; a second process finds it done.
        posted = await eventually(lambda: [m for m in chat.slack.messages("C0DIRECTORS")
                                           if m.files])
        again = await scheduler.post_due_digest(chat.deps)
        await chat.ingest(mention("ig-1", published=minutes_ago(flowing_clock, 2)))
        await eventually(lambda: chat.slack_cards())
        await chat.slack_send(chat.slack.slash_command(
            "/escalate", "1 positive @nurlan Customers love the new tariff | Tell marketing",
            user=AIGERIM_SLACK, channel=SLACK_CHANNEL))
        await eventually(lambda: chat.slack.responses())
        await chat.telegram_send(chat.telegram.command_update("digest", "", from_user=SAULE_TG))
        document = await eventually(lambda: [m for m in chat.telegram.bot_messages(
            TELEGRAM_CHAT) if m.media])

    assert len(posted) == 1 and again is None
    assert posted[0].files[0]["name"] == "digest-2026-W47.md"
    assert posted[0].text.startswith("📋 Directors' digest for 2026-W47")
    agenda = next(f["data"] for f in chat.slack.files.values()
                  if f["name"] == "digest-2026-W47.md").decode()
    assert agenda.startswith("# Directors' digest, week 2026-W47 (16.11–22.11.2026)")
    assert document[0].media["filename"] == "digest-2026-W48.md"
    summary = [m.text for m in chat.telegram.bot_messages(TELEGRAM_CHAT)
               if (m.text or "").startswith("📋")]
    assert "positive feedback: 1" in summary[0]


async def test_the_telegram_conversation_escalates_and_the_director_writes_back(
    tmp_path: Path, flowing_clock: FlowingClock
) -> None:
    async with running_chat(tmp_path, flowing_clock) as chat:
        await chat.ingest(mention("ig-1", "Kcell billing: wrong tariff applied",
                                  published=minutes_ago(flowing_clock, 2)))
        [card] = await eventually(lambda: chat.telegram_cards())
        agent, director = DANIYAR_TG, ASKAR_TG

        def last_from_bot(user: dict) -> object:  # type: ignore[type-arg]
            messages = chat.telegram.bot_messages(user["id"])
            return messages[-1] if messages else None

        async def click(user: dict, message: object, data: str) -> None:  # type: ignore[type-arg]
            await chat.telegram_send(chat.telegram.callback_query_update(message, data,
                                                                         from_user=user))

        async def reply(user: dict, prompt: object, text: str) -> None:  # type: ignore[type-arg]
            await chat.telegram_send(chat.telegram.reply_update(prompt, text, from_user=user))

        await click(agent, card, CaseAction(ActionKind.ESCALATE, 1).pack())
        ask = await eventually(lambda: last_from_bot(agent))
        await click(agent, ask, "sc1d:cat:1")  # food for thought
        ask = await eventually(lambda: "Who is responsible?" in (last_from_bot(agent).text or "")
                               and last_from_bot(agent))
        suggested = ask.buttons()[1][0]  # Askar: billing is his area
        await click(agent, ask, "sc1d:dir:1")
        ask = await eventually(lambda: "Describe the problem" in (last_from_bot(agent).text or "")
                               and last_from_bot(agent))
        await reply(agent, ask, "Tariff migration applied the wrong plan")
        ask = await eventually(lambda: "Proposed solutions" in (last_from_bot(agent).text or "")
                               and last_from_bot(agent))
        await reply(agent, ask, "Audit the migration\nRefund the difference")
        ask = await eventually(lambda: "Send this escalation?" in (last_from_bot(agent).text or "")
                               and last_from_bot(agent))
        await click(agent, ask, "sc1d:send:0")
        [escalation_card] = await eventually(lambda: _escalation_cards(chat, director["id"]))

        await click(director, escalation_card, EscalationAction(Kind.COMMENT, 1).pack())
        ask = await eventually(lambda: "Comment" in (last_from_bot(director).text or "")
                               and last_from_bot(director))
        await reply(director, ask, "Checking with finance")
        await click(director, escalation_card, EscalationAction(Kind.WRITE_DECISION, 1).pack())
        ask = await eventually(lambda: "Your decision" in (last_from_bot(director).text or "")
                               and last_from_bot(director))
        await reply(director, ask, "Audit first, then refund everyone affected")
        await eventually(lambda: "Audit first, then refund everyone affected" in (
            chat.telegram.message(director["id"], escalation_card.message_id).text or ""))
        await chat.slack_send(chat.slack.slash_command("/escalations", "insight",
                                                       user=SAULE_SLACK, channel=SLACK_CHANNEL))
        listed = await eventually(lambda: chat.slack.responses())
        shown = chat.telegram.message(director["id"], escalation_card.message_id).text

    assert suggested.startswith("★ Askar")
    assert "Tariff migration applied the wrong plan" in shown
    assert "1. Audit the migration" in shown and "2. Refund the difference" in shown
    assert "Checking with finance" in shown
    assert "Decided by Askar" in shown
    assert listed[0].body["text"].startswith("Escalations (1):\n#1 food for thought · decided")


async def test_a_director_reassigns_from_the_slack_form_to_a_director_in_telegram(
    tmp_path: Path, flowing_clock: FlowingClock
) -> None:
    async with running_chat(tmp_path, flowing_clock) as chat:
        await chat.ingest(mention("ig-1", published=minutes_ago(flowing_clock, 2)))
        await eventually(lambda: chat.slack_cards())
        await chat.slack_send(chat.slack.slash_command(
            "/escalate", "1 critical @nurlan Outage | Reboot", user=AIGERIM_SLACK,
            channel=SLACK_CHANNEL))

        def nurlan_card() -> list:  # type: ignore[type-arg]
            dm = [c for c, info in chat.slack.channels.items()
                  if info.get("user") == NURLAN_SLACK]
            return [m for m in chat.slack.messages(dm[0]) if m.action_ids()] if dm else []

        [card] = await eventually(nurlan_card)
        await chat.slack_send(chat.slack.block_actions(
            action_id=EscalationAction(Kind.REASSIGN, 1, 0).pack(), channel=card.channel,
            message_ts=card.ts, user=NURLAN_SLACK))
        await eventually(lambda: chat.slack.views)
        await chat.slack_send(chat.slack.view_submission(values={
            "director": {"director": "askar"}}))
        [askar_card] = await eventually(lambda: _escalation_cards(chat, ASKAR_TG["id"]))
        await eventually(lambda: "Waiting for Askar" in str(nurlan_card()[0].blocks)
                         if nurlan_card() else False)
        told = await eventually(lambda: [m for m in chat.telegram.bot_messages(AIGERIM_TG["id"])
                                         if "is now with Askar" in (m.text or "")])

    assert "Waiting for Askar to acknowledge" in (askar_card.text or "")
    assert told
    # Nurlan's card stays, for the record, with nothing left for him to press but Comment.
    assert nurlan_card()[0].action_ids() == [EscalationAction(Kind.COMMENT, 1).pack()]


async def test_an_escalation_card_counts_the_cases_it_has_no_room_for_and_links_them_all(
    tmp_path: Path, flowing_clock: FlowingClock
) -> None:
    async with running_chat(tmp_path, flowing_clock) as chat:
        await chat.ingest(*(mention(f"ig-{n}", f"Kcell 4G down again, day {n}",
                                    published=minutes_ago(flowing_clock, 2))
                            for n in range(1, 16)))
        ids = ",".join(str(n) for n in range(1, 16))
        await chat.slack_command("/escalate", f"{ids} critical @nurlan 4G down in Samal",
                                 user=AIGERIM_SLACK)
        await chat.telegram_send(chat.telegram.command_update(
            "escalate", f"{ids} insight @askar 4G down in Samal", from_user=DANIYAR_TG))

        def nurlan_cards() -> list:  # type: ignore[type-arg]
            dm = [c for c, info in chat.slack.channels.items() if info.get("user") == NURLAN_SLACK]
            return [m for m in chat.slack.messages(dm[0]) if m.action_ids()] if dm else []

        [in_slack] = await eventually(nurlan_cards)
        [in_telegram] = await eventually(lambda: _escalation_cards(chat, ASKAR_TG["id"]))
        await access.set_password(chat.deps, "nurlan", PASSWORD)
        async with browser(chat.base_url) as director:
            assert await director.sign_in("nurlan") == 303
            status, page, _ = await director.get("/escalations/1")
            missing = (await director.get("/escalations/99"))[0]

    rest = "… and 5 more: #11, #12, #13, #14, #15"
    link = f"{chat.base_url}/escalations/"
    blocks = json.dumps(in_slack.blocks, ensure_ascii=False)
    assert rest in blocks and "#10 · instagram" in blocks and "#11 · instagram" not in blocks
    assert f'"url": "{link}1"' in blocks and "All 15 cases in the console" in blocks
    assert rest in in_telegram.text and "All 15 cases in the console" in in_telegram.text
    assert any(e.get("url") == f"{link}2" for e in in_telegram.entities)
    assert status == 200
    assert page.count('class="escalation-case"') == 15
    assert 'href="/cases/15"' in page and "4G down in Samal" in page
    assert missing == 404
