"""Cards in Slack and Telegram, kept in step, with the real SDKs against fake servers."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from socialcare.bot import cases
from socialcare.bot.actions import ActionKind, CaseAction
from tests.conftest import FlowingClock
from tests.e2e.chat import (
    AIGERIM_SLACK,
    DANIYAR_TG,
    SAULE_TG,
    SLACK_CHANNEL,
    STRANGER_SLACK,
    STRANGER_TG,
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
        winner = "Aigerim" if "Claimed by Aigerim" in card[0] else "Daniyar"
        # Whichever messenger won, the other one's card says so too.
        await eventually(lambda: f"Claimed by {winner}" in str(chat.slack_cards()[0].blocks))
        if winner == "Aigerim":
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


async def test_the_sla_line_moves_in_steps_and_the_breach_pings_the_leads_once_per_point(
    tmp_path: Path, flowing_clock: FlowingClock
) -> None:
    async with running_chat(tmp_path, flowing_clock) as chat:
        await chat.ingest(mention("ig-1", published=minutes_ago(flowing_clock, 0)))
        await eventually(lambda: chat.slack_cards() and chat.telegram_cards())
        seen = [chat.telegram_cards()[0].text]

        async def step(minutes: float, expected: str) -> None:
            await chat.tick(minutes=minutes)
            await eventually(lambda: expected in chat.telegram_cards()[0].text)
            seen.append(expected)

        await step(6, "⏱ 5+ min left")  # 6 of 15 minutes gone
        await step(5.5, "⚠ 3 min left")  # 11.5 gone: past the 80 % warning
        await step(4, "🔴 overdue")  # 15.5 gone
        await step(1, "🔴 overdue 1 min")
        await step(5, "🔴 overdue 5 min+")  # 21.5 gone: one step per 5 minutes now
        slack_card = chat.slack_cards()[0]
        card = chat.telegram_cards()[0]

        def telegram_notes() -> list:  # type: ignore[type-arg]
            return [m for m in chat.telegram.bot_messages(TELEGRAM_CHAT)
                    if m.reply_to_message_id == card.message_id]

        await eventually(lambda: len(chat.slack.thread(SLACK_CHANNEL, slack_card.ts)) == 4
                         and len(telegram_notes()) == 4)
        await chat.tick()  # a sweep with nothing due pings nobody again
        await asyncio.sleep(1.5)

        notes = [m.text for m in chat.slack.thread(SLACK_CHANNEL, slack_card.ts)]
        assert notes[0].startswith("⚠ #1: 50% of the answer time is gone")
        assert notes[1].startswith("⚠ #1: 80% of the answer time is gone")
        assert notes[2].startswith("🔴 #1 has had no answer") and "<@U0LEAD0001>" in notes[2]
        # The warnings give the answer's deadline, not the moment they fell due.
        deadline = notes[2].split("by its deadline ")[1][:5]
        assert notes[0].endswith(f"answer by {deadline}.") and notes[1].endswith(
            f"answer by {deadline}."), notes
        assert notes[3].startswith("🔴 #1 is still unanswered, 5 min past its deadline")
        assert "<@U0LEAD0001>" in notes[3]
        assert sum("<@U0LEAD0001>" in n for n in notes) == 2
        replies = telegram_notes()
        assert len(notes) == len(replies) == 4
        assert all("late" not in note for note in notes)
        assert 'tg://user?id=100000003' in (replies[2].raw_text or "")
        # Slack gets the deadline as a date token, rendered in each reader's timezone.
        assert "<!date^" in str(slack_card.blocks)


NASTY = "<!channel> <!here> <@U123> *bold* <b>x</b> &amp; _it_ `code` "


async def test_customer_text_is_shown_literally_cut_to_the_limits_and_pings_nobody(
    tmp_path: Path, flowing_clock: FlowingClock
) -> None:
    text = "Kcell " + NASTY + "word " * 2000  # over 10,000 characters
    assert len(text) > 10_000
    async with running_chat(tmp_path, flowing_clock) as chat:
        await chat.ingest(mention("ig-1", text, published=minutes_ago(flowing_clock, 1),
                                 author={"name": "<!everyone> *Boss*", "handle": "@x&y"}))
        [slack_card] = await eventually(lambda: chat.slack_cards())
        [telegram_card] = await eventually(lambda: chat.telegram_cards())

    # Slack: the customer's words are rich-text *text* elements, shown as written.
    quote = next(e for block in slack_card.blocks if block["type"] == "rich_text"
                 for e in block["elements"] if e["type"] == "rich_text_quote")
    shown = quote["elements"][0]["text"]
    assert shown.startswith("Kcell " + NASTY)
    assert len(shown) < 3000 and shown.endswith("…")
    author = str(next(b for b in slack_card.blocks if b["type"] == "rich_text"))
    assert "<!everyone> *Boss*" in author
    # ...and nowhere as markup that Slack would parse: no raw "<" in any mrkdwn text.
    mrkdwn = [e["text"] for b in slack_card.blocks for e in _texts(b) if e["type"] == "mrkdwn"]
    assert mrkdwn and not any("<!" in t.replace("<!date^", "") for t in mrkdwn)
    assert "<" not in slack_card.text.replace("<!date^", "")
    # Telegram: escaped HTML, so the parsed text is the customer's text itself.
    assert "Kcell " + NASTY in (telegram_card.text or "")
    assert "&lt;!channel&gt;" in (telegram_card.raw_text or "")
    assert "&amp;amp;" in (telegram_card.raw_text or "")
    assert len(telegram_card.text or "") < 4096
    assert "<!everyone> *Boss*" in (telegram_card.text or "")


def _texts(block: dict) -> list[dict]:  # type: ignore[type-arg]
    found = []
    for key in ("text", "elements", "fields"):
        value = block.get(key)
        if isinstance(value, dict) and "type" in value:
            found.append(value)
        elif isinstance(value, list):
            found += [v for v in value if isinstance(v, dict) and v.get("type") == "mrkdwn"]
    return found


async def test_forged_stale_and_foreign_requests_change_nothing(
    tmp_path: Path, flowing_clock: FlowingClock
) -> None:
    async with running_chat(tmp_path, flowing_clock) as chat:
        [result] = await chat.ingest(mention("ig-1", published=minutes_ago(flowing_clock, 1)))
        case_id = result["case_id"]
        await eventually(lambda: chat.slack_cards() and chat.telegram_cards())
        click = {"action_id": _claim(case_id), "channel": SLACK_CHANNEL, "user": AIGERIM_SLACK}

        forged = await chat.slack_send(chat.slack.block_actions(**click,
                                                                signing_secret="not-ours"))
        stale = await chat.slack_send(chat.slack.block_actions(
            **click, timestamp=int(time.time()) - 6 * 60))
        tg_card = chat.telegram_cards()[0]
        no_secret = await chat.telegram_send(
            chat.telegram.callback_query_update(tg_card, _claim(case_id), from_user=DANIYAR_TG),
            secret_token="")
        wrong_secret = await chat.telegram_send(
            chat.telegram.callback_query_update(tg_card, _claim(case_id), from_user=DANIYAR_TG),
            secret_token="guess")
        outsider_slack = await chat.slack_send(chat.slack.block_actions(
            action_id=_claim(case_id), channel=SLACK_CHANNEL, user=STRANGER_SLACK))
        outsider_update = chat.telegram.callback_query_update(
            tg_card, _claim(case_id), from_user=STRANGER_TG)
        outsider_tg = await chat.telegram_send(outsider_update)

        assert (forged.status, stale.status) == (401, 401)
        assert (no_secret.status, wrong_secret.status) == (403, 403)
        assert (outsider_slack.status, outsider_tg.status) == (200, 200)
        query = chat.telegram.callback_queries[outsider_update["callback_query"]["id"]]
        await eventually(lambda: query.answered)
        assert "not in this team's roster" in query.answer["text"]
        told = await eventually(lambda: [r.body["text"] for r in chat.slack.responses()])
        assert "not in this team's roster" in told[0]
        async with chat.deps.uow() as uow:
            case = await uow.cases.get(case_id)
            events = await uow.events.for_case(case_id)
        assert case.state.value == "new"
        assert [e.kind.value for e in events] == ["created"]


async def test_under_429_and_5xx_every_card_arrives_once_earliest_deadline_first(
    tmp_path: Path, flowing_clock: FlowingClock
) -> None:
    # Published so that deadlines interleave the tiers: main 15 min, forums 60 min.
    burst = [
        ("f1", "forums", 50), ("m1", "webhook", 2), ("f2", "forums", 55),
        ("m2", "webhook", 12), ("m3", "webhook", 6), ("f3", "forums", 10),
    ]
    earliest_first = ["m2", "f2", "m3", "f1", "m1", "f3"]
    async with running_chat(tmp_path, flowing_clock) as chat:
        # Yesterday's report falls due at start (15:00 in Almaty): posted first, it takes
        # none of the faults meant for the cards.
        await eventually(lambda: chat.slack.messages("C0REPORTS0"), within=30)
        chat.slack.fail_next("chat.postMessage", 429, retry_after=1)
        chat.slack.fail_next("chat.postMessage", 503, times=2)
        chat.telegram.fail_next("sendMessage", 429, retry_after=1)
        chat.telegram.fail_next("sendMessage", 502, times=2)
        results = await chat.ingest(*(
            mention(name, f"Kcell {name}", source=source,
                    published=minutes_ago(flowing_clock, ago))
            for name, source, ago in burst
        ))
        ids = {name: r["case_id"] for (name, _, _), r in zip(burst, results, strict=True)}

        await eventually(lambda: len(chat.slack_cards()) == 6 and len(chat.telegram_cards()) == 6,
                         within=30)
        slack_order = [c.metadata["event_payload"]["case_id"] for c in chat.slack_cards()]
        telegram_order = [_case_of(m) for m in chat.telegram_cards()]
        failures = (
            [c.status for c in chat.slack.calls_to("chat.postMessage") if c.status != 200],
            [c.status for c in chat.telegram.calls_to("sendMessage") if c.status != 200],
        )

        # No edit is lost: the case changes while edits fail; the cards end in step.
        case = ids["m2"]
        chat.slack.fail_next("chat.update", 500, times=2)
        chat.telegram.fail_next("editMessageText", 502, times=2)
        service = {"uow": chat.deps.uow(), "clock": chat.deps.clock, "team": chat.deps.team}
        await cases.claim(cases.Claim(case, "aigerim"), **service)
        chat.deps.wake()
        await cases.mark_answered(cases.MarkAnswered(case, "aigerim"), **service)
        await cases.resolve(cases.Resolve(case, "aigerim"), **service)
        chat.deps.wake()
        await eventually(lambda: "Resolved" in chat.telegram_cards()[0].text
                         and "Resolved" in str(chat.slack_cards()[0].blocks), within=30)

    assert failures == ([429, 503, 503], [429, 502, 502])
    assert {c.params["channel"] for c in chat.slack.calls_to("chat.postMessage")
            if c.status != 200} == {SLACK_CHANNEL}
    assert slack_order == telegram_order == [ids[name] for name in earliest_first]
    # A resolved case's card offers only to correct its topics and to escalate it.
    assert chat.telegram_cards()[0].callback_data() == [f"sc1:topic:{case}",
                                                        f"sc1:escalate:{case}"]
    assert chat.slack_cards()[0].action_ids() == [f"sc1:topic:{case}", f"sc1:escalate:{case}"]


def _case_of(message) -> int:  # type: ignore[no-untyped-def]
    return int((message.text or "").split(" ", 1)[0].removeprefix("#"))


async def test_slack_over_socket_mode_and_telegram_by_polling_work_the_same(
    tmp_path: Path, flowing_clock: FlowingClock
) -> None:
    async with running_chat(tmp_path, flowing_clock, socket_mode=True, polling=True) as chat:
        await chat.slack.socket_connected()
        [result] = await chat.ingest(mention("ig-1", published=minutes_ago(flowing_clock, 1)))
        case_id = result["case_id"]
        await eventually(lambda: chat.slack_cards() and chat.telegram_cards())

        ack = await chat.slack.socket_send(chat.slack.block_actions(
            action_id=_claim(case_id), channel=SLACK_CHANNEL, user=AIGERIM_SLACK))
        await eventually(lambda: "Claimed by Aigerim" in chat.telegram_cards()[0].text)
        release = CaseAction(ActionKind.RELEASE, case_id).pack()
        update = chat.telegram.push_update(chat.telegram.callback_query_update(
            chat.telegram_cards()[0], release, from_user=SAULE_TG))
        await eventually(lambda: "Unclaimed" in str(chat.slack_cards()[0].blocks))
        query = chat.telegram.callback_queries[update["callback_query"]["id"]]
        await eventually(lambda: query.answered)

    assert ack is not None and ack.seconds < 3
    assert not chat.slack.calls_to("chat.postEphemeral")
    assert chat.telegram.webhook.get("url", "") == ""


async def test_a_forum_burst_leaves_room_in_a_telegram_group_for_a_main_tier_card(
    tmp_path: Path, flowing_clock: FlowingClock
) -> None:
    # A Telegram group takes 20 messages a minute; forum cards may use 5 of them.
    async with running_chat(tmp_path, flowing_clock) as chat:
        await chat.ingest(*(
            mention(f"f{n}", f"Kcell forum post {n}", source="forums",
                    published=minutes_ago(flowing_clock, 1)) for n in range(20)))
        await eventually(lambda: len(chat.telegram_cards()) == 5, within=30)
        await asyncio.sleep(2)  # the channel's 1 a second would allow more by now
        forum_cards_held = len(chat.telegram_cards())
        [main] = await chat.ingest(mention("m1", published=minutes_ago(flowing_clock, 1)))
        started = time.monotonic()
        await eventually(lambda: any(_case_of(m) == main["case_id"]
                                     for m in chat.telegram_cards()), within=10)
        waited = time.monotonic() - started

    assert forum_cards_held == 5
    assert waited < 5
