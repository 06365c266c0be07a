"""The buttons of an incident's message, end to end: real slack-bolt and
python-telegram-bot against the fake servers. A shift lead acknowledges the incident
(at once, no form; the button then leaves the message), answers it, adds and takes out
cases and resolves it from the buttons — a form in Slack, a question in
the private chat in Telegram — which run what `/incident N …` runs; an agent is
refused; bad input gets a reason and changes nothing; a replayed submission or a
redelivered update does not act twice."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from socialcare.bot.actions import IncidentAction, IncidentActionKind
from socialcare.handlers import scheduler
from socialcare.storage.schema import announcements, incident_cases, incidents
from tests.conftest import FlowingClock
from tests.corpus.outage import outage
from tests.e2e.chat import (
    AIGERIM_SLACK,
    AIGERIM_TG,
    SAULE_SLACK,
    SAULE_TG,
    SLACK_CHANNEL,
    TELEGRAM_CHAT,
    Chat,
    eventually,
    running_chat,
)
from tests.e2e.test_incident_chat import _config, _delivered, _links, _opened
from tests.e2e.test_incidents import OUTAGE_AT

ANSWER = "Kcell: mobile internet in Almaty is down,\nengineers are on it; back by 16:00"


def _pack(kind: IncidentActionKind, incident_id: int = 1) -> str:
    return IncidentAction(kind, incident_id).pack()


async def _incident(chat: Chat) -> None:
    """Ten outage mentions open incident #1, posted with its buttons in both messengers."""
    slots = list(outage(OUTAGE_AT - timedelta(minutes=15), minutes_per_slot=5))
    await chat.ingest(*slots[0].mentions[:10])
    assert await _opened(chat) == [1]
    await eventually(lambda: _slack_message(chat) and _telegram_message(chat), within=30)


def _slack_message(chat: Chat) -> Any:
    found = [m for m in chat.slack.messages(SLACK_CHANNEL, include_replies=False)
             if "Incident #1:" in (m.text or "")]
    return found[0] if found else None


def _telegram_message(chat: Chat) -> Any:
    found = [m for m in chat.telegram.bot_messages(TELEGRAM_CHAT)
             if "Incident #1:" in (m.text or "")]
    return found[0] if found else None


async def _state(chat: Chat) -> tuple[str, str | None, list[int], int]:
    """Return incident #1's state, answer, linked cases and the announcements made."""
    async with chat.deps.engine.connect() as conn:
        row = (await conn.execute(select(incidents).where(incidents.c.id == 1))).one()
        linked = sorted(r.case_id for r in await conn.execute(
            select(incident_cases.c.case_id).where(incident_cases.c.incident_id == 1,
                                                   incident_cases.c.removed_at.is_(None))))
        announced = (await conn.execute(select(func.count()).select_from(announcements))
                     ).scalar_one()
    return row.state, row.answer, linked, announced


async def _click_slack(chat: Chat, kind: IncidentActionKind, *, user: str) -> Any:
    """Click an incident button in Slack; return the form it opened (or None)."""
    views = len(chat.slack.views)
    await chat.slack_send(chat.slack.block_actions(
        action_id=_pack(kind), channel=SLACK_CHANNEL, message_ts=_slack_message(chat).ts,
        user=user))
    if user != SAULE_SLACK or kind is IncidentActionKind.ACK:
        return None
    return await eventually(lambda: len(chat.slack.views) > views and chat.slack.latest_view())


async def _submit(chat: Chat, written: str, *, user: str | None = None) -> Any:
    return await chat.slack_send(chat.slack.view_submission(
        values={"text": {"text": written}}, user=user))


def _told(chat: Chat, user: str, count: int) -> Any:
    return eventually(lambda: len(chat.slack.ephemerals_for(user)) >= count
                      and chat.slack.ephemerals_for(user)[count - 1].text)


HOSTILE_CASES = ("", "   ", "abc", "0", "-1", "1.5", "#", "45;DROP TABLE cases",
                 "99999999999999999999", "\x00", "1\x00;2", "1, " * 300, "4" * 600)
HOSTILE_ANSWERS = ("", "   ", "\x00", "\x00\x01\x02", "x" * 3001)
# The buttons left once the incident is acknowledged.
AFTER_ACK = [k for k in IncidentActionKind if k is not IncidentActionKind.ACK]


async def _acknowledged(chat: Chat) -> list[tuple[str, str]]:
    """Return incident #1's acknowledgement events (who, and their data) and check the
    incident records the moment."""
    async with chat.deps.uow() as uow:
        incident = await uow.incidents.get(1)
        found = [(e.actor, str(e.data)) for e in await uow.incidents.events_for(1)
                 if e.kind == "acknowledged"]
    assert (incident.acknowledged_at is not None) == bool(found)
    return found


async def test_a_lead_runs_the_incident_from_its_slack_buttons_and_forms(
    tmp_path: Path, flowing_clock: FlowingClock
) -> None:
    flowing_clock.current = OUTAGE_AT - timedelta(minutes=5)
    async with running_chat(tmp_path, flowing_clock, config=_config) as chat:
        await _incident(chat)
        message = _slack_message(chat)
        assert message.action_ids() == [_pack(kind) for kind in IncidentActionKind]
        before = await _state(chat)
        assert before[:2] == ("open", None) and len(before[2]) == 10

        # An agent's click opens no form: a private reason instead.
        views = len(chat.slack.views)
        await _click_slack(chat, IncidentActionKind.ANSWER, user=AIGERIM_SLACK)
        assert "Shift leads run incidents" in await _told(chat, AIGERIM_SLACK, 1)
        await _click_slack(chat, IncidentActionKind.ACK, user=AIGERIM_SLACK)
        assert "Shift leads run incidents" in await _told(chat, AIGERIM_SLACK, 2)
        assert len(chat.slack.views) == views and await _acknowledged(chat) == []

        # Acknowledge: at once, no form; recorded with who; the button leaves the message.
        await _click_slack(chat, IncidentActionKind.ACK, user=SAULE_SLACK)
        assert "is acknowledged" in await _told(chat, SAULE_SLACK, 1)
        assert len(chat.slack.views) == views
        assert await _acknowledged(chat) == [("saule", "{}")]
        await scheduler.watch_incidents(chat.deps)
        await eventually(lambda: _slack_message(chat).action_ids() == [
            _pack(k) for k in AFTER_ACK], within=30)

        # Bad answers are refused in the form; nothing changes.
        form = await _click_slack(chat, IncidentActionKind.ANSWER, user=SAULE_SLACK)
        assert form.view["callback_id"] == "sc1_incident"
        for written in HOSTILE_ANSWERS:
            said = await _submit(chat, written)
            assert said.status == 200 and said.json()["response_action"] == "errors", written
            assert said.json()["errors"]["text"], written
        # An agent submitting the lead's form (a forged or shared view) is refused too.
        said = await _submit(chat, ANSWER, user=AIGERIM_SLACK)
        assert "Shift leads run incidents" in said.json()["errors"]["text"]
        assert await _state(chat) == before

        # The lead's answer: announced once, sent once to every linked case that can be.
        submission = chat.slack.view_submission(values={"text": {"text": ANSWER}})
        said = await chat.slack_send(submission)
        assert said.status == 200 and said.text == ""
        assert "is announced in every team channel" in await _told(chat, SAULE_SLACK, 2)
        # The same submission again (Slack's retry of a request it thinks was lost, and
        # a plain replay) is acknowledged and not acted on twice.
        retried = replace(submission, headers={**submission.headers,
                                               "X-Slack-Retry-Num": "1",
                                               "X-Slack-Retry-Reason": "http_timeout"})
        assert (await chat.slack_send(retried)).status == 200
        assert (await chat.slack_send(submission)).status == 200
        links = await _delivered(chat)
        replyable = {c for c, (_, source, _) in links.items() if source == "webhook"}
        assert replyable
        assert Counter(r["case_id"] for r in chat.platform.replies) == dict.fromkeys(
            replyable, 1)
        assert {r["text"] for r in chat.platform.replies} == {ANSWER}
        state, answer, linked, announced = await _state(chat)
        assert (state, answer, announced) == ("open", ANSWER, 1)
        assert len(chat.slack.ephemerals_for(SAULE_SLACK)) == 2
        # The answer did not acknowledge it a second time.
        assert await _acknowledged(chat) == [("saule", "{}")]
        # A second answer from the button is refused with the reason.
        await _click_slack(chat, IncidentActionKind.ANSWER, user=SAULE_SLACK)
        await _submit(chat, "Another answer")
        assert "has its answer" in await _told(chat, SAULE_SLACK, 3)

        # Cases: bad numbers are refused in the form and change nothing.
        await _click_slack(chat, IncidentActionKind.REMOVE, user=SAULE_SLACK)
        for written in HOSTILE_CASES:
            said = await _submit(chat, written)
            assert said.json()["response_action"] == "errors", written
            assert "case numbers are not clear" in said.json()["errors"]["text"], written
        assert (await _state(chat))[2] == linked
        out = linked[:2]
        await _submit(chat, f"{out[0]}, #{out[1]}")
        assert f"took out #{out[0]}, #{out[1]}" in await _told(chat, SAULE_SLACK, 4)
        assert (await _state(chat))[2] == linked[2:]
        # Out, they do not join again by themselves; the message counts them.
        await scheduler.watch_incidents(chat.deps)
        assert (await _state(chat))[2] == linked[2:]
        await eventually(lambda: "8 case(s) linked" in (_slack_message(chat).text or "")
                         and "8 case(s) linked" in (_telegram_message(chat).text or ""),
                         within=30)
        # The edited message keeps its buttons in both messengers, but Acknowledge.
        assert _slack_message(chat).action_ids() == [_pack(k) for k in AFTER_ACK]
        assert _telegram_message(chat).callback_data() == [_pack(k) for k in AFTER_ACK]

        # A case that does not exist: the reason, and nothing added.
        await _click_slack(chat, IncidentActionKind.ADD, user=SAULE_SLACK)
        await _submit(chat, f"{out[0]} 999999")
        assert "999999" in await _told(chat, SAULE_SLACK, 5)
        assert (await _state(chat))[2] == linked[2:]
        await _click_slack(chat, IncidentActionKind.ADD, user=SAULE_SLACK)
        await _submit(chat, f"{out[0]} {out[1]}")
        assert f"added #{out[0]}, #{out[1]}" in await _told(chat, SAULE_SLACK, 6)
        assert (await _state(chat))[2] == linked

        # Resolve with a follow-up: sent to the answered cases, every case resolved.
        await _click_slack(chat, IncidentActionKind.RESOLVE, user=SAULE_SLACK)
        await _submit(chat, "Service is restored")
        assert "resolved" in await _told(chat, SAULE_SLACK, 7)
        assert (await _state(chat))[0] == "resolved"
        # The buttons of a resolved incident say so and change nothing.
        await _click_slack(chat, IncidentActionKind.ADD, user=SAULE_SLACK)
        await _submit(chat, "1")
        assert "is resolved" in await _told(chat, SAULE_SLACK, 8)
        # Forged payloads: a button that is not one of ours, a form whose metadata was
        # tampered with — a reason, no error.
        forged = await chat.slack_send(chat.slack.block_actions(
            action_id="sc1i:explode:1", channel=SLACK_CHANNEL,
            message_ts=_slack_message(chat).ts, user=SAULE_SLACK, check=False))
        assert forged.status == 200
        assert "no longer valid" in await _told(chat, SAULE_SLACK, 9)
        form = await _click_slack(chat, IncidentActionKind.ANSWER, user=SAULE_SLACK)
        for metadata in ("explode|1|C1", "answer|0|", "answer|99999999999999999999|", ""):
            form.view["private_metadata"] = metadata
            said = await _submit(chat, ANSWER)
            assert said.status == 200 and said.json()["response_action"] == "errors"
        # Each thing the lead did was told once: the replayed answer told nothing more.
        assert len(chat.slack.ephemerals_for(SAULE_SLACK)) == 9
        links = await _links(chat)

    assert set(links) == set(linked)


async def test_a_lead_runs_the_incident_from_its_telegram_buttons_in_private(
    tmp_path: Path, flowing_clock: FlowingClock
) -> None:
    flowing_clock.current = OUTAGE_AT - timedelta(minutes=5)
    async with running_chat(tmp_path, flowing_clock, config=_config) as chat:
        await _incident(chat)
        message = _telegram_message(chat)
        assert message.callback_data() == [_pack(kind) for kind in IncidentActionKind]
        before = await _state(chat)
        linked = before[2]

        async def press(kind: IncidentActionKind, user: dict[str, Any]) -> Any:
            click = chat.telegram.callback_query_update(message, _pack(kind), from_user=user)
            await chat.telegram_send(click)
            query = chat.telegram.callback_queries[click["callback_query"]["id"]]
            await eventually(lambda: query.answered)
            return query

        def privately(user: dict[str, Any]) -> list[Any]:
            return chat.telegram.bot_messages(user["id"])

        async def reply(written: str, count: int, question: Any = None) -> Any:
            """Reply to the question (the newest message in Saule's private chat); wait
            for the bot's `count`-th message there and return it."""
            question = question or privately(SAULE_TG)[-1]
            update = chat.telegram.reply_update(question, written, from_user=SAULE_TG)
            await chat.telegram_send(update)
            await eventually(lambda: len(privately(SAULE_TG)) >= count)
            return update, privately(SAULE_TG)[count - 1].text or ""

        # The leads' ping of the incident reaches Saule's private chat paced by the
        # messenger's budget: let it arrive before counting the messages there.
        await eventually(lambda: any("Incident #1" in (m.text or "")
                                     for m in privately(SAULE_TG)))

        # An agent is refused at the press, asked nothing.
        query = await press(IncidentActionKind.ANSWER, AIGERIM_TG)
        assert query.answer["show_alert"] and "Shift leads run incidents" in query.answer["text"]
        assert not [m for m in privately(AIGERIM_TG) if "incident #1" in (m.text or "")]

        # Acknowledge: refused to an agent; the lead's press does it at once (no
        # question), once; the button leaves the message.
        query = await press(IncidentActionKind.ACK, AIGERIM_TG)
        assert query.answer["show_alert"] and "Shift leads run incidents" in query.answer["text"]
        assert await _acknowledged(chat) == []
        asked = len(privately(SAULE_TG))
        query = await press(IncidentActionKind.ACK, SAULE_TG)
        assert not query.answer.get("show_alert") and "is acknowledged" in query.answer["text"]
        query = await press(IncidentActionKind.ACK, SAULE_TG)
        assert "acknowledged already" in query.answer["text"]
        assert len(privately(SAULE_TG)) == asked
        assert await _acknowledged(chat) == [("saule", "{}")]
        await scheduler.watch_incidents(chat.deps)
        await eventually(lambda: _telegram_message(chat).callback_data() == [
            _pack(k) for k in AFTER_ACK], within=30)

        # Take cases out: bad numbers get a reason and change nothing.
        query = await press(IncidentActionKind.REMOVE, SAULE_TG)
        assert "private message" in query.answer["text"]
        question = privately(SAULE_TG)[-1]
        assert "cases to take out of incident #1" in (question.text or "")
        asked = len(privately(SAULE_TG))
        for n, written in enumerate(("abc", "0", "99999999999999999999", "1\x00;2", "-"),
                                    start=1):
            _, said = await reply(written, asked + n, question)
            assert "case numbers are not clear" in said, written
        assert (await _state(chat))[2] == linked
        # Another reply to the same question is taken.
        count = len(privately(SAULE_TG))
        _, said = await reply(f"#{linked[0]}", count + 1, question)
        assert f"took out #{linked[0]}" in said
        assert (await _state(chat))[2] == linked[1:]
        await press(IncidentActionKind.ADD, SAULE_TG)
        count = len(privately(SAULE_TG))
        _, said = await reply(str(linked[0]), count + 1)
        assert f"added #{linked[0]}" in said
        assert (await _state(chat))[2] == linked

        # The answer; Telegram redelivering the reply's update does not act twice.
        await press(IncidentActionKind.ANSWER, SAULE_TG)
        count = len(privately(SAULE_TG))
        update, said = await reply(ANSWER, count + 1)
        assert "is announced in every team channel" in said
        await chat.telegram_send(update)
        links = await _delivered(chat)
        replyable = {c for c, (_, source, _) in links.items() if source == "webhook"}
        assert Counter(r["case_id"] for r in chat.platform.replies) == dict.fromkeys(
            replyable, 1)
        state, answer, _, announced = await _state(chat)
        assert (state, answer, announced) == ("open", ANSWER, 1)
        assert len(privately(SAULE_TG)) == count + 1

        # Resolve without a follow-up ("-").
        await press(IncidentActionKind.RESOLVE, SAULE_TG)
        count = len(privately(SAULE_TG))
        _, said = await reply("-", count + 1)
        assert "resolved" in said
        assert len(privately(SAULE_TG)) == count + 1
        state, *_ = await _state(chat)

    assert state == "resolved"
