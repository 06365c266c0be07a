"""Answers in the form the customer takes in best: a calculation (`/calc`) dropped into
the case's reply form in Slack and in Telegram's private reply conversation, published
and recorded as a calculation; bad arguments get the usage line."""

from __future__ import annotations

import base64
import csv
import io
from pathlib import Path
from typing import Any

import pytest

from socialcare.bot.actions import ActionKind, CaseAction
from socialcare.console import access
from tests.conftest import ROOT, FlowingClock
from tests.e2e.chat import (
    AIGERIM_SLACK,
    AIGERIM_TG,
    CALLBACK_CHAT,
    DANIYAR_TG,
    SAULE_SLACK,
    SLACK_CHANNEL,
    STRANGER_TG,
    eventually,
    mention,
    minutes_ago,
    running_chat,
)
from tests.fakes.telegram import make_user

USAGE = "Usage: /calc CASE tariff=CURRENT"
# How long a step that draws the comparison picture may take (matplotlib's first import
# and drawing, on a machine shared with other test runs).
DRAWING = 30.0


async def test_calc_in_slack_fills_the_reply_form_and_the_answer_is_a_calculation(
    tmp_path: Path, flowing_clock: FlowingClock
) -> None:
    async with running_chat(tmp_path, flowing_clock) as chat:
        [result] = await chat.ingest(mention("ig-1", "Kcell, my tariff is too expensive",
                                             published=minutes_ago(flowing_clock, 2)))
        case_id = result["case_id"]
        await eventually(lambda: chat.slack_cards())
        bad = [await chat.slack_command("/calc", text, user=AIGERIM_SLACK)
               for text in ("", "twelve", f"{case_id} minutes=300", f"{case_id} tariff=Basic gb=x",
                            f"{case_id} tariff=Basic gb=1e999", f"{case_id} tariff=Basic gb=1 gb=2",
                            f"{case_id} tariff=Basic ===")]
        unknown = await chat.slack_command("/calc", f"{case_id} tariff=Gold gb=1",
                                           user=AIGERIM_SLACK)
        no_case = await chat.slack_command("/calc", "99 tariff=Basic gb=1", user=AIGERIM_SLACK)
        assert not chat.slack.views
        answer = await chat.slack_command("/calc", f"{case_id} tariff=Basic minutes=300 gb=20",
                                          user=AIGERIM_SLACK)
        view = await eventually(lambda: chat.slack.views and chat.slack.latest_view())
        # The picture is matplotlib's first drawing in the process: slow on a busy machine.
        picture = await eventually(lambda: next(
            (f["data"] for f in chat.slack.files.values()
             if f["name"] == f"calc-{case_id}.png" and f["data"]), None), within=DRAWING)
        # Slack submits what the form holds: the prepared text, as the agent left it.
        prepared = view.view["blocks"][-1]["element"]["initial_value"]
        await chat.slack_send(chat.slack.view_submission(values={"text": {"text": prepared}}))
        await eventually(lambda: chat.platform.replies, within=DRAWING)  # drawn again
        # A second case answered in words: the report shares answers by form.
        [other] = await chat.ingest(mention("ig-2", "Kcell, no signal",
                                            published=minutes_ago(flowing_clock, 1)))
        await eventually(lambda: len(chat.slack_cards()) == 2)
        await chat.slack_send(chat.slack.block_actions(
            action_id=CaseAction(ActionKind.REPLY, other["case_id"]).pack(),
            channel=SLACK_CHANNEL, user=AIGERIM_SLACK))
        await eventually(lambda: len(chat.slack.views) == 2)
        await chat.slack_send(chat.slack.view_submission(values={"saved": {"saved": "0"}}))
        await eventually(lambda: len(chat.platform.replies) == 2)
        # Published is not yet recorded: the report counts the answers once both cards say so.
        await eventually(lambda: len(chat.telegram_cards()) == 2 and all(
            "Answered by" in (c.text or "") for c in chat.telegram_cards()))
        report = await chat.slack_command("/report", "today csv", user=SAULE_SLACK)
        sheet = await eventually(lambda: next(
            (f["data"] for f in chat.slack.files.values()
             if f["name"] == "cases-today.csv" and f["data"]), None))
        async with chat.deps.uow() as uow:
            events = await uow.events.for_case(case_id)

    rows = {r["case_id"]: r["answer_forms"]
            for r in csv.DictReader(io.StringIO(sheet.decode("utf-8-sig")))}
    assert rows == {str(case_id): "calculation", str(other["case_id"]): "text"}
    assert "Answers by form: text 1 (50%) · calculation 1 (50%)" in str(report.body)
    for refused in bad:
        assert USAGE in str(refused.body), refused.body
    assert "There is no tariff 'Gold'" in str(unknown.body)
    assert "There is no case #99" in str(no_case.body)
    assert "Cheapest: Plus at 3490 ₸ a month, 6000 ₸ less than Basic (9490 ₸)" \
        in str(answer.body)
    assert picture.startswith(b"\x89PNG")
    assert view.view["private_metadata"] == \
        f"{case_id}|{SLACK_CHANNEL}||calculation|{case_id} tariff=Basic minutes=300 gb=20"
    assert "The comparison picture goes with the reply" in str(view.view["blocks"])
    published, in_words = chat.platform.replies
    assert "Cheapest: Plus at 3490 ₸" in published["text"]
    # The calculation's picture went with the reply itself, the one shown to the agent.
    assert published["image"]["filename"] == f"calc-{case_id}.png"
    assert base64.b64decode(published["image"]["base64"]) == picture
    assert "image" not in in_words
    [answer] = [e for e in events if e.kind.value == "agent_message"]
    assert answer.data["form"] == "calculation"


async def test_calc_in_telegram_goes_to_the_private_reply_conversation(
    tmp_path: Path, flowing_clock: FlowingClock
) -> None:
    async with running_chat(tmp_path, flowing_clock) as chat:
        [result] = await chat.ingest(mention("ig-1", "Kcell, what is cheaper for me?",
                                             published=minutes_ago(flowing_clock, 2)))
        case_id = result["case_id"]
        private = AIGERIM_TG["id"]
        await chat.telegram_send(chat.telegram.command_update(
            "calc", f"{case_id} tariff", chat_id=private, from_user=AIGERIM_TG))
        await eventually(lambda: any(USAGE in (m.text or "")
                                     for m in chat.telegram.bot_messages(private)))
        await chat.telegram_send(chat.telegram.command_update(
            "calc", f"{case_id} tariff=plus minutes=80 gb=0.5", chat_id=private,
            from_user=AIGERIM_TG))
        prompt = await eventually(lambda: next(
            (m for m in chat.telegram.bot_messages(private)
             if (m.text or "").startswith(f"Reply to this message with your answer to #{case_id}")),
            None), within=DRAWING)
        photos = [m for m in chat.telegram.bot_messages(private)
                  if m.media and m.media.get("kind") == "photo"]
        await chat.telegram_send(chat.telegram.reply_update(
            prompt, "Local would cost you 990 ₸ instead of 3490 ₸.", from_user=AIGERIM_TG))
        await eventually(lambda: any("was published and recorded" in (m.text or "")
                                     for m in chat.telegram.bot_messages(private)),
                         within=DRAWING)
        async with chat.deps.uow() as uow:
            events = await uow.events.for_case(case_id)

    assert "Cheapest: Local at 990 ₸ a month, 2500 ₸ less than Plus (3490 ₸)" in (prompt.text or "")
    [photo] = photos
    assert photo.media is not None and photo.media["data"].startswith(b"\x89PNG")
    assert "The comparison picture goes with the reply" in (prompt.text or "")
    [published] = chat.platform.replies
    assert published["text"] == "Local would cost you 990 ₸ instead of 3490 ₸."
    assert published["image"]["filename"] == f"calc-{case_id}.png"
    assert base64.b64decode(published["image"]["base64"]) == photo.media["data"]
    [answer] = [e for e in events if e.kind.value == "agent_message"]
    assert answer.data["form"] == "calculation", [(e.kind, e.data) for e in events]


DANA_TG = make_user(100000009, "Dana", username="dana")  # the call centre


def _with_call_centre(text: str) -> str:
    """The call centre has a person and its ticket system (billing's, in these tests)."""
    webhook = next(line for line in text.splitlines() if line.startswith("webhook_url = "))
    text = text.replace('kind = "callback"\n', f'kind = "callback"\n{webhook}\n', 1)
    return text + ('\n[[people]]\nid = "dana"\nname = "Dana"\nrole = "second_line"\n'
                   'team = "callback"\ntelegram = 100000009\n')


# The call centre's two buttons and what each records on the case.
CALL_OUTCOMES = [(ActionKind.CALLED, "done"), (ActionKind.UNREACHABLE, "unreachable")]


@pytest.mark.parametrize(("pressed", "recorded"), CALL_OUTCOMES, ids=["done", "unreachable"])
async def test_a_call_back_reaches_the_call_centre_with_the_number_masked_elsewhere(
    tmp_path: Path, flowing_clock: FlowingClock, pressed: ActionKind, recorded: str
) -> None:
    async with running_chat(tmp_path, flowing_clock, config=_with_call_centre) as chat:
        [result] = await chat.ingest(mention(
            "ig-1", "Kcell, no signal at home, my number is 8 (777) 123-45-12",
            published=minutes_ago(flowing_clock, 2)))
        case_id = result["case_id"]
        await eventually(lambda: chat.slack_cards())
        await chat.slack_send(chat.slack.block_actions(
            action_id=CaseAction(ActionKind.CALL_BACK, case_id).pack(), channel=SLACK_CHANNEL,
            user=AIGERIM_SLACK))
        form = await eventually(lambda: chat.slack.views and chat.slack.latest_view())
        empty = await chat.slack_send(chat.slack.view_submission(
            values={"ask": {"ask": ""}, "phone": {"phone": ""}}))
        bad = await chat.slack_send(chat.slack.view_submission(
            values={"ask": {"ask": ""}, "phone": {"phone": "call me maybe"}}))
        ask = form.view["blocks"][0]["element"]["initial_value"]
        await chat.slack_send(chat.slack.view_submission(values={
            "ask": {"ask": ask}, "phone": {"phone": "+7 777 123 45 12"},
            "when": {"when": "after 18:00"}}))
        [centre_card] = await eventually(lambda: chat.telegram_cards(CALLBACK_CHAT))
        centre_text = await eventually(lambda: "📞" in (centre_card.text or "")
                                       and centre_card.text)
        [ticket] = await eventually(lambda: chat.tickets.replies)
        await eventually(lambda: "Call centre" in str(chat.slack_cards()[0].blocks))
        # Telegram's card too, edited at its own pace (posted already, it may not show
        # the call back yet).
        await eventually(lambda: "Call centre" in (chat.telegram_cards()[0].text or ""))
        team_cards = [str(chat.slack_cards()[0].blocks), chat.telegram_cards()[0].text or ""]
        usage = await chat.slack_command("/callback", "twelve", user=AIGERIM_SLACK)
        press = chat.telegram.callback_query_update(
            centre_card, CaseAction(pressed, case_id).pack(), from_user=DANA_TG)
        await chat.telegram_send(press)
        await eventually(lambda: chat.telegram_cards(CALLBACK_CHAT)[0].callback_data() == [])
        told = await eventually(lambda: chat.telegram.callback_queries[
            press["callback_query"]["id"]].answer.get("text"))
        report = await chat.slack_command("/report", "today csv", user=SAULE_SLACK)
        sheet = await eventually(lambda: next(
            (f["data"] for f in chat.slack.files.values()
             if f["name"] == "cases-today.csv" and f["data"]), None))
        async with chat.deps.uow() as uow:
            events = await uow.events.for_case(case_id)

    assert empty.json()["response_action"] == "errors"
    assert bad.json()["errors"]["phone"].startswith("That is not a phone number")
    assert "call you back" in ask
    [published] = chat.platform.replies
    assert published["text"] == ask
    # The call centre's card and ticket have the number; every shared card masks it.
    assert "📞 Call back +7 777 123 45 12 · when: after 18:00" in centre_text
    assert "8 (777) 123-45-12" in centre_text
    assert ticket["phone"] == "+77771234512" and ticket["team"] == "callback"
    assert ticket["when"] == "after 18:00"
    for shared in team_cards:
        assert "+7 7** *** **12" in shared
        assert "123-45-12" not in shared and "123 45 12" not in shared
    assert "Usage: /callback" in str(usage.body)
    for digits in ("7771234512", "123-45-12", "123 45 12"):
        assert digits not in sheet.decode("utf-8-sig")
        assert digits not in str(report.body)
    kinds = [(e.kind.value, e.data.get("form") or e.data.get("called")) for e in events]
    assert ("agent_message", "callback") in kinds
    assert ("handed_back", recorded) in kinds
    assert told == f"The call back of #{case_id} is recorded: " \
        f"{'Called: done' if pressed is ActionKind.CALLED else 'Unreachable'}."


async def test_a_saved_reply_with_a_picture_reaches_the_platform_with_its_bytes(
    tmp_path: Path, flowing_clock: FlowingClock
) -> None:
    async with running_chat(tmp_path, flowing_clock) as chat:
        [result] = await chat.ingest(mention("ig-1", "Kcell, mobile internet does not work",
                                             published=minutes_ago(flowing_clock, 2)))
        case_id = result["case_id"]
        await eventually(lambda: chat.slack_cards())
        await chat.slack_send(chat.slack.block_actions(
            action_id=CaseAction(ActionKind.REPLY, case_id).pack(), channel=SLACK_CHANNEL,
            user=AIGERIM_SLACK))
        form = await eventually(lambda: chat.slack.views and chat.slack.latest_view())
        options = [o["text"]["text"] for o in form.view["blocks"][0]["element"]["options"]]
        apn = next(str(i) for i, title in enumerate(options) if "APN" in title)
        await chat.slack_send(chat.slack.view_submission(values={"saved": {"saved": apn}}))
        [published] = await eventually(lambda: chat.platform.replies)
        told = await eventually(lambda: chat.slack.ephemerals_for(AIGERIM_SLACK))
        async with chat.deps.uow() as uow:
            events = await uow.events.for_case(case_id)

    assert "🖼 How to set up mobile internet (APN)" in options
    assert published["text"].startswith("Here is how to set up mobile internet")
    assert published["image"]["filename"] == "apn-setup.png"
    assert published["image"]["content_type"] == "image/png"
    assert base64.b64decode(published["image"]["base64"]) == \
        (ROOT / "pictures" / "apn-setup.png").read_bytes()
    assert "was published and recorded" in told[-1].text
    [answer] = [e for e in events if e.kind.value == "agent_message"]
    assert answer.data["form"] == "picture"


CUSTOMERS_GROUP = -1007000000001


def _telegram_groups_on(text: str) -> str:
    start = text.index('name = "telegram-groups"')
    end = text.index("[[sources]]", start)
    return text[:start] + text[start:end].replace("enabled = false", "enabled = true", 1) \
        + text[end:]


async def test_a_photo_sent_to_the_bot_is_published_in_the_customers_group_as_a_photo_reply(
    tmp_path: Path, flowing_clock: FlowingClock
) -> None:
    picture = (ROOT / "pictures" / "ussd-codes.png").read_bytes()
    async with running_chat(tmp_path, flowing_clock, config=_telegram_groups_on) as chat:
        chat.telegram.add_chat(CUSTOMERS_GROUP, title="Kcell users Almaty")
        asked = chat.telegram.message_update("Kcell, how do I check my balance?",
                                             chat_id=CUSTOMERS_GROUP, from_user=STRANGER_TG)
        await chat.telegram_send(asked)
        [card] = await eventually(lambda: chat.telegram_cards())
        await chat.card_recorded(card)
        await chat.telegram_send(chat.telegram.callback_query_update(
            card, CaseAction(ActionKind.REPLY, 1).pack(), from_user=DANIYAR_TG))
        [prompt] = await eventually(lambda: chat.telegram.bot_messages(DANIYAR_TG["id"]))
        too_long = "x" * 1025
        await chat.telegram_send(chat.telegram.photo_reply_update(
            prompt, picture, too_long, from_user=DANIYAR_TG))
        refused = await eventually(lambda: next(
            (m.text for m in chat.telegram.bot_messages(DANIYAR_TG["id"])
             if "caption of up to 1024" in (m.text or "")), None))
        await chat.telegram_send(chat.telegram.photo_reply_update(
            prompt, picture, "The codes: *100# is the balance.", from_user=DANIYAR_TG))
        [answer] = await eventually(lambda: chat.telegram.bot_messages(CUSTOMERS_GROUP))
        await eventually(lambda: "Answered by" in (chat.telegram_cards()[0].text or ""))
        async with chat.deps.uow() as uow:
            events = await uow.events.for_case(1)

    assert "telegram-groups" in refused
    assert answer.media is not None and answer.media["kind"] == "photo"
    assert answer.media["data"] == picture  # the bytes sent to the bot, published as they are
    assert answer.caption == "The codes: *100# is the balance."
    assert answer.reply_to_message_id == asked["message"]["message_id"]
    [reply] = [e for e in events if e.kind.value == "agent_message"]
    assert reply.data["form"] == "picture"


async def test_a_picture_attached_in_the_slack_form_is_downloaded_and_published(
    tmp_path: Path, flowing_clock: FlowingClock
) -> None:
    picture = (ROOT / "pictures" / "apn-setup.png").read_bytes()
    async with running_chat(tmp_path, flowing_clock) as chat:
        [result] = await chat.ingest(mention("ig-1", "Kcell, no mobile internet",
                                             published=minutes_ago(flowing_clock, 2)))
        case_id = result["case_id"]
        await eventually(lambda: chat.slack_cards())
        await chat.slack_send(chat.slack.block_actions(
            action_id=CaseAction(ActionKind.REPLY, case_id).pack(), channel=SLACK_CHANNEL,
            user=AIGERIM_SLACK))
        form = await eventually(lambda: chat.slack.views and chat.slack.latest_view())
        attached = chat.slack.add_user_file("my-apn.png", picture, user=AIGERIM_SLACK)
        await chat.slack_send(chat.slack.view_submission(values={
            "picture": {"picture": {"files": [attached]}},
            "text": {"text": "See the picture: four steps."}}))
        [published] = await eventually(lambda: chat.platform.replies)

    assert any(b.get("element", {}).get("type") == "file_input" for b in form.view["blocks"])
    assert chat.slack.downloads == [attached["id"]]
    assert published["text"] == "See the picture: four steps."
    assert published["image"]["filename"] == "my-apn.png"
    assert base64.b64decode(published["image"]["base64"]) == picture


def _text_only_platform(text: str) -> str:
    """The example, with its listening platform publishing text only."""
    start = text.index('\noptions = { reply_url = "')
    end = text.index("}", start)
    return text[:end] + ", pictures = false " + text[end:]


async def test_a_text_only_source_is_named_in_the_slack_form_and_gets_the_text_alone(
    tmp_path: Path, flowing_clock: FlowingClock
) -> None:
    async with running_chat(tmp_path, flowing_clock,
                            config=_text_only_platform) as chat:
        [result] = await chat.ingest(mention("ig-1", "Kcell, mobile internet does not work",
                                             published=minutes_ago(flowing_clock, 2)))
        case_id = result["case_id"]
        await eventually(lambda: chat.slack_cards())
        await chat.slack_send(chat.slack.block_actions(
            action_id=CaseAction(ActionKind.REPLY, case_id).pack(), channel=SLACK_CHANNEL,
            user=AIGERIM_SLACK))
        form = await eventually(lambda: chat.slack.views and chat.slack.latest_view())
        blocks = form.view["blocks"]
        options = [o["text"]["text"] for b in blocks if b.get("block_id") == "saved"
                   for o in b["element"]["options"]]
        apn = next(str(i) for i, title in enumerate(options) if "APN" in title)
        await chat.slack_send(chat.slack.view_submission(values={"saved": {"saved": apn}}))
        [published] = await eventually(lambda: chat.platform.replies)
        told = await eventually(lambda: chat.slack.ephemerals_for(AIGERIM_SLACK))
        async with chat.deps.uow() as uow:
            events = await uow.events.for_case(case_id)

    # Said before sending: the warning is the form's first block, and nothing to attach.
    assert blocks[0]["type"] == "context"
    assert blocks[0]["elements"][0]["text"] == \
        "webhook takes text only: a picture will not be sent, only the text."
    assert not any(b.get("element", {}).get("type") == "file_input" for b in blocks)
    assert published["text"].startswith("Here is how to set up mobile internet")
    assert "image" not in published
    assert "recorded as text: webhook takes text only" in told[-1].text
    [answer] = [e for e in events if e.kind.value == "agent_message"]
    assert answer.data["form"] == "text" and answer.data.get("picture") is None


async def test_a_text_only_source_is_named_in_the_telegram_prompt_and_a_photo_goes_as_text(
    tmp_path: Path, flowing_clock: FlowingClock
) -> None:
    picture = (ROOT / "pictures" / "ussd-codes.png").read_bytes()
    async with running_chat(tmp_path, flowing_clock,
                            config=_text_only_platform) as chat:
        [result] = await chat.ingest(mention("ig-1", "Kcell, how do I check my balance?",
                                             published=minutes_ago(flowing_clock, 2)))
        case_id = result["case_id"]
        [card] = await eventually(lambda: chat.telegram_cards())
        await chat.card_recorded(card)
        await chat.telegram_send(chat.telegram.callback_query_update(
            card, CaseAction(ActionKind.REPLY, case_id).pack(), from_user=DANIYAR_TG))
        [prompt] = await eventually(lambda: chat.telegram.bot_messages(DANIYAR_TG["id"]))
        await chat.telegram_send(chat.telegram.photo_reply_update(
            prompt, picture, "Dial *100# for the balance.", from_user=DANIYAR_TG))
        [published] = await eventually(lambda: chat.platform.replies)
        told = await eventually(lambda: next(
            (m.text for m in chat.telegram.bot_messages(DANIYAR_TG["id"])
             if "recorded as text" in (m.text or "")), None))
        async with chat.deps.uow() as uow:
            events = await uow.events.for_case(case_id)

    assert (prompt.text or "").endswith(
        "webhook takes text only: a picture will not be sent, only the text.")
    assert published["text"] == "Dial *100# for the balance." and "image" not in published
    assert "the picture was not sent" in told
    [answer] = [e for e in events if e.kind.value == "agent_message"]
    assert answer.data["form"] == "text" and answer.data.get("picture") is None


async def test_calc_for_a_text_only_source_sends_the_text_table_alone(
    tmp_path: Path, flowing_clock: FlowingClock
) -> None:
    async with running_chat(tmp_path, flowing_clock,
                            config=_text_only_platform) as chat:
        [result] = await chat.ingest(mention("ig-1", "Kcell, my tariff is too expensive",
                                             published=minutes_ago(flowing_clock, 2)))
        case_id = result["case_id"]
        await eventually(lambda: chat.slack_cards())
        await chat.slack_command("/calc", f"{case_id} tariff=Basic minutes=300 gb=20",
                                 user=AIGERIM_SLACK)
        view = await eventually(lambda: chat.slack.views and chat.slack.latest_view())
        prepared = view.view["blocks"][-1]["element"]["initial_value"]
        await chat.slack_send(chat.slack.view_submission(values={"text": {"text": prepared}}))
        [published] = await eventually(lambda: chat.platform.replies)
        told = await eventually(lambda: [m for m in chat.slack.ephemerals_for(AIGERIM_SLACK)
                                         if "#" + str(case_id) in m.text
                                         and "published" in m.text])
        async with chat.deps.uow() as uow:
            events = await uow.events.for_case(case_id)

    blocks = str(view.view["blocks"])
    assert "webhook takes text only" in blocks
    assert "The comparison picture goes with the reply" not in blocks
    assert published["text"] == prepared and "Cheapest: Plus at 3490 ₸" in prepared
    assert "image" not in published
    assert told[-1].text == f"Your reply to #{case_id} was published and recorded."
    [answer] = [e for e in events if e.kind.value == "agent_message"]
    assert answer.data["form"] == "calculation" and answer.data.get("picture") is None


async def test_a_call_back_in_telegram_asks_publishes_and_takes_the_number_in_private(
    tmp_path: Path, flowing_clock: FlowingClock
) -> None:
    async with running_chat(tmp_path, flowing_clock, config=_with_call_centre) as chat:
        [result] = await chat.ingest(mention(
            "ig-1", "Kcell, no signal at home, call me please",
            published=minutes_ago(flowing_clock, 2)))
        case_id = result["case_id"]
        [card] = await eventually(lambda: chat.telegram_cards())
        await chat.card_recorded(card)
        private = AIGERIM_TG["id"]
        await chat.telegram_send(chat.telegram.callback_query_update(
            card, CaseAction(ActionKind.CALL_BACK, case_id).pack(), from_user=AIGERIM_TG))
        offer, number_prompt = await eventually(
            lambda: len(chat.telegram.bot_messages(private)) == 2
            and chat.telegram.bot_messages(private))
        await chat.telegram_send(chat.telegram.callback_query_update(
            offer, CaseAction(ActionKind.CALL_BACK_ASK, case_id).pack(), from_user=AIGERIM_TG))
        [published] = await eventually(lambda: chat.platform.replies)
        # A second press of the same button publishes nothing more.
        await chat.telegram_send(chat.telegram.callback_query_update(
            offer, CaseAction(ActionKind.CALL_BACK_ASK, case_id).pack(), from_user=AIGERIM_TG,
            check=False))
        await chat.telegram_send(chat.telegram.reply_update(
            number_prompt, "call me maybe", from_user=AIGERIM_TG))
        refused = await eventually(lambda: next(
            (m.text for m in chat.telegram.bot_messages(private)
             if (m.text or "").startswith("That is not a phone number")), None))
        await chat.telegram_send(chat.telegram.reply_update(
            number_prompt, "+7 777 123 45 12 | after 18:00", from_user=AIGERIM_TG))
        [centre_card] = await eventually(lambda: chat.telegram_cards(CALLBACK_CHAT))
        centre_text = await eventually(lambda: "📞" in (centre_card.text or "")
                                       and centre_card.text)
        [ticket] = await eventually(lambda: chat.tickets.replies)
        sent = await eventually(lambda: next(
            (m.text for m in chat.telegram.bot_messages(private)
             if "is with the call centre" in (m.text or "")), None))
        await eventually(lambda: "Call centre" in (chat.telegram_cards()[0].text or ""))
        team_card = chat.telegram_cards()[0].text or ""
        async with chat.deps.uow() as uow:
            events = await uow.events.for_case(case_id)

    assert "step 1" in (offer.text or "") and "call you back" in (offer.text or "")
    assert "step 2" in (number_prompt.text or "")
    assert published["text"] == "We would be glad to call you back: please send us your " \
        "phone number and a convenient time in a private message."
    assert len(chat.platform.replies) == 1
    assert "reply to the step 2 message again" in refused
    assert f"Case #{case_id} is with the call centre" in sent
    assert "📞 Call back +7 777 123 45 12 · when: after 18:00" in centre_text
    assert ticket["phone"] == "+77771234512" and ticket["when"] == "after 18:00"
    assert "123 45 12" not in team_card
    kinds = [(e.kind.value, e.data.get("form")) for e in events]
    assert ("agent_message", "callback") in kinds
    assert any(e.kind.value == "handed_off" for e in events)


async def test_a_picture_shared_in_the_cards_thread_is_offered_in_the_form_and_published(
    tmp_path: Path, flowing_clock: FlowingClock
) -> None:
    picture = (ROOT / "pictures" / "ussd-codes.png").read_bytes()
    async with running_chat(tmp_path, flowing_clock) as chat:
        [result] = await chat.ingest(mention("ig-1", "Kcell, how do I check my balance?",
                                             published=minutes_ago(flowing_clock, 2)))
        case_id = result["case_id"]
        [card] = await eventually(lambda: chat.slack_cards())
        # A colleague shares a picture and a document under the card, and a picture
        # elsewhere in the channel.
        _, shared = chat.slack.share_file(SLACK_CHANNEL, "balance-codes.png", picture,
                                          user=SAULE_SLACK, thread_ts=card.ts)
        chat.slack.share_file(SLACK_CHANNEL, "tariffs.pdf", b"%PDF-1.4", user=SAULE_SLACK,
                              mimetype="application/pdf", thread_ts=card.ts)
        chat.slack.share_file(SLACK_CHANNEL, "elsewhere.png", picture, user=SAULE_SLACK)
        await chat.slack_send(chat.slack.block_actions(
            action_id=CaseAction(ActionKind.REPLY, case_id).pack(), channel=SLACK_CHANNEL,
            message_ts=card.ts, user=AIGERIM_SLACK))
        form = await eventually(lambda: chat.slack.views and chat.slack.latest_view())
        # A file id that is not Slack's (or no longer there): nothing is published.
        await chat.slack_send(chat.slack.view_submission(values={
            "thread_picture": {"thread_picture": {"selected_option": {
                "text": {"type": "plain_text", "text": "x"}, "value": "F0NOSUCHFILE"}}},
            "text": {"text": "Dial *100#."}}))
        unreadable = await eventually(lambda: [
            m for m in chat.slack.ephemerals_for(AIGERIM_SLACK)
            if "could not download" in m.text])
        await chat.slack_send(chat.slack.view_submission(values={
            "thread_picture": {"thread_picture": shared["id"]},
            "text": {"text": "Dial *100# for the balance, as in the picture."}}))
        [published] = await eventually(lambda: chat.platform.replies)
        # Published first, then recorded: the agent is told once both are done.
        await eventually(lambda: any("was published and recorded" in m.text
                                     for m in chat.slack.ephemerals_for(AIGERIM_SLACK)))
        async with chat.deps.uow() as uow:
            events = await uow.events.for_case(case_id)

    [offered] = [b for b in form.view["blocks"] if b.get("block_id") == "thread_picture"]
    assert [(o["text"]["text"], o["value"]) for o in offered["element"]["options"]] == [
        ("balance-codes.png", shared["id"])]
    assert unreadable
    assert published["text"] == "Dial *100# for the balance, as in the picture."
    assert published["image"]["filename"] == "balance-codes.png"
    assert base64.b64decode(published["image"]["base64"]) == picture
    assert chat.slack.downloads == [shared["id"]]
    [answer] = [e for e in events if e.kind.value == "agent_message"]
    assert answer.data["form"] == "picture" and answer.data["picture"] == "balance-codes.png"


async def _image(agent: Any, path: str) -> tuple[int, str, bytes]:
    async with agent.session.get(agent.base_url + path, allow_redirects=False) as got:
        return got.status, got.content_type, await got.read()


async def test_the_console_shows_saved_replies_pictures_as_thumbnails_and_publishes_one(
    tmp_path: Path, flowing_clock: FlowingClock
) -> None:
    from PIL import Image

    from tests.e2e.test_console import PASSWORD, browser, csrf_of

    async with running_chat(tmp_path, flowing_clock) as chat:
        [result] = await chat.ingest(mention("ig-1", "Kcell, mobile internet does not work",
                                             published=minutes_ago(flowing_clock, 2)))
        case_id = result["case_id"]
        await access.set_password(chat.deps, "aigerim", PASSWORD)
        async with browser(chat.base_url) as stranger:
            unsigned = await _image(stranger, "/saved-replies/2.png")
        async with browser(chat.base_url) as agent:
            assert await agent.sign_in("aigerim") == 303
            _, page, _ = await agent.get(f"/cases/{case_id}")
            thumbnails = {number: await _image(agent, f"/saved-replies/{number}.png")
                          for number in ("2", "3", "0", "4", "999", "x", "0002", "-1")}
            replied = await agent.post(f"/cases/{case_id}/reply", {
                "csrf": csrf_of(page), "saved": "2", "text": ""})
            [published] = await eventually(lambda: chat.platform.replies)
            _, after, _ = await agent.get(f"/cases/{case_id}")
        async with chat.deps.uow() as uow:
            events = await uow.events.for_case(case_id)

    assert unsigned[0] in (302, 303, 401)
    assert '<img src="/saved-replies/2.png" alt="How to set up mobile internet (APN)"' in page
    assert '<img src="/saved-replies/3.png" alt="USSD codes"' in page
    assert '<img src="/saved-replies/0.png"' not in page  # no picture, no thumbnail
    assert 'id="text-only"' not in page
    for number in ("2", "3"):
        status, kind, preview = thumbnails[number]
        assert status == 200 and kind == "image/png"
        original = (ROOT / "pictures" / ("apn-setup.png" if number == "2"
                                         else "ussd-codes.png")).read_bytes()
        with Image.open(io.BytesIO(preview)) as shown, \
                Image.open(io.BytesIO(original)) as full:
            assert max(shown.size) == 160 and max(full.size) > 160
            assert shown.size[0] / shown.size[1] == pytest.approx(
                full.size[0] / full.size[1], rel=0.02)
    # No picture there, no such saved reply, not a number: 404, never a 5xx.
    assert [thumbnails[n][0] for n in ("0", "4", "999", "x", "0002", "-1")] == [404] * 6
    original = (ROOT / "pictures" / "apn-setup.png").read_bytes()
    assert replied[0] == 303 and "was published and recorded" in after
    assert base64.b64decode(published["image"]["base64"]) == original
    [answer] = [e for e in events if e.kind.value == "agent_message"]
    assert answer.data["form"] == "picture" and answer.data["picture"] == "apn-setup.png"


async def test_the_console_names_a_text_only_source_in_the_reply_form(
    tmp_path: Path, flowing_clock: FlowingClock
) -> None:
    from tests.e2e.test_console import PASSWORD, browser, csrf_of

    async with running_chat(tmp_path, flowing_clock,
                            config=_text_only_platform) as chat:
        [result] = await chat.ingest(mention("ig-1", "Kcell, mobile internet does not work",
                                             published=minutes_ago(flowing_clock, 2)))
        case_id = result["case_id"]
        await access.set_password(chat.deps, "aigerim", PASSWORD)
        async with browser(chat.base_url) as agent:
            assert await agent.sign_in("aigerim") == 303
            _, page, _ = await agent.get(f"/cases/{case_id}")
            await agent.post(f"/cases/{case_id}/reply", {
                "csrf": csrf_of(page), "saved": "2", "text": ""})
            [published] = await eventually(lambda: chat.platform.replies)
            _, after, _ = await agent.get(f"/cases/{case_id}")

    assert "webhook takes text only: a picture will not be sent, only the text." in page
    assert "image" not in published
    assert "recorded as text: webhook takes text only" in after


async def test_a_picture_reaches_a_facebook_comment_and_instagram_is_named_text_only(
    tmp_path: Path, flowing_clock: FlowingClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.e2e.test_collectors import META_VERIFY, _enable
    from tests.fakes.meta import FakeMeta

    picture = (ROOT / "pictures" / "apn-setup.png").read_bytes()
    async with FakeMeta() as meta:
        monkeypatch.setenv("META_APP_SECRET", meta.app_secret)
        monkeypatch.setenv("META_VERIFY_TOKEN", META_VERIFY)
        monkeypatch.setenv("META_PAGE_TOKEN", meta.access_token)
        config = _enable("meta", ('page_id = "1142469655832956"',
                                  f'page_id = "{meta.page_id}"\ngraph_url = "{meta.graph_url}"'))
        facebook = meta.add_fb_comment("Kcell, mobile internet does not work",
                                       from_name="Aliya B.", created_time=flowing_clock.now())
        instagram = meta.add_ig_comment("Kcell, no internet here either",
                                        timestamp=flowing_clock.now())
        async with running_chat(tmp_path, flowing_clock, config=config) as chat:
            url = f"{chat.base_url}/meta/meta"
            await meta.deliver(meta.fb_comment_webhook(facebook), url)
            await eventually(lambda: len(chat.slack_cards()) == 1)
            await meta.deliver(meta.ig_comments_webhook(instagram), url)
            cards = await eventually(lambda: len(chat.slack_cards()) == 2 and chat.slack_cards())
            forms = []
            for opened, card in enumerate(cards, start=1):
                await chat.slack_send(chat.slack.block_actions(
                    action_id=CaseAction(ActionKind.REPLY,
                                         card.metadata["event_payload"]["case_id"]).pack(),
                    channel=SLACK_CHANNEL, message_ts=card.ts, user=AIGERIM_SLACK))
                await eventually(lambda n=opened: len(chat.slack.views) == n)
                forms.append(chat.slack.latest_view())
            fb_form, ig_form = forms
            attached = chat.slack.add_user_file("apn.png", picture, user=AIGERIM_SLACK)
            await chat.slack_send(chat.slack.view_submission(fb_form.id, values={
                "picture": {"picture": {"files": [attached]}},
                "text": {"text": "Aliya, four steps in the picture."}}))
            [reply] = await eventually(lambda: meta.replies)

    assert not any(b["type"] == "context" for b in fb_form.view["blocks"])
    assert any(b.get("element", {}).get("type") == "file_input" for b in fb_form.view["blocks"])
    assert ig_form.view["blocks"][0]["elements"][0]["text"] == \
        "meta takes text only: a picture will not be sent, only the text."
    [photo] = meta.photos.values()
    assert photo.data == picture and photo.published is False
    assert (reply.kind, reply.target_id) == ("facebook_comment", facebook.id)
    assert reply.message == "Aliya, four steps in the picture." and reply.photo == photo
