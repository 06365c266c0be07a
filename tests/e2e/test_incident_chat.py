"""An incident in the chat, end to end: real slack-bolt and python-telegram-bot against
the fake servers. The incident is posted in both messengers' team channels and the
lead is told; `/incident N answer` from Slack pins the answer in every team channel and
sends it once to each linked case of a source that takes bulk replies, the rest listed
for agents; a case that joins later gets it too; resolving with a follow-up sends it
and resolves the answered cases."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from socialcare.handlers import scheduler
from socialcare.storage.schema import cases, incident_cases, incidents
from tests.conftest import FlowingClock
from tests.corpus.outage import outage
from tests.e2e.chat import (
    AIGERIM_SLACK,
    SAULE_SLACK,
    SAULE_TG,
    SLACK_CHANNEL,
    TELEGRAM_CHAT,
    Chat,
    eventually,
    running_chat,
)
from tests.e2e.test_incidents import OUTAGE_AT
from tests.fakes.vk import FakeVK

WEBHOOK = 'name = "webhook"\nkind = "webhook"\nplatform = "web"\ntier = "main"\n'


def _config(text: str) -> str:
    assert WEBHOOK in text and "min_cases = 20" in text
    text = text.replace(WEBHOOK, WEBHOOK + "incident_replies = true\n"
                        "incident_replies_per_hour = 100\n", 1)
    return _quiet(text.replace("min_cases = 20", "min_cases = 6", 1))


def _quiet(text: str) -> str:
    """The app's own scheduler looks at start and then hourly: the test's passes decide."""
    assert "check_seconds = 30" in text
    return text.replace("check_seconds = 30", "check_seconds = 3600", 1)


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


async def _opened(chat: Chat, *, within: float = 30.0) -> list[int]:
    """Run incident passes until an incident is open (the app's own scheduler, looking
    at start, may hold the lease at the test's first pass); return the incidents' ids."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        await scheduler.watch_incidents(chat.deps)
        async with chat.deps.engine.connect() as conn:
            ids = [r.id for r in await conn.execute(select(incidents.c.id))]
        if ids:
            return ids
        assert asyncio.get_running_loop().time() < deadline, "no incident opened"
        await asyncio.sleep(0.1)


async def _delivered(chat: Chat, *linked: int, within: float = 30.0) -> dict[
        int, tuple[str | None, str, str]]:
    """Run incident passes until every linked case has its answer or is left for an
    agent (the app's own scheduler may hold the lease and be the one sending), the
    cases `linked` among them; return the links."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        await scheduler.watch_incidents(chat.deps)
        links = await _links(chat)
        if set(linked) <= set(links) and all(
                reply in ("sent", "by_hand", "closed") for reply, _, _ in links.values()):
            return links
        assert asyncio.get_running_loop().time() < deadline, links
        await asyncio.sleep(0.1)


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
        assert await _opened(chat) == [1]
        # The incident in both team channels; the lead told in both messengers, once.
        await eventually(lambda: any("Incident #1" in t for t in _slack_texts(
            chat, SLACK_CHANNEL)) and any("Incident #1" in t for t in _telegram_texts(
                chat, TELEGRAM_CHAT)), within=30)
        assert await scheduler.watch_incidents(chat.deps) == []
        await eventually(lambda: [t for t in _telegram_texts(chat, SAULE_TG["id"])
                                  if "Incident #1" in t])
        assert len([t for t in _telegram_texts(chat, SAULE_TG["id"]) if "Incident #1" in t]) == 1
        assert sum("Incident #1" in t for t in _slack_texts(chat, SLACK_CHANNEL)) == 1

        answer = "Kcell: mobile internet in Almaty is down, engineers are on it; back by 16:00"
        said = await chat.slack_command("/incident", f"1 answer {answer}", user=SAULE_SLACK)
        assert "announced" in said.body["text"]
        links = await _delivered(chat)
        replyable = {c for c, (_, source, _) in links.items() if source == "webhook"}
        by_hand = {c for c, (_, source, _) in links.items() if source == "forums"}
        assert replyable and by_hand and len(links) == len(first)
        assert {c: links[c][0] for c in replyable} == dict.fromkeys(replyable, "sent")
        assert {c: links[c][0] for c in by_hand} == dict.fromkeys(by_hand, "by_hand")
        # Each replyable case got the answer once, through the listening platform.
        assert Counter(r["case_id"] for r in chat.platform.replies) == dict.fromkeys(
            replyable, 1)
        assert {r["text"] for r in chat.platform.replies} == {answer}
        # Pinned in the team channels of both messengers (the announcement), which wait
        # their turn behind the cards within the channels' rate limits.
        await eventually(lambda: any(
            m.pinned and answer in str(m.blocks) for m in chat.slack.messages(SLACK_CHANNEL)),
            within=60)
        await eventually(lambda: any(
            m.pinned and answer in (m.text or "") for m in chat.telegram.bot_messages(
                TELEGRAM_CHAT)), within=60)
        # Another pass sends nothing again.
        await scheduler.watch_incidents(chat.deps)
        assert len(chat.platform.replies) == len(replyable)

        # A case that joins afterwards gets the same answer.
        [joined] = await chat.ingest(*late)
        assert (await _delivered(chat, joined["case_id"]))[joined["case_id"]][0] == (
            "sent" if late[0]["source"] == "webhook" else "by_hand")

        # The lead takes a case out (it does not join again by itself) and adds it back.
        out = min(by_hand)
        said = await chat.slack_command("/incident", f"1 remove {out}", user=SAULE_SLACK)
        assert f"took out #{out}" in str(said.body)
        await scheduler.watch_incidents(chat.deps)
        async with chat.deps.uow() as uow:
            assert out not in await uow.incidents.case_ids(1)
        said = await chat.slack_command("/incident", f"1 add #{out}", user=SAULE_SLACK)
        assert f"added #{out}" in str(said.body)
        assert (await _delivered(chat, out))[out][0] == "by_hand"
        # The lead proposes a solution on the director's escalation.
        said = await chat.slack_command("/incident", "1 option SMS to Almaty subscribers",
                                        user=SAULE_SLACK)
        async with chat.deps.uow() as uow:
            escalation = await uow.escalations.get(1)
        assert escalation.options == ("SMS to Almaty subscribers",)
        assert escalation.raised_by == "system"

        status = await chat.slack_command("/incident", "1", user=SAULE_SLACK)
        assert "Answer by hand" in str(status.body)
        assert all(f"#{c}" in str(status.body) for c in by_hand)

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


def _vk(vk_url: str, per_hour: int) -> Callable[[str], str]:
    def edit(text: str) -> str:
        text = _quiet(text.replace("min_cases = 20", "min_cases = 4", 1))
        start = text.index('name = "vk"')
        end = text.index("[[sources]]", start)
        block = text[start:end].replace("enabled = false", "enabled = true\nincident_replies = "
                                        f"true\nincident_replies_per_hour = {per_hour}", 1)
        block = block.replace("walls = [-12345678]", "walls = []\ncalls_per_second = 100", 1)
        block = block.replace('# api_url = "https://api.vk.com/method"',
                              f'api_url = "{vk_url}/method"', 1)
        return text[:start] + block + text[end:]

    return edit


async def _vk_incident(tmp_path: Path, clock: FlowingClock, monkeypatch: pytest.MonkeyPatch,
                       *, per_hour: int, captcha: bool) -> tuple[dict[int, tuple[
                           str | None, str, str]], int, str]:
    """Six VK posts about the Almaty outage become an incident answered from Slack;
    return the links, the comments VK took, and /incident 1's text."""
    async with FakeVK(now=clock.now, rate_limits=False) as vk:
        vk.add_group(12345678, "Kcell", screen_name="kcell")
        for n in range(6):
            vk.add_profile(600 + n, "Client", str(n), screen_name=f"client{n}")
            vk.add_post(600 + n, f"Kcell, в Алматы нет интернета уже час ({n})", clock.now(),
                        from_id=600 + n)
        monkeypatch.setenv("VK_SERVICE_TOKEN", vk.token)
        monkeypatch.setenv("VK_GROUP_TOKEN", vk.token)
        monkeypatch.setenv("VK_PHOTO_TOKEN", vk.token)  # named by the example; unused here
        async with running_chat(tmp_path, clock, config=_vk(vk.url, per_hour)) as chat:
            async def vk_cases() -> int:
                async with chat.deps.engine.connect() as conn:
                    return len((await conn.execute(
                        select(cases.c.id).where(cases.c.source == "vk"))).all())

            for _ in range(200):
                if await vk_cases() == 6:
                    break
                await asyncio.sleep(0.05)
            assert await _opened(chat) == [1]
            if captcha:
                vk.fail_next_vk("wall.createComment", 14)
            await chat.slack_command("/incident", "1 answer Engineers are fixing it",
                                     user=SAULE_SLACK)
            for _ in range(200):
                await scheduler.watch_incidents(chat.deps)
                if all(r not in (None, "sending") for r, _, _ in (await _links(chat)).values()):
                    break
                await asyncio.sleep(0.05)
            status = await chat.slack_command("/incident", "1", user=SAULE_SLACK)
            return await _links(chat), len(vk.created_comments), str(status.body)


async def test_vk_captcha_stops_the_bulk_replies_and_hands_the_rest_to_agents(
    tmp_path: Path, flowing_clock: FlowingClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    links, comments, status = await _vk_incident(tmp_path, flowing_clock, monkeypatch,
                                                 per_hour=100, captcha=True)

    assert comments == 0
    assert [reply for reply, _, _ in links.values()] == ["by_hand"] * 6
    assert "replies to vk stopped" in status and "Answer by hand" in status


async def test_bulk_replies_keep_to_the_sources_hourly_cap(
    tmp_path: Path, flowing_clock: FlowingClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    links, comments, _ = await _vk_incident(tmp_path, flowing_clock, monkeypatch,
                                            per_hour=2, captcha=False)

    assert comments == 2
    assert sorted(reply or "" for reply, _, _ in links.values()) == [
        "by_hand"] * 4 + ["sent"] * 2


HOSTILE = ("", "abc", "0", "-1", "#", "1.5", "99999999999999999999", "1 frobnicate",
           "1 answer", "1 answer   ", "1 add", "1 add abc", "1 add 1;DROP TABLE cases",
           "1 remove 0", "1 option", "\x00", "1 add 99999999999999999999",
           "{\"a\": [[[[[]]]]]}")


async def test_bad_incident_commands_get_a_usage_line_and_change_nothing(
    tmp_path: Path, flowing_clock: FlowingClock
) -> None:
    slots = list(outage(OUTAGE_AT - timedelta(minutes=15), minutes_per_slot=5))
    first = slots[0].mentions[:10]
    async with running_chat(tmp_path, flowing_clock, config=_config) as chat:
        for args in (*HOSTILE, "7", "7 answer text", "7 resolve"):
            said = await chat.slack_command("/incident", args, user=SAULE_SLACK)
            assert "Usage: /incident" in str(said.body) or "no incident #" in str(
                said.body), (args, said.body)
        await chat.ingest(*first)
        assert await _opened(chat) == [1]
        for args in HOSTILE:
            said = await chat.slack_command("/incident", args, user=SAULE_SLACK)
            assert "Usage: /incident" in str(said.body) or "no incident" in str(
                said.body), (args, said.body)
        # An agent may look, not act.
        said = await chat.slack_command("/incident", "1 resolve", user=AIGERIM_SLACK)
        assert "Shift leads run incidents" in str(said.body)
        async with chat.deps.engine.connect() as conn:
            [row] = (await conn.execute(select(incidents))).all()
        assert row.state == "open" and row.answer is None
