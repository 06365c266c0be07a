"""An incident in the chat, end to end: real slack-bolt and python-telegram-bot against
the fake servers. The incident is posted in both messengers' team channels and the
lead is told; `/incident N answer` from Slack pins the answer in every team channel and
sends it once to each linked case of a source that takes bulk replies, the rest listed
for agents; a case that joins later gets it too; resolving with a follow-up sends it
and resolves the answered cases."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from socialcare.handlers import scheduler
from socialcare.storage.schema import cases, incident_cases, incidents
from tests.conftest import FlowingClock
from tests.corpus.outage import outage
from tests.e2e.chat import (
    SAULE_SLACK,
    SAULE_TG,
    SLACK_CHANNEL,
    TELEGRAM_CHAT,
    Chat,
    eventually,
    running_chat,
)
from tests.e2e.test_incidents import OUTAGE_AT

WEBHOOK = 'name = "webhook"\nkind = "webhook"\nplatform = "web"\ntier = "main"\n'


def _config(text: str) -> str:
    assert WEBHOOK in text and "min_cases = 20" in text
    text = text.replace(WEBHOOK, WEBHOOK + "incident_replies = true\n"
                        "incident_replies_per_hour = 100\n", 1)
    return text.replace("min_cases = 20", "min_cases = 6", 1)


def _slack_texts(chat: Chat, channel: str) -> list[str]:
    return [m.text or "" for m in chat.slack.messages(channel, include_replies=False)]


def _telegram_texts(chat: Chat, chat_id: int) -> list[str]:
    return [m.text or "" for m in chat.telegram.bot_messages(chat_id)]


async def _links(chat: Chat) -> dict[int, tuple[str | None, str, str]]:
    async with chat.deps.engine.connect() as conn:
        rows = await conn.execute(
            select(incident_cases.c.case_id, incident_cases.c.reply, cases.c.source,
                   cases.c.state).join(cases, cases.c.id == incident_cases.c.case_id))
        return {r.case_id: (r.reply, r.source, r.state) for r in rows}


async def test_an_incident_is_answered_once_everywhere_and_closed(
    tmp_path: Path, flowing_clock: FlowingClock
) -> None:
    clock = flowing_clock
    slots = list(outage(OUTAGE_AT - timedelta(minutes=15), minutes_per_slot=5))
    first = slots[0].mentions[:10]
    late = slots[1].mentions[:1]
    clock.current = OUTAGE_AT - timedelta(minutes=5)
    async with running_chat(tmp_path, clock, config=_config) as chat:
        created = await chat.ingest(*first)
        assert {r["outcome"] for r in created} == {"created"}
        opened = await scheduler.watch_incidents(chat.deps)
        assert [i.id for i in opened] == [1]
        # The incident in both team channels; the lead told in both messengers, once.
        await eventually(lambda: any("Incident #1" in t for t in _slack_texts(
            chat, SLACK_CHANNEL)) and any("Incident #1" in t for t in _telegram_texts(
                chat, TELEGRAM_CHAT)))
        assert await scheduler.watch_incidents(chat.deps) == []
        await eventually(lambda: [t for t in _telegram_texts(chat, SAULE_TG["id"])
                                  if "Incident #1" in t])
        assert len([t for t in _telegram_texts(chat, SAULE_TG["id"]) if "Incident #1" in t]) == 1
        assert sum("Incident #1" in t for t in _slack_texts(chat, SLACK_CHANNEL)) == 1

        answer = "Kcell: mobile internet in Almaty is down, engineers are on it; back by 16:00"
        said = await chat.slack_command("/incident", f"1 answer {answer}", user=SAULE_SLACK)
        assert "announced" in said.body["text"]
        await scheduler.watch_incidents(chat.deps)
        links = await _links(chat)
        replyable = {c for c, (_, source, _) in links.items() if source == "webhook"}
        by_hand = {c for c, (_, source, _) in links.items() if source == "forums"}
        assert replyable and by_hand and len(links) == len(first)
        assert {c: links[c][0] for c in replyable} == dict.fromkeys(replyable, "sent")
        assert {c: links[c][0] for c in by_hand} == dict.fromkeys(by_hand, "by_hand")
        # Each replyable case got the answer once, through the listening platform.
        assert Counter(r["case_id"] for r in chat.platform.replies) == dict.fromkeys(
            replyable, 1)
        assert {r["text"] for r in chat.platform.replies} == {answer}
        # Pinned in the team channels of both messengers (the announcement).
        await eventually(lambda: any(
            m.pinned and answer in str(m.blocks) for m in chat.slack.messages(SLACK_CHANNEL)))
        await eventually(lambda: any(
            m.pinned and answer in (m.text or "") for m in chat.telegram.bot_messages(
                TELEGRAM_CHAT)))
        # Another pass sends nothing again.
        await scheduler.watch_incidents(chat.deps)
        assert len(chat.platform.replies) == len(replyable)

        # A case that joins afterwards gets the same answer.
        [joined] = await chat.ingest(*late)
        await scheduler.watch_incidents(chat.deps)
        assert (await _links(chat))[joined["case_id"]][0] == (
            "sent" if late[0]["source"] == "webhook" else "by_hand")

        status = await chat.slack_command("/incident", "1", user=SAULE_SLACK)
        assert "Answer by hand" in status.body["text"]
        assert all(f"#{c}" in status.body["text"] for c in by_hand)

        said = await chat.slack_command("/incident", "1 resolve Service is restored",
                                        user=SAULE_SLACK)
        assert "resolved" in said.body["text"]
        await scheduler.watch_incidents(chat.deps)
        links = await _links(chat)
        answered = {c for c, (reply, _, _) in links.items() if reply == "sent"}
        assert {c: links[c][2] for c in answered} == dict.fromkeys(answered, "resolved")
        follow_ups = Counter(r["case_id"] for r in chat.platform.replies
                             if r["text"] == "Service is restored")
        assert follow_ups == dict.fromkeys(answered, 1)
        listed = await chat.slack_command("/incidents", "", user=SAULE_SLACK)
        assert "#1 resolved" in listed.body["text"]
        # The day's report counts the incident, its cases and its times.
        reported = await chat.slack_command("/report", "today", user=SAULE_SLACK)
        assert f"Incidents: 1 (0 open), {len(links)} case(s)" in str(reported.body["blocks"])
        # Resolved, the surge still in its window does not open a second incident.
        await scheduler.watch_incidents(chat.deps)
        async with chat.deps.engine.connect() as conn:
            assert len((await conn.execute(select(incidents))).all()) == 1
