"""An incident in the chat, end to end: real slack-bolt and python-telegram-bot against
the fake servers. The incident is posted in both messengers' team channels and the
lead is told; `/incident N answer` from Slack pins the answer in every team channel and
sends it once to each linked case of a source that takes bulk replies, the rest listed
for agents; a case that joins later gets it too; resolving with a follow-up sends it
and resolves every linked case, those nobody answered recorded as such. A bulk reply a
stopped process left half-done is taken again if it never reached the platform, and
never sent twice if it may have. The linked cases' cards say so in both messengers;
bulk replies go earliest deadline first; X, a source with a reply path, takes none
unless its config says so."""

from __future__ import annotations

import asyncio
import logging
import re
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from socialcare.bot import incident_replies
from socialcare.bot.model import EventKind
from socialcare.handlers import scheduler
from socialcare.storage.database import create_engine
from socialcare.storage.redis import lease
from socialcare.storage.schema import case_facts, cases, incident_cases, incidents
from tests.conftest import TEST_DATABASE_URL, FlowingClock, database_url
from tests.corpus.outage import outage
from tests.e2e.chat import (
    AIGERIM_SLACK,
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
from tests.e2e.test_collectors import _each, _enable
from tests.e2e.test_incidents import OUTAGE_AT
from tests.fakes.vk import FakeVK
from tests.fakes.x import FakeX

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


def _marked(chat: Chat) -> set[int]:
    """Return the cases whose cards say "🚨 Part of incident #1" in both messengers."""
    mark = "🚨 Part of incident #1"
    slack = {m.metadata["event_payload"]["case_id"] for m in chat.slack_cards()
             if mark in str(m.blocks)}
    telegram = {int(found[1]) for m in chat.telegram_cards()
                if mark in (m.text or "") and (found := re.match(r"\D*#(\d+)", m.text or ""))}
    return slack & telegram


def _incident_messages_say(chat: Chat, words: str) -> bool:
    """Tell whether incident #1 has one message in the team channel of each messenger,
    and both say `words`."""
    slack = [t for t in _slack_texts(chat, SLACK_CHANNEL) if "Incident #1:" in t]
    telegram = [t for t in _telegram_texts(chat, TELEGRAM_CHAT) if "Incident #1:" in t]
    return len(slack) == len(telegram) == 1 and words in slack[0] and words in telegram[0]


async def _links(chat: Chat) -> dict[int, tuple[str | None, str, str]]:
    async with chat.deps.engine.connect() as conn:
        rows = await conn.execute(
            select(incident_cases.c.case_id, incident_cases.c.reply, cases.c.source,
                   cases.c.state).join(cases, cases.c.id == incident_cases.c.case_id))
        return {r.case_id: (r.reply, r.source, r.state) for r in rows}


async def _closed(chat: Chat, *, within: float = 30.0) -> dict[
        int, tuple[str | None, str, str]]:
    """Run incident passes until every linked case of the resolved incidents is closed
    (the app's own scheduler may hold the lease and be the one closing); return the
    links."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        await scheduler.watch_incidents(chat.deps)
        async with chat.deps.engine.connect() as conn:
            left = (await conn.execute(select(incident_cases.c.case_id).where(
                incident_cases.c.closed_at.is_(None),
                incident_cases.c.removed_at.is_(None)))).all()
        if not left:
            return await _links(chat)
        assert asyncio.get_running_loop().time() < deadline, left
        await asyncio.sleep(0.1)


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
        # The message says since when (the first mention, in the team's time) and what
        # people write: the first linked cases' texts, as many as `samples` (3).
        first_at = min(datetime.fromisoformat(m["published_at"]) for m in first)
        since = f"first mention {first_at.astimezone(chat.deps.team.zone):%H:%M}"
        numbered = sorted((r["case_id"], m["text"]) for r, m in zip(created, first, strict=True))
        samples = [f"“{text}”" for _, text in numbered[:3]]
        for message in ([t for t in _slack_texts(chat, SLACK_CHANNEL) if "Incident #1:" in t]
                        + [t for t in _telegram_texts(chat, TELEGRAM_CHAT)
                           if "Incident #1:" in t]):
            assert since in message
            assert [line.strip() for line in message.splitlines() if "“" in line] == samples
        # Every linked case's card says it is part of the incident, in both messengers.
        await eventually(lambda: _marked(chat) == {r["case_id"] for r in created}, within=60)

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

        assert _incident_messages_say(chat, f"{len(first)} case(s) linked")
        # A case that joins afterwards gets the same answer, and the incident's message
        # in both messengers counts it (edited, not posted again).
        [joined] = await chat.ingest(*late)
        assert (await _delivered(chat, joined["case_id"]))[joined["case_id"]][0] == (
            "sent" if late[0]["source"] == "webhook" else "by_hand")
        await eventually(lambda: _incident_messages_say(
            chat, f"{len(first) + 1} case(s) linked"), within=30)

        # The lead takes a case out (it does not join again by itself) and adds it back.
        out = min(by_hand)
        said = await chat.slack_command("/incident", f"1 remove {out}", user=SAULE_SLACK)
        assert f"took out #{out}" in str(said.body)
        await scheduler.watch_incidents(chat.deps)
        async with chat.deps.uow() as uow:
            assert out not in await uow.incidents.case_ids(1)
        await eventually(lambda: _incident_messages_say(
            chat, f"{len(first)} case(s) linked"), within=30)
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
        links = await _closed(chat)
        answered = {c for c, (reply, _, _) in links.items() if reply == "sent"}
        unanswered = set(links) - answered
        assert answered and unanswered
        # Every linked case is resolved, the follow-up sent once to each that has a
        # reply path (it is the team's latest answer there).
        assert {c: state for c, (_, _, state) in links.items()} == dict.fromkeys(
            links, "resolved")
        follow_ups = Counter(r["case_id"] for r in chat.platform.replies
                             if r["text"] == "Service is restored")
        assert follow_ups == dict.fromkeys(answered, 1)
        # The record stays true: the cases nobody answered were closed by the incident's
        # resolution, say so, and have no first answer (no reaction time they did not
        # earn); the answered ones have theirs.
        async with chat.deps.uow() as uow:
            histories = await uow.events.for_cases(list(links))
        closings = {c: [dict(e.data) for e in h if e.kind is EventKind.RESOLVED]
                    for c, h in histories.items()}
        assert {c: closings[c] for c in answered} == {c: [{"incident": 1}] for c in answered}
        assert {c: closings[c] for c in unanswered} == {
            c: [{"incident": 1, "unanswered": True}] for c in unanswered}
        async with chat.deps.engine.connect() as conn:
            facts = {r.case_id: r for r in await conn.execute(select(case_facts))}
        assert {c: facts[c].standing for c in links} == dict.fromkeys(links, "resolved")
        assert all(facts[c].first_answer_at is None for c in unanswered)
        assert all(facts[c].first_answer_at is not None for c in answered)
        # Another pass finds nothing left to close and sends nothing again.
        sent_before = len(chat.platform.replies)
        await scheduler.watch_incidents(chat.deps)
        assert len(chat.platform.replies) == sent_before
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
    # When they are written: detection counts cases by their customers' time.
    flowing_clock.current = OUTAGE_AT - timedelta(minutes=5)
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


@asynccontextmanager
async def _answered(chat: Chat, *, within: float = 30.0) -> AsyncIterator[
        dict[int, tuple[str | None, str, str]]]:
    """Ten outage mentions open incident #1 and the lead answers it from Slack; yield
    the links with nothing delivered, holding the scheduler's incident lease meanwhile:
    the app's own first look at incidents (at its start, then hourly) may come late on
    a busy machine, and no pass of it delivers while the block runs."""
    slots = list(outage(OUTAGE_AT - timedelta(minutes=15), minutes_per_slot=5))
    await chat.ingest(*slots[0].mentions[:10])
    assert await _opened(chat) == [1]
    deadline = asyncio.get_running_loop().time() + within
    while True:
        async with lease(chat.deps.redis, "incidents", seconds=within) as held:
            if held:
                said = await chat.slack_command("/incident", f"1 answer {ANSWER}",
                                                user=SAULE_SLACK)
                assert "announced" in said.body["text"]
                links = await _links(chat)
                assert {reply for reply, _, _ in links.values()} == {None}
                yield links
                return
        assert asyncio.get_running_loop().time() < deadline, "the incident lease stays held"
        await asyncio.sleep(0.05)


async def _settled(chat: Chat, *but: int, within: float = 30.0) -> dict[
        int, tuple[str | None, str, str]]:
    """Run incident passes until every linked case but `but` has its answer or is left
    for an agent; return the links."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        await scheduler.watch_incidents(chat.deps)
        links = await _links(chat)
        if all(reply in ("sent", "by_hand") for c, (reply, _, _) in links.items()
               if c not in but):
            return links
        assert asyncio.get_running_loop().time() < deadline, links
        await asyncio.sleep(0.1)


ANSWER = "Kcell: mobile internet in Almaty is down, engineers are on it"


async def test_a_bulk_reply_left_sending_is_taken_again_after_its_lease_and_sent_once(
    tmp_path: Path, flowing_clock: FlowingClock
) -> None:
    flowing_clock.current = OUTAGE_AT - timedelta(minutes=5)
    async with running_chat(tmp_path, flowing_clock, config=_config) as chat:
        async with _answered(chat) as links:
            replyable = {c for c, (_, source, _) in links.items() if source == "webhook"}
            stuck = min(replyable)
            # A process took the case and stopped before it called the platform.
            async with chat.deps.engine.begin() as conn:
                await conn.execute(
                    update(incident_cases).where(incident_cases.c.case_id == stuck)
                    .values(reply="sending", sending_at=chat.clock.now()))

        links = await _settled(chat, stuck)
        # Within its lease nobody else sends it.
        assert links[stuck][0] == "sending"
        assert stuck not in {r["case_id"] for r in chat.platform.replies}
        chat.clock.advance(minutes=3)
        links = await _delivered(chat)
        await scheduler.watch_incidents(chat.deps)

    assert links[stuck][0] == "sent"
    assert Counter(r["case_id"] for r in chat.platform.replies) == dict.fromkeys(replyable, 1)


async def test_a_bulk_reply_cut_off_mid_call_is_never_sent_twice_and_goes_to_agents(
    tmp_path: Path, flowing_clock: FlowingClock
) -> None:
    flowing_clock.current = OUTAGE_AT - timedelta(minutes=5)
    async with running_chat(tmp_path, flowing_clock, config=_config) as chat:
        async with _answered(chat) as links:
            replyable = {c for c, (_, source, _) in links.items() if source == "webhook"}
            # The platform takes the first reply but its answer never comes back: the
            # process stops in the middle of the call.
            chat.platform.held = asyncio.Event()
            sending = asyncio.create_task(incident_replies.deliver(
                uow=chat.deps.uow(), clock=chat.clock, team=chat.deps.team,
                publishers=chat.deps.publishers))
            await eventually(lambda: chat.platform.replies)
            sending.cancel()
            with suppress(asyncio.CancelledError):
                await sending
            chat.platform.held.set()
            [cut] = [r["case_id"] for r in chat.platform.replies]
            assert (await _links(chat))[cut][0] == "publishing"

        # Within the lease it is left alone; after it, nothing shows that it went out,
        # so it is not sent again: it goes to the agents, flagged.
        links = await _settled(chat, cut)
        assert links[cut][0] == "publishing"
        chat.clock.advance(minutes=3)
        links = await _delivered(chat)
        await scheduler.watch_incidents(chat.deps)
        status = await chat.slack_command("/incident", "1", user=SAULE_SLACK)

    assert links[cut][0] == "by_hand"
    assert Counter(r["case_id"] for r in chat.platform.replies) == dict.fromkeys(replyable, 1)
    assert "Sent perhaps" in str(status.body) and f"#{cut}" in str(status.body)


async def test_bulk_replies_go_out_earliest_deadline_first(
    tmp_path: Path, flowing_clock: FlowingClock
) -> None:
    clock = flowing_clock
    clock.current = OUTAGE_AT
    mentions = [m for slot in outage(OUTAGE_AT - timedelta(minutes=15), minutes_per_slot=5)
                for m in slot.mentions if m["source"] == "webhook"][:8]
    # Ingested newest first: the later a case's number, the earlier its deadline.
    mentions = [{**m, "published_at": (OUTAGE_AT - timedelta(minutes=k + 1)).isoformat()}
                for k, m in enumerate(mentions)]
    async with running_chat(tmp_path, clock, config=_config) as chat:
        created = await chat.ingest(*mentions)
        assert await _opened(chat) == [1]
        async with chat.deps.engine.connect() as conn:  # before the answer stops them
            due = {r.id: r.response_due_at for r in await conn.execute(
                select(cases.c.id, cases.c.response_due_at))}
        await chat.slack_command("/incident", "1 answer Engineers are on it",
                                 user=SAULE_SLACK)
        links = await _delivered(chat)

    sent = [r["case_id"] for r in chat.platform.replies]
    assert sorted(sent) == sorted(links) == sorted(r["case_id"] for r in created)
    assert sent == sorted(sent, key=lambda c: (due[c], c))
    assert sent != sorted(sent)  # the deadlines ran against the numbers


async def test_x_takes_no_bulk_replies_unless_its_config_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    x = FakeX()
    clock = FlowingClock(current=x.now())  # the app runs on X's time, as in life
    async with x:
        for n in range(6):
            x.add_tweet(f"Kcell no mobile internet in Almaty for an hour ({n})",
                        author=f"client{n}")
        monkeypatch.setenv("X_BEARER_TOKEN", x.bearer_token)
        monkeypatch.setenv("X_USER_TOKEN", x.user_token)
        config = _each(_config, _enable("x", ("options = { bearer_env",
                                               f'options = {{ api_url = "{x.url}", bearer_env')))
        async with running_chat(tmp_path, clock, config=config) as chat:
            async def x_cases() -> int:
                async with chat.deps.engine.connect() as conn:
                    return len((await conn.execute(
                        select(cases.c.id).where(cases.c.source == "x"))).all())

            for _ in range(600):
                if await x_cases() == 6:
                    break
                await asyncio.sleep(0.05)
            assert await _opened(chat) == [1]
            assert chat.deps.publishers.get("x") is not None  # X has a reply path
            await chat.slack_command("/incident", "1 answer Engineers are on it",
                                     user=SAULE_SLACK)
            links = await _delivered(chat)

    assert {source for _, source, _ in links.values()} == {"x"} and len(links) == 6
    assert {reply for reply, _, _ in links.values()} == {"by_hand"}
    assert not x.posted


@pytest.mark.skipif(not TEST_DATABASE_URL, reason="a lock on one table needs a database "
                    "server (TEST_DATABASE_URL); SQLite locks the whole file")
async def test_sla_points_fire_while_an_incident_check_waits(
    tmp_path: Path, flowing_clock: FlowingClock, caplog: pytest.LogCaptureFixture
) -> None:
    """The incidents are watched beside the SLA sweep, not in it: while a check waits
    (here for a lock on the incidents; in life, a big surge's thousands of cases being
    linked), a point falling due still fires."""
    def every_five_seconds(text: str) -> str:
        assert "check_seconds = 30" in text
        return text.replace("check_seconds = 30", "check_seconds = 5", 1)

    caplog.set_level(logging.INFO, logger=scheduler.__name__)
    async with running_chat(tmp_path, flowing_clock, config=every_five_seconds) as chat:
        # Its 50 % point (7.5 minutes of 15) falls due 20 s after it is stored.
        await chat.ingest(mention("ig-1", published=minutes_ago(flowing_clock, 7.5 - 1 / 3)))
        await eventually(lambda: chat.slack_cards())

        def warned() -> bool:
            return any(r.getMessage().startswith("SLA warning 50%: case #1")
                       for r in caplog.records)

        other = create_engine(database_url(tmp_path))  # not the app's connections
        holder, watcher = await other.connect(), await other.connect()
        try:
            await holder.exec_driver_sql("LOCK TABLE incidents IN ACCESS EXCLUSIVE MODE")

            async def check_waits() -> bool:
                waiting = await watcher.exec_driver_sql(
                    "SELECT count(*) FROM pg_locks WHERE NOT granted "
                    "AND relation = 'incidents'::regclass")
                return bool(waiting.scalar())

            for _ in range(100):  # the next check begins within 5 s, and waits
                if await check_waits():
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("no incident check came to wait for the lock")
            assert not warned()  # the point falls due while the check waits
            await eventually(warned)
            assert await check_waits()  # the check was still waiting all along
        finally:
            await holder.rollback()
            await holder.close()
            await watcher.close()
            await other.dispose()
