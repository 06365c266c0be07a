"""Card content: the SLA line's steps, the buttons each state offers, the layouts' limits."""

from __future__ import annotations

from datetime import timedelta

import pytest

from socialcare.adapters.messengers.slack_card import card_blocks
from socialcare.adapters.messengers.telegram_card import card_html, card_keyboard
from socialcare.bot import lifecycle
from socialcare.bot.actions import ActionKind, BadAction, CaseAction
from socialcare.bot.cards import SlaLevel, next_step, render_card, warning_from
from socialcare.bot.model import Author, Mention
from socialcare.settings import load_catalog
from tests.conftest import T0, make_team
from tests.unit.cases import POLICY, new_case

TEAM = make_team()
EN = load_catalog("en")


def _view(case, at_minutes: float, *, text: str = "Kcell?", can_publish: bool = True):  # type: ignore[no-untyped-def]
    first = Mention(source="webhook", external_id="p1", platform="instagram", text=text,
                    published_at=T0, collected_at=T0, thread_key="p1",
                    author=Author(name="Aigerim", handle="@a"), url="https://example.org/p1")
    return render_card(case, first, [], team=TEAM, catalog=EN,
                       now=T0 + timedelta(minutes=at_minutes), can_publish=can_publish)


@pytest.mark.parametrize(
    ("minutes", "text", "level"),
    [
        (0, "⏱ 15+ min left", SlaLevel.CALM),
        (0.5, "⏱ 10+ min left", SlaLevel.CALM),
        (9.9, "⏱ 5+ min left", SlaLevel.CALM),
        (12.1, "⚠ 2 min left", SlaLevel.WARNING),  # past the 80 % warning point
        (14.5, "⚠ under a minute left", SlaLevel.WARNING),
        (15.2, "🔴 overdue", SlaLevel.OVERDUE),
        (18.7, "🔴 overdue 3 min", SlaLevel.OVERDUE),
        (37, "🔴 overdue 20 min+", SlaLevel.OVERDUE),
        (15 + 125, "🔴 overdue 2 h 0 min+", SlaLevel.OVERDUE),
    ],
)
def test_the_sla_line_shows_the_time_left_in_steps(
    minutes: float, text: str, level: SlaLevel
) -> None:
    view = _view(new_case(), minutes)

    assert (view.sla.text, view.sla.level) == (text, level)
    assert view.sla.deadline_text == "15:15"  # 10:15 UTC in Almaty


def test_the_line_changes_only_at_its_steps() -> None:
    case = new_case()
    now, changes = T0, []
    while now < T0 + timedelta(minutes=40):
        step = next_step(case, POLICY, now)
        assert step is not None and step > now
        # A step is due one second after the line's floor moves, so that the re-render
        # sees the new value; until the floor moves the line stays as it is.
        settled = now + timedelta(seconds=1)
        if step - timedelta(seconds=2) > settled:
            at = _view(case, (settled - T0) / timedelta(minutes=1)).sla.text
            just_before = _view(case, (step - T0) / timedelta(minutes=1) - 2 / 60).sla.text
            assert just_before == at, "nothing changes between two steps"
        changes.append(step)
        now = step

    # About one edit per 5 minutes, then per minute near the deadline — not per second.
    assert 10 <= len(changes) <= 20


def test_an_answered_card_settles_and_stops_stepping() -> None:
    case = new_case()
    lifecycle.answer(case, by="aigerim", at=T0 + timedelta(minutes=4), policy=POLICY)

    view = _view(case, 5)

    assert view.sla.text == "✅ answered in 4 min"
    assert next_step(case, POLICY, T0 + timedelta(minutes=5)) is None


def _kinds(view) -> list[ActionKind]:  # type: ignore[no-untyped-def]
    return [button.action.kind for button in view.buttons]


def test_each_state_offers_only_the_buttons_that_make_sense() -> None:
    case = new_case()
    k = ActionKind
    assert _kinds(_view(case, 1)) == [k.CLAIM, k.REPLY, k.ANSWERED, k.ESCALATE, k.DISMISS]
    assert _kinds(_view(case, 1, can_publish=False)) == [
        k.CLAIM, k.ANSWERED, k.ESCALATE, k.DISMISS]
    lifecycle.claim(case, by="aigerim", at=T0)
    assert _kinds(_view(case, 1)) == [k.REPLY, k.ANSWERED, k.RELEASE, k.ESCALATE, k.DISMISS]
    lifecycle.answer(case, by="aigerim", at=T0, policy=POLICY)
    assert _kinds(_view(case, 1)) == [k.REPLY, k.ANSWERED, k.RESOLVE, k.ESCALATE]
    lifecycle.resolve(case, by="aigerim", at=T0, policy=POLICY)
    # Praise or a lesson can still go to a director after the case is closed.
    assert _kinds(_view(case, 1)) == [k.ESCALATE]
    assert _view(case, 1).state_text == "Resolved"
    lifecycle.add_customer_message(case, by="customer:x", at=T0, policy=POLICY)
    lifecycle.dismiss(case, by="aigerim", at=T0, policy=POLICY, reason="spam")
    assert _kinds(_view(case, 1)) == []


def test_an_action_packs_into_64_bytes_and_back_and_refuses_strangers() -> None:
    action = CaseAction(ActionKind.ANSWERED, 999_999_999_999_999_999)

    assert len(action.pack().encode()) <= 64
    assert CaseAction.unpack(action.pack()) == action
    for payload in ("sc1:claim:0", "sc1:explode:1", "sc2:claim:1", "claim:1", "sc1:claim:1x"):
        with pytest.raises(BadAction):
            CaseAction.unpack(payload)


def test_layouts_stay_inside_the_messengers_limits_with_a_huge_text() -> None:
    view = _view(new_case(), 1, text="Kcell " + "слово " * 5000)

    blocks = card_blocks(view)
    html = card_html(view)
    keyboard = card_keyboard(view)

    assert len(blocks) <= 50
    quote = blocks[1]["elements"][1]["elements"][0]["text"]
    assert len(quote) <= 3000
    assert "… cut here: the rest is in the original" in str(blocks)
    assert len(html) < 4096
    assert keyboard is not None
    assert all(len(b.callback_data.encode()) <= 64 for row in keyboard.inline_keyboard
               for b in row)


def test_warning_from_is_when_the_cards_sla_line_turns_to_warning() -> None:
    case = new_case()
    turns = warning_from(case, POLICY)

    assert turns is not None
    for quarter in range(1, 60):
        now = T0 + timedelta(minutes=quarter / 4)
        if now == turns:
            continue
        level = _view(case, quarter / 4).sla.level
        assert (level is SlaLevel.WARNING) == (now > turns), now
    lifecycle.answer(case, by="aigerim", at=T0 + timedelta(minutes=3), policy=POLICY)
    assert warning_from(case, POLICY) is None
