"""Announcements end to end: one /announce reaches the team and other audiences in
Slack, Telegram, a real SMTP server and a signed webhook; Got it in either messenger;
withdrawal everywhere; the official answer on new cards, published and counted."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from socialcare.adapters.collectors.signature import verify
from socialcare.bot.actions import (
    ActionKind,
    AnnouncementAction,
    AnnouncementActionKind,
    CaseAction,
)
from tests.conftest import FlowingClock
from tests.e2e.chat import (
    AIGERIM_SLACK,
    DANIYAR_TG,
    SAULE_SLACK,
    SLACK_CHANNEL,
    STRANGER_TG,
    TELEGRAM_CHAT,
    Chat,
    eventually,
    mention,
    minutes_ago,
    running_chat,
)
from tests.fakes.telegram import make_user
from tests.mailserver import MailServer

ANNOUNCE_SECRET = "announcement-secret-for-tests"
CALLS_SLACK, CALLS_TG = "C0CALLS001", -1001111111111
SHOPS_SLACK, SHOPS_TG = "C0SHOPS001", -1002222222222
DANA_SLACK, ERLAN_TG = "U0CALLS001", make_user(100000012, "Erlan")
GULMIRA_SLACK = "U0SHOPS001"
SHOP_MAILS = ("shops@example.com", "regional.managers@example.com")
TEXT = "Almaty outage is fixed: answer with the standard apology <b>& a smile</b>"


@dataclass
class KnowledgeBase:
    """An audience's webhook: checks our signature, keeps what it got; can hang on a
    request until released and then fail it."""

    received: list[dict[str, Any]] = field(default_factory=list)
    refused: int = 0
    failures: int = 0  # answer this many requests with 503
    hold: asyncio.Event | None = None
    waiting: int = 0
    server: TestServer | None = None

    async def start(self) -> None:
        async def take(request: web.Request) -> web.Response:
            body = await request.read()
            if not verify(body, ANNOUNCE_SECRET, request.headers.get("X-Signature")):
                self.refused += 1
                return web.json_response({"error": "bad signature"}, status=401)
            if self.hold is not None:
                self.waiting += 1
                await self.hold.wait()
                self.hold = None
            if self.failures:
                self.failures -= 1
                return web.json_response({"error": "down for maintenance"}, status=503)
            self.received.append(json.loads(body))
            return web.json_response({"ok": True})

        app = web.Application()
        app.router.add_post("/kb", take)
        self.server = TestServer(app)
        await self.server.start_server()

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("/kb"))


def _audiences(kb: KnowledgeBase) -> Callable[[str], str]:
    def edit(text: str) -> str:
        for commented, live in (
            ('# webhook_url = "https://kb.example.com/api/socialcare/announcements"',
             f'webhook_url = "{kb.url}"'),
            ('# emails = ["shops@example.com", "regional.managers@example.com"]',
             'emails = ["shops@example.com", "regional.managers@example.com"]'),
        ):
            assert commented in text
            text = text.replace(commented, live)
        return text

    return edit


@asynccontextmanager
async def announcing_chat(tmp_path: Path, clock: FlowingClock,
                          kb: KnowledgeBase) -> AsyncIterator[tuple[Chat, MailServer]]:
    await kb.start()
    with MailServer(tmp_path) as mail:
        environment = {"smtp_url": mail.url, "smtp_from": "care@example.com",
                       "smtp_ca_file": mail.ca_file,
                       "announcement_webhook_secret": ANNOUNCE_SECRET}
        async with running_chat(tmp_path, clock, config=_audiences(kb),
                                environment=environment) as chat:
            for name, channel in (("call-centre", CALLS_SLACK), ("shops", SHOPS_SLACK)):
                chat.slack.add_channel(name, channel_id=channel)
            for user, name in ((DANA_SLACK, "dana"), (GULMIRA_SLACK, "gulmira")):
                chat.slack.add_user(user, name=name)
            chat.telegram.add_chat(CALLS_TG, title="Call centre")
            chat.telegram.add_chat(SHOPS_TG, title="Shops")
            yield chat, mail
    assert kb.server is not None
    await kb.server.close()


def _slack_copy(chat: Chat, channel: str) -> Any:
    found = [m for m in chat.slack.messages(channel, include_replies=False)
             if m.metadata and m.metadata.get("event_type") == "socialcare_announcement"]
    return found[-1] if found else None


def _telegram_copy(chat: Chat, chat_id: int) -> Any:
    found = [m for m in chat.telegram.bot_messages(chat_id)
             if (m.text or "").startswith("📣 Announcement")]
    return found[-1] if found else None


def _slack_dm(chat: Chat, user: str) -> list[str]:
    return [m.text for channel, info in list(chat.slack.channels.items())
            if info.get("user") == user for m in chat.slack.messages(channel)]


def said(response: Any) -> str:
    """Return what a private Slack answer says, in full (its text field is cut)."""
    return "".join(element.get("text", "") for block in response.body["blocks"]
                   for section in block["elements"] for element in section["elements"])


async def _answered(chat: Chat, count: int, within: float = 10.0) -> None:
    """Wait until `count` cases are recorded as answered with announcement #1."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        async with chat.deps.uow() as uow:
            if (await uow.announcements.answered([1])).get(1, 0) >= count:
                return
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.1)


GOT_IT = AnnouncementAction(AnnouncementActionKind.GOT_IT, 1).pack()


async def test_one_announce_reaches_both_audiences_everywhere_and_a_failing_one_is_retried(
    tmp_path: Path, flowing_clock: FlowingClock
) -> None:
    kb = KnowledgeBase(failures=1, hold=asyncio.Event())
    async with announcing_chat(tmp_path, flowing_clock, kb) as (chat, mail):
        done = await chat.slack_command("/announce", f"call_centre,shops {TEXT}",
                                        user=SAULE_SLACK)
        # Every chat and mailbox has it while the call centre's knowledge base hangs.
        chats = [(SLACK_CHANNEL, TELEGRAM_CHAT), (CALLS_SLACK, CALLS_TG),
                 (SHOPS_SLACK, SHOPS_TG)]
        await eventually(lambda: all(
            _slack_copy(chat, s) and _slack_copy(chat, s).pinned
            and _telegram_copy(chat, t) and _telegram_copy(chat, t).pinned for s, t in chats))
        await eventually(lambda: all(mail.messages_to(a) for a in SHOP_MAILS))
        assert kb.waiting == 1 and not kb.received
        kb.hold.set()  # type: ignore[union-attr]  # …and then it fails: 503
        told = await eventually(lambda: [t for t in _slack_dm(chat, SAULE_SLACK)
                                         if "has not reached" in t])
        failing = await chat.slack_command("/announcement", "1", user=SAULE_SLACK)

        flowing_clock.advance(seconds=31)  # the first retry is due after 30 s
        [published] = await eventually(lambda: kb.received)
        await _settled(chat)
        reached = await chat.slack_command("/announcement", "1", user=SAULE_SLACK)

    assert "Announcement #1 is on its way to the team (2 place(s)), Call centre (3 place(s)), " \
           "Shops (4 place(s))" in said(done)
    slack_copy = _slack_copy(chat, CALLS_SLACK)
    assert slack_copy.text == f"📣 Saule: {TEXT}".replace("<", "&lt;").replace(
        ">", "&gt;").replace("&lt;b&gt;&", "&lt;b&gt;&amp;")
    assert TEXT in json.dumps(slack_copy.blocks, ensure_ascii=False)  # literal, rich_text
    assert GOT_IT in slack_copy.action_ids()
    telegram_copy = _telegram_copy(chat, SHOPS_TG)
    assert TEXT in telegram_copy.text and GOT_IT in telegram_copy.callback_data()
    for address in SHOP_MAILS:
        [message] = mail.messages_to(address)
        assert message["From"] == "care@example.com" and message["To"] == address
        assert message["Subject"].startswith("📣 Announcement #1: Almaty outage is fixed")
        assert message["Message-ID"].startswith("<announcement-1-")
        plain = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
        assert TEXT in plain and "From Saule" in plain and "To: Shops" in plain
        assert "&lt;b&gt;&amp; a smile&lt;/b&gt;" in html and "<b>& a smile" not in html
    assert mail.sessions() == [(True, True), (True, True)]
    assert "Call centre" in told[0] and "webhook" in told[0] and "503" in told[0]
    assert "webhook ⚠" in said(failing) and "Shops: Slack ✓" in said(failing)
    assert published["event"] == "announcement.published" and published["text"] == TEXT
    assert published["audience"] == "call_centre" and published["delivery"] == "1-call_centre-1"
    assert kb.refused == 0
    assert "⚠" not in said(reached) and "webhook ✓" in said(reached)


async def _settled(chat: Chat, within: float = 10.0) -> None:
    """Wait until every copy of every announcement is in step."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        async with chat.deps.uow() as uow:
            copies = [c for found in (await uow.announcements.copies_of([1])).values()
                      for c in found]
        if copies and all(c.attempts == 0 and c.next_try_at is None for c in copies):
            return
        assert asyncio.get_running_loop().time() < deadline, copies
        await asyncio.sleep(0.1)


async def test_correcting_and_withdrawing_edit_every_chat_copy_and_mail_and_post_it(
    tmp_path: Path, flowing_clock: FlowingClock
) -> None:
    kb = KnowledgeBase()
    async with announcing_chat(tmp_path, flowing_clock, kb) as (chat, mail):
        await chat.slack_command("/announce", f"all {TEXT}", user=SAULE_SLACK)
        await _settled(chat)
        corrected = await chat.slack_command("/announcement", "1 correct Fixed at 14:00 only",
                                             user=SAULE_SLACK)
        chats = [SLACK_CHANNEL, CALLS_SLACK, SHOPS_SLACK]
        groups = [TELEGRAM_CHAT, CALLS_TG, SHOPS_TG]
        await eventually(lambda: all(
            "Fixed at 14:00 only" in str(_slack_copy(chat, c).blocks) for c in chats) and all(
            "Fixed at 14:00 only" in _telegram_copy(chat, g).text for g in groups)
            and all(len(mail.messages_to(a)) == 2 for a in SHOP_MAILS) and len(kb.received) == 2)
        withdrawn = await chat.slack_command("/announcement", "1 withdraw", user=SAULE_SLACK)
        await eventually(lambda: all(
            not _slack_copy(chat, c).pinned and "Withdrawn" in str(_slack_copy(chat, c).blocks)
            for c in chats) and all(
            not _telegram_copy(chat, g).pinned and "Withdrawn" in _telegram_copy(chat, g).text
            for g in groups))
        await eventually(lambda: all(len(mail.messages_to(a)) == 3 for a in SHOP_MAILS)
                         and len(kb.received) == 3)
        listed = await chat.slack_command("/announcements", "", user=AIGERIM_SLACK)
        again = await chat.slack_command("/announcement", "1 withdraw", user=SAULE_SLACK)

    assert "corrected" in said(corrected) and "withdrawn" in said(withdrawn)
    for channel in chats:
        copy = _slack_copy(chat, channel)
        assert copy.action_ids() == [] and copy.edits
    for group in groups:
        copy = _telegram_copy(chat, group)
        assert copy.reply_markup is None and copy.edits
    first, correction, withdrawal = mail.messages_to("shops@example.com")
    assert correction["Subject"] == "✏️ Correction to announcement #1: Fixed at 14:00 only"
    assert "Fixed at 14:00 only" in correction.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert correction["In-Reply-To"] == first["Message-ID"]
    assert withdrawal["Subject"] == "🚫 Withdrawn: announcement #1"
    assert withdrawal["In-Reply-To"] == first["Message-ID"]
    assert "do not use it any more" in withdrawal.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert [b["event"] for b in kb.received] == [
        "announcement.published", "announcement.corrected", "announcement.withdrawn"]
    assert kb.received[2]["state"] == "withdrawn" and kb.received[1]["text"] == \
        "Fixed at 14:00 only"
    assert "No announcement is in force." in said(listed)
    assert "no longer in force" in said(again)


async def test_got_it_in_slack_and_telegram_shows_in_the_leads_status_and_the_rest_are_reminded(
    tmp_path: Path, flowing_clock: FlowingClock
) -> None:
    kb = KnowledgeBase()
    async with announcing_chat(tmp_path, flowing_clock, kb) as (chat, _mail):
        await chat.slack_command("/announce", f"call_centre {TEXT}", user=SAULE_SLACK)
        await _settled(chat)
        slack_copy = await eventually(lambda: _slack_copy(chat, CALLS_SLACK))
        telegram_copy = await eventually(lambda: _telegram_copy(chat, CALLS_TG))
        team_copy = await eventually(lambda: _slack_copy(chat, SLACK_CHANNEL))
        await chat.slack_send(chat.slack.block_actions(
            action_id=GOT_IT, channel=CALLS_SLACK, message_ts=slack_copy.ts, user=DANA_SLACK))
        await chat.slack_send(chat.slack.block_actions(
            action_id=GOT_IT, channel=CALLS_SLACK, message_ts=slack_copy.ts, user=DANA_SLACK))
        await chat.slack_send(chat.slack.block_actions(
            action_id=GOT_IT, channel=SLACK_CHANNEL, message_ts=team_copy.ts,
            user=AIGERIM_SLACK))
        queries = []
        for user in (ERLAN_TG, STRANGER_TG):
            update = chat.telegram.callback_query_update(telegram_copy, GOT_IT, from_user=user)
            queries.append(chat.telegram.callback_queries[update["callback_query"]["id"]])
            await chat.telegram_send(update)
        answers = await eventually(lambda: all(q.answered for q in queries)
                                   and [q.answer for q in queries])
        noted = await eventually(lambda: len(pressed := [
            said(r) for r in chat.slack.responses() if "Got it" in said(r)
            or "Noted" in said(r)]) == 3 and pressed)
        status = await chat.slack_command("/announcement", "1", user=SAULE_SLACK)
        refused = await chat.slack_command("/announcement", "1", user=AIGERIM_SLACK)
        reminded = await chat.slack_command("/announcement", "1 remind", user=SAULE_SLACK)
        twice = await chat.slack_command("/announcement", "1 remind", user=SAULE_SLACK)
        reminder = await eventually(lambda: [m for m in chat.telegram.bot_messages(
            DANIYAR_TG["id"]) if "Reminder" in (m.text or "")])

    text = said(status)
    assert "▸ the team: Slack ✓ · Telegram ✓" in text
    assert "Got it: 1 of 4 — Aigerim" in text and "Not yet: Daniyar, Saule, Admin" in text
    assert "▸ Call centre: Slack ✓ · Telegram ✓" in text
    assert "Got it: 2 of 2 — Dana, Erlan" in text and "Also pressed it: Stranger" in text
    assert sorted(noted) == ["Noted: you have read announcement #1. Thank you!"] * 2 + [
        "You had already pressed Got it on announcement #1."]
    assert all("Noted" in (a or {}).get("text", "") for a in answers)
    assert "Only shift leads and admins" in said(refused)
    assert "Reminded 3 member(s)" in said(reminded)
    assert "reminded already" in said(twice)
    assert "please read announcement #1" in reminder[0].text


async def test_a_new_case_matching_the_announcement_offers_it_and_replies_with_it_are_counted(
    tmp_path: Path, flowing_clock: FlowingClock
) -> None:
    kb = KnowledgeBase()
    async with announcing_chat(tmp_path, flowing_clock, kb) as (chat, _mail):
        await chat.slack_command("/announce", f"{TEXT} | keywords: 4G, Алматы",
                                 user=SAULE_SLACK)
        [first, second] = await chat.ingest(
            mention("ig-1", "Kcell, why is there no 4G in Almaty again?",
                    published=minutes_ago(flowing_clock, 1)),
            mention("ig-2", "Kcell, опять нет связи, Алматы!",
                    published=minutes_ago(flowing_clock, 1)))
        offer = CaseAction(ActionKind.OFFICIAL, first["case_id"], 1).pack()
        card = await eventually(lambda: [c for c in chat.slack_cards()
                                         if offer in c.action_ids()])
        telegram_offer = CaseAction(ActionKind.OFFICIAL, second["case_id"], 1).pack()
        telegram_card = await eventually(lambda: [
            c for c in chat.telegram_cards() if telegram_offer in c.callback_data()])

        await chat.slack_send(chat.slack.block_actions(
            action_id=offer, channel=SLACK_CHANNEL, message_ts=card[0].ts, user=AIGERIM_SLACK))
        form = await eventually(lambda: chat.slack.views and chat.slack.latest_view())
        await chat.slack_send(chat.slack.view_submission(values={"text": {"text": TEXT}}))
        await eventually(lambda: chat.platform.replies)

        await chat.card_recorded(telegram_card[0])
        await chat.telegram_send(chat.telegram.callback_query_update(
            telegram_card[0], telegram_offer, from_user=DANIYAR_TG))
        dm = await eventually(lambda: [m for m in chat.telegram.bot_messages(DANIYAR_TG["id"])
                                       if m.reply_markup])
        send = CaseAction(ActionKind.OFFICIAL_SEND, second["case_id"], 1).pack()
        await chat.telegram_send(chat.telegram.callback_query_update(
            dm[-1], send, from_user=DANIYAR_TG))
        await eventually(lambda: len(chat.platform.replies) == 2)
        await _answered(chat, 2)  # the platform has it just before it is recorded
        report = await chat.slack_command("/report", "today", user=SAULE_SLACK)
        status = await chat.slack_command("/announcement", "1", user=SAULE_SLACK)

    assert "📣 Official answer (#1):" in json.dumps(card[0].blocks, ensure_ascii=False)
    assert "📣 Official answer (#1):" in telegram_card[0].text
    initial = json.dumps(form.view, ensure_ascii=False)
    assert json.dumps(TEXT, ensure_ascii=False)[1:-1] in initial
    assert [r["text"] for r in chat.platform.replies] == [TEXT, TEXT]
    assert "answered with it: 2 cases" in said(report)
    assert "Cases answered with it: 2" in said(status)
