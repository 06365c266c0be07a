"""Working cases from the chat: replies, commands, announcements, lapsed claims, restarts."""

from __future__ import annotations

import asyncio
from pathlib import Path

from socialcare.bot.actions import ActionKind, CaseAction
from tests.conftest import FlowingClock
from tests.e2e.chat import (
    AIGERIM_SLACK,
    AIGERIM_TG,
    DANIYAR_TG,
    SAULE_SLACK,
    SAULE_TG,
    SLACK_CHANNEL,
    STRANGER_TG,
    TELEGRAM_CHAT,
    Chat,
    eventually,
    mention,
    minutes_ago,
    running_chat,
)


def _pack(kind: ActionKind, case_id: int) -> str:
    return CaseAction(kind, case_id).pack()


async def test_a_reply_from_the_slack_form_is_published_at_the_source_and_recorded(
    tmp_path: Path, flowing_clock: FlowingClock
) -> None:
    async with running_chat(tmp_path, flowing_clock) as chat:
        [result] = await chat.ingest(mention("ig-1", published=minutes_ago(flowing_clock, 2),
                                             thread_id="ig-thread-1"))
        case_id = result["case_id"]
        await eventually(lambda: chat.slack_cards())
        await chat.slack_send(chat.slack.block_actions(
            action_id=_pack(ActionKind.REPLY, case_id), channel=SLACK_CHANNEL,
            user=AIGERIM_SLACK))
        view = await eventually(lambda: chat.slack.views and chat.slack.latest_view())

        empty = await chat.slack_send(chat.slack.view_submission(values={}))
        assert empty.json()["response_action"] == "errors"
        assert not chat.platform.replies
        await chat.slack_send(chat.slack.view_submission(
            values={"saved": {"saved": "0"}}))
        await eventually(lambda: chat.platform.replies)
        await eventually(lambda: "Answered by Aigerim" in str(chat.slack_cards()[0].blocks))
        # The platform echoes our reply back as a mention: it is a duplicate, not a case.
        # (An echo that comes before the reply is stored: tests/integration/test_replies.py.)
        [echo] = await chat.ingest(mention("reply-1", "We are sorry", thread_id="ig-thread-1",
                                           published=minutes_ago(flowing_clock, 0)))
        told = await eventually(lambda: chat.slack.ephemerals_for(AIGERIM_SLACK))
        async with chat.deps.uow() as uow:
            events = await uow.events.for_case(case_id)

    assert view.view["private_metadata"] == f"{case_id}|{SLACK_CHANNEL}"
    [published] = chat.platform.replies
    assert published["in_reply_to"] == "ig-1"
    assert published["thread_id"] == "ig-thread-1"
    assert published["text"].startswith("We are sorry for the trouble")
    assert chat.platform.refused == 0
    assert echo == {"external_id": "reply-1", "outcome": "dropped", "reason": "duplicate"}
    assert "was published and recorded" in told[-1].text
    assert events[-1].kind.value == "agent_message"
    assert events[-1].data["mention"] == "reply-1"


async def test_a_reply_in_telegram_goes_through_a_private_prompt_or_a_reply_to_the_card(
    tmp_path: Path, flowing_clock: FlowingClock
) -> None:
    async with running_chat(tmp_path, flowing_clock) as chat:
        results = await chat.ingest(
            mention("ig-1", published=minutes_ago(flowing_clock, 2)),
            mention("ig-2", "Kcell again?", published=minutes_ago(flowing_clock, 1)),
        )
        first, second = (r["case_id"] for r in results)
        cards = await eventually(lambda: len(chat.telegram_cards()) == 2
                                 and chat.telegram_cards())
        click = chat.telegram.callback_query_update(
            cards[0], _pack(ActionKind.REPLY, first), from_user=AIGERIM_TG)
        await chat.telegram_send(click)
        prompt = await eventually(lambda: chat.telegram.bot_messages(AIGERIM_TG["id"]))
        await chat.telegram_send(chat.telegram.reply_update(
            prompt[0], "We are fixing it, sorry!", from_user=AIGERIM_TG))
        await eventually(lambda: len(chat.platform.replies) == 1)
        # A reply straight to the second card, in the team chat.
        await chat.telegram_send(chat.telegram.reply_update(
            cards[1], "Please DM us your number", from_user=DANIYAR_TG))
        await eventually(lambda: len(chat.platform.replies) == 2)
        await eventually(lambda: all("Answered by" in (c.text or "")
                                     for c in chat.telegram_cards()))
        query = chat.telegram.callback_queries[click["callback_query"]["id"]]

    assert query.answered and "private message" in query.answer["text"]
    assert "answer to #1" in (prompt[0].text or "")
    assert [(r["in_reply_to"], r["text"]) for r in chat.platform.replies] == [
        ("ig-1", "We are fixing it, sorry!"), ("ig-2", "Please DM us your number"),
    ]
    assert second == 2


async def test_slash_commands_answer_in_both_messengers_with_usage_for_bad_arguments(
    tmp_path: Path, flowing_clock: FlowingClock
) -> None:
    async with running_chat(tmp_path, flowing_clock) as chat:
        await chat.ingest(mention("ig-1", "Kcell <!channel> *help*",
                                  published=minutes_ago(flowing_clock, 2)))
        await eventually(lambda: chat.slack_cards())
        slack_answers = [
            await chat.slack_command("/claim", text, user=AIGERIM_SLACK)
            for text in ("", "twelve", "#1")
        ]
        slack_answers.append(await chat.slack_command("/queue", user=AIGERIM_SLACK))
        await chat.telegram_send(chat.telegram.command_update(
            "case", "1", from_user=DANIYAR_TG, mention_bot=True))
        await chat.telegram_send(chat.telegram.command_update(
            "resolve", "", from_user=DANIYAR_TG))
        await chat.telegram_send(chat.telegram.command_update(
            "mine", "", from_user=STRANGER_TG))
        def answers_in_telegram() -> list:  # type: ignore[type-arg]
            # Answers quote the command they answer.
            return [m for m in chat.telegram.bot_messages(TELEGRAM_CHAT)
                    if m.reply_to_message_id is not None]

        telegram_answers = await eventually(lambda: len(answers_in_telegram()) == 3
                                            and answers_in_telegram())

    texts = [r.body["text"] for r in slack_answers]
    assert texts[0].startswith("Usage: /claim ID")
    assert texts[1].startswith("Usage: /claim ID")
    assert texts[2] == "Case #1 is yours."
    queue = str(slack_answers[3].body["blocks"])
    assert "Kcell <!channel> *help*" in queue and "Claimed by Aigerim" in queue
    assert all(r.body.get("response_type") == "ephemeral" for r in slack_answers)
    answers = [m.text or "" for m in telegram_answers]
    assert any(a.startswith("#1 · Instagram · Kcell") and "Kcell <!channel> *help*" in a
               for a in answers)
    assert "Usage: /resolve ID — e.g. /resolve 12" in answers
    assert any("not in this team's roster" in a for a in answers)


async def test_an_announcement_is_posted_and_pinned_in_every_team_channel(
    tmp_path: Path, flowing_clock: FlowingClock
) -> None:
    async with running_chat(tmp_path, flowing_clock) as chat:
        refused = [await chat.slack_command(
            "/announce", "Almaty outage: use the standard apology", user=AIGERIM_SLACK)]
        done = await chat.slack_command(
            "/announce", "Almaty outage: use the standard apology", user=SAULE_SLACK)
        [slack_notice] = await eventually(lambda: [
            m for m in chat.slack.messages(SLACK_CHANNEL) if m.pinned])
        [telegram_notice] = await eventually(lambda: [
            m for m in chat.telegram.bot_messages(TELEGRAM_CHAT) if m.pinned])

    assert "Only shift leads and admins" in refused[0].body["text"]
    assert "Announcement #1 is on its way to the team (2 place(s))" in done.body["text"]
    assert slack_notice.text == "📣 Saule: Almaty outage: use the standard apology"
    assert telegram_notice.text.startswith(
        "📣 Announcement #1 · Saule\nAlmaty outage: use the standard apology")


async def test_an_unanswered_claim_lapses_back_to_the_queue_and_the_channel_is_told(
    tmp_path: Path, flowing_clock: FlowingClock
) -> None:
    async with running_chat(tmp_path, flowing_clock) as chat:
        [result] = await chat.ingest(mention("ig-1", published=minutes_ago(flowing_clock, 0)))
        case_id = result["case_id"]
        await eventually(lambda: chat.telegram_cards())
        await chat.telegram_send(chat.telegram.callback_query_update(
            chat.telegram_cards()[0], _pack(ActionKind.CLAIM, case_id), from_user=SAULE_TG))
        await eventually(lambda: "Claimed by Saule" in chat.telegram_cards()[0].text)
        # Slack's card too, before the claim can lapse: a card posted after the lapse
        # shows it, and what fired before a card was posted is not told in its channel
        # (each messenger's cards go at their own pace).
        await eventually(lambda: "Claimed by Saule" in str(chat.slack_cards()[0].blocks))

        await chat.tick(minutes=11)  # the example config lets a claim stand 10 minutes

        await eventually(lambda: "Unclaimed" in chat.telegram_cards()[0].text)
        told = await eventually(lambda: [
            m for m in chat.slack.messages(SLACK_CHANNEL, include_replies=False)
            if m.text.startswith("↩")])

    assert told[0].text == "↩ #1 is back in the queue: Saule did not answer in time."
    assert told[0].thread_ts is None  # in the channel, where everyone sees it


async def test_a_restart_re_syncs_without_posting_twice(
    tmp_path: Path, flowing_clock: FlowingClock
) -> None:
    async with running_chat(tmp_path, flowing_clock) as chat:
        # Yesterday's report falls due at start (15:00 in Almaty): posted first, it does
        # not take the fault meant for the card (its charts are drawn first: matplotlib's
        # first drawing in the process is slow on a busy machine).
        await eventually(lambda: chat.slack.messages("C0REPORTS0"), within=30)
        # Slack takes the post but the answer is lost: the card's outcome is unknown.
        chat.slack.timeout_next("chat.postMessage", delay=0.2, applied=True)
        [result] = await chat.ingest(mention("ig-1", published=minutes_ago(flowing_clock, 1)))
        await eventually(lambda: chat.slack_cards() and chat.telegram_cards())
        # The dispatcher retries, finds the card, adopts it.
        await _until_in_step(chat, result["case_id"])
        posts_before = len(chat.slack.calls_to("chat.postMessage"))

        restarted = chat.app.dispatcher
        report = await restarted.sync()

    assert [c.params["channel"] for c in chat.slack.calls_to("chat.postMessage")
            if c.fault] == [SLACK_CHANNEL]
    assert len(chat.slack_cards()) == 1 and len(chat.telegram_cards()) == 1
    assert chat.slack.calls_to("conversations.history")
    assert len(chat.slack.calls_to("chat.postMessage")) == posts_before
    assert not report.posted and not report.edited
    assert result["case_id"] == 1


async def _until_in_step(chat: Chat, case_id: int) -> None:
    """Wait until each card of the case is recorded as posted and showing the case."""
    async with asyncio.timeout(20):
        while True:
            async with chat.deps.uow() as uow:
                cards = await uow.cards.for_case(case_id)
            if cards and all(c.message_id is not None and c.synced_seq >= c.change_seq
                             for c in cards):
                return
            await asyncio.sleep(0.05)


async def test_a_burst_of_commands_next_to_new_cards_draws_no_flood_control(
    tmp_path: Path, flowing_clock: FlowingClock
) -> None:
    async with running_chat(tmp_path, flowing_clock) as chat:
        await chat.ingest(*(mention(f"ig-{n}", f"Kcell 4G down, street {n}",
                                    published=minutes_ago(flowing_clock, 2))
                            for n in range(3)))
        for _ in range(4):
            await chat.telegram_send(chat.telegram.command_update("help", from_user=AIGERIM_TG))

        def answers() -> list:  # type: ignore[type-arg]
            return [m for m in chat.telegram.bot_messages(TELEGRAM_CHAT)
                    if (m.text or "").startswith("Commands:")]

        await eventually(lambda: len(chat.telegram_cards()) == 3, within=30)
        await eventually(lambda: len(answers()) == 4, within=30)

    flood = [c.method for c in chat.telegram.calls if c.status == 429]
    assert flood == []
