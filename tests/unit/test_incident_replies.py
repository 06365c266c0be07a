"""Closing a case with its incident, and telling from a case's record whether a bulk
reply cut off mid-call went out."""

from __future__ import annotations

from datetime import timedelta

import pytest

from socialcare.bot import lifecycle
from socialcare.bot.errors import InvalidTransition
from socialcare.bot.incident_replies import went_out
from socialcare.bot.metrics import Standing, case_figures
from socialcare.bot.model import Author, Case, Event, EventKind, Mention, State
from socialcare.bot.pipeline import created_event
from tests.conftest import T0, make_team
from tests.unit.cases import POLICY, new_case

TEXT = "Mobile internet in Almaty is down; engineers are on it."


def _created() -> tuple[Case, list[Event]]:
    case = new_case()
    mention = Mention(source="webhook", external_id="p1", platform="instagram",
                      text="Kcell, no internet in Almaty", published_at=T0, collected_at=T0,
                      thread_key="p1", author=Author())
    return case, [created_event(case, mention, make_team())]


def test_a_case_nobody_answered_is_resolved_by_its_incident_and_earns_no_reaction() -> None:
    case, events = _created()
    closed_at = T0 + timedelta(minutes=40)

    events.append(lifecycle.close_with_incident(case, by="saule", at=closed_at, policy=POLICY,
                                                incident=3))
    figures = case_figures(events, now=closed_at)

    assert case.state is State.RESOLVED and case.next_alert_at is None
    assert events[-1].kind is EventKind.RESOLVED
    assert events[-1].data == {"incident": 3, "unanswered": True}
    assert figures.standing is Standing.RESOLVED
    assert figures.reaction is None and figures.sla_met is False  # its deadline passed
    assert figures.resolution == timedelta(minutes=40)


def test_an_answered_case_is_resolved_by_its_incident_as_answered() -> None:
    case, events = _created()
    events.append(lifecycle.answer(case, by="saule", at=T0 + timedelta(minutes=5),
                                   policy=POLICY))

    events.append(lifecycle.close_with_incident(case, by="saule", at=T0 + timedelta(hours=1),
                                                policy=POLICY, incident=3))
    figures = case_figures(events, now=T0 + timedelta(hours=1))

    assert events[-1].data == {"incident": 3}
    assert figures.reaction == timedelta(minutes=5) and figures.sla_met is True


def test_a_closed_case_is_not_closed_again() -> None:
    case, _ = _created()
    lifecycle.dismiss(case, by="saule", at=T0, policy=POLICY, reason="spam")

    with pytest.raises(InvalidTransition):
        lifecycle.close_with_incident(case, by="saule", at=T0, policy=POLICY, incident=3)


def _brand_reply(text: str, minutes: float) -> Mention:
    return Mention(source="webhook", external_id="r1", platform="instagram", text=text,
                   published_at=T0 + timedelta(minutes=minutes), collected_at=T0,
                   thread_key="p1", author=Author(), from_brand=True)


def _answer(text: str, minutes: float) -> Event:
    return Event(case_id=1, kind=EventKind.AGENT_MESSAGE, actor="saule",
                 at=T0 + timedelta(minutes=minutes), data={"text": text})


@pytest.mark.parametrize(("thread", "events", "sent"), [
    ([], [], False),
    ([], [_answer(TEXT, 2)], True),  # recorded as the team's answer
    ([_brand_reply(TEXT + "\n", 3)], [], True),  # the platform's copy delivered back
    ([_brand_reply("Another text", 3)], [_answer("Another text", 3)], False),
    ([_brand_reply(TEXT, -30)], [_answer(TEXT, -30)], False),  # an older answer
    ([Mention(source="webhook", external_id="c", platform="instagram", text=TEXT,
              published_at=T0 + timedelta(minutes=2), collected_at=T0, thread_key="p1",
              author=Author())], [], False),  # the customer quoting it
])
def test_a_reply_cut_off_mid_call_went_out_only_if_the_record_shows_it(
    thread: list[Mention], events: list[Event], sent: bool
) -> None:
    found = went_out(TEXT, since=T0, thread=thread, events=events)

    assert (found is not None) is sent
