"""The demo's simulated agents decide their next step from the case as it stands."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from socialcare.bot.model import Case, Priority, State, Tier
from socialcare.demo.agents import Plan, Step
from socialcare.demo.sample import Care, Fate

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def _case(state: State = State.NEW, claimed_by: str | None = None) -> Case:
    return Case(brand="Kcell", source="instagram", platform="instagram", tier=Tier.MAIN,
                priority=Priority.HIGH, thread_key="ig-1", published_at=T0, collected_at=T0,
                state=state, claimed_by=claimed_by, id=1)


@pytest.mark.parametrize(("state", "step"), [
    (State.NEW, Step.CLAIM), (State.CLAIMED, Step.ANSWER), (State.ANSWERED, Step.RESOLVE),
    (State.REOPENED, Step.CLAIM),
])
def test_a_case_to_resolve_is_claimed_answered_and_resolved(state: State, step: Step) -> None:
    plan = Plan(Care(do=Fate.RESOLVE), agent="aigerim")

    holder = None if state in (State.NEW, State.REOPENED) else "aigerim"
    assert plan.next_step(_case(state, holder)) is step


def test_the_shift_lets_go_of_a_case_someone_else_took() -> None:
    plan = Plan(Care(do=Fate.RESOLVE), agent="aigerim")

    assert plan.next_step(_case(State.CLAIMED, "saule")) is None
    assert plan.done
    assert plan.next_step(_case(State.NEW)) is None  # not even once it is free again


def test_a_follow_up_that_came_before_the_answer_gets_its_own_answer() -> None:
    plan = Plan(Care(do=Fate.ANSWER), agent="aigerim")
    plan.replies.append("Yes, 2 GB are on their way.")

    assert plan.next_step(_case(State.ANSWERED, "aigerim")) is Step.ANSWER
    plan.replies.clear()
    assert plan.next_step(_case(State.ANSWERED, "aigerim")) is None  # waits for the customer


def test_a_held_case_is_never_answered_nor_claimed_again_after_its_claim_expired() -> None:
    plan = Plan(Care(do=Fate.HOLD), agent="daniyar")

    assert plan.next_step(_case(State.NEW)) is Step.CLAIM
    plan.held = True
    assert plan.next_step(_case(State.CLAIMED, "daniyar")) is None
    assert plan.next_step(_case(State.NEW)) is None


@pytest.mark.parametrize("state", list(State))
def test_a_case_left_to_breach_is_never_touched(state: State) -> None:
    assert Plan(Care(do=Fate.LEAVE), agent="madina").next_step(_case(state)) is None


def test_spam_is_dismissed() -> None:
    assert Plan(Care(do=Fate.DISMISS), agent="madina").next_step(_case()) is Step.DISMISS
