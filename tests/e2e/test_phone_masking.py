"""A customer's phone number is for the agent and the call centre alone: every shared
surface that shows the customer's words masks it (+7 7** *** **12) — the incident
message in both messengers, the escalation card and its form's prefill, /queue and
/case, and in the console the wallboard, the incident page and the escalation page."""

from __future__ import annotations

from pathlib import Path

from socialcare.bot.actions import ActionKind, CaseAction
from socialcare.bot.incidents import Incident
from socialcare.console import access
from socialcare.handlers import scheduler
from tests.conftest import FlowingClock
from tests.e2e.chat import (
    AIGERIM_SLACK,
    ASKAR_TG,
    SAULE_SLACK,
    SLACK_CHANNEL,
    TELEGRAM_CHAT,
    Chat,
    eventually,
    mention,
    minutes_ago,
    running_chat,
)
from tests.e2e.test_console import PASSWORD, browser

CUSTOMER = "Kcell, no mobile internet since morning, call me on 8 (777) 123-45-12 please"
MASKED = "+7 7** *** **12"
# The number as the customer wrote it, and its digits however they are grouped.
UNMASKED = ("123-45-12", "123 45 12", "7771234512")


def _assert_masked(surface: str, shown: str) -> None:
    assert MASKED in shown, f"{surface}: the masked number is not shown"
    for digits in UNMASKED:
        assert digits not in shown, f"{surface} shows the customer's number"


async def _open_incident(chat: Chat, case_id: int) -> Incident:
    """Open an incident linking the case (as detection would) and post its message."""
    now = chat.deps.clock.now()
    incident = Incident(topic="internet", place=None, count=1, usual=None, window_minutes=15,
                        first_mention_at=now, detected_at=now)
    async with chat.deps.uow() as uow:
        assert await uow.incidents.add(incident)
        assert incident.id is not None
        await uow.incidents.link(incident.id, [case_id], by="system", at=now)
        await uow.commit()
    await scheduler.post_incident(incident, chat.deps)
    return incident


async def test_a_customers_phone_number_is_masked_on_every_shared_surface(
    tmp_path: Path, flowing_clock: FlowingClock
) -> None:
    async with running_chat(tmp_path, flowing_clock) as chat:
        [result] = await chat.ingest(mention("ig-1", CUSTOMER,
                                             published=minutes_ago(flowing_clock, 2)))
        case_id = result["case_id"]
        await eventually(lambda: chat.slack_cards() and chat.telegram_cards())
        # The escalation form's problem is prefilled with the customer's words.
        await chat.slack_send(chat.slack.block_actions(
            action_id=CaseAction(ActionKind.ESCALATE, case_id).pack(), channel=SLACK_CHANNEL,
            user=AIGERIM_SLACK))
        form = await eventually(lambda: chat.slack.views and chat.slack.latest_view())
        prefill = form.view["blocks"][2]["element"]["initial_value"]
        await chat.slack_send(chat.slack.view_submission(values={
            "category": {"category": "critical"}, "director": {"director": "askar"},
            "problem": {"problem": "No mobile internet for a customer"},
            "options": {"options": "Send an engineer"}}))
        escalation_card = await eventually(lambda: next(
            (m.text for m in chat.telegram.bot_messages(ASKAR_TG["id"])
             if any(d.startswith("sc1e:") for d in m.callback_data())), None))
        queue = await chat.slack_command("/queue", user=AIGERIM_SLACK)
        case = await chat.slack_command("/case", str(case_id), user=AIGERIM_SLACK)
        incident = await _open_incident(chat, case_id)
        slack_note = await eventually(lambda: next(
            (m.text for m in chat.slack.messages(SLACK_CHANNEL, include_replies=False)
             if f"#{incident.id}" in (m.text or "") and "“" in (m.text or "")), None))
        telegram_note = await eventually(lambda: next(
            (m.text for m in chat.telegram.bot_messages(TELEGRAM_CHAT)
             if "“" in (m.text or "")), None))
        await access.set_password(chat.deps, "saule", PASSWORD)
        async with browser(chat.base_url) as lead:
            assert await lead.sign_in("saule") == 303
            wallboard = await lead.get("/")
            incident_page = await lead.get(f"/incidents/{incident.id}")
            escalation_page = await lead.get("/escalations/1")
            case_page = await lead.get(f"/cases/{case_id}")
        report = await chat.slack_command("/report", "today", user=SAULE_SLACK)

    assert "8 (777) 123-45-12" in CUSTOMER  # the number the customer wrote, unmasked
    for surface, shown in (
        ("the escalation form's prefill", prefill),
        ("the escalation card", escalation_card),
        ("/queue", str(queue.body)),
        ("/case", str(case.body)),
        ("the incident message in Slack", slack_note),
        ("the incident message in Telegram", telegram_note),
    ):
        _assert_masked(surface, shown)
    for surface, (status, page, _) in (
        ("the wallboard", wallboard), ("the incident page", incident_page),
        ("the escalation page", escalation_page), ("the case page", case_page),
    ):
        assert status == 200, surface
        _assert_masked(surface, page)
    for digits in UNMASKED:
        assert digits not in str(report.body)
