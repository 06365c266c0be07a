"""The case state machine: checked transitions, and no way into an invalid state."""

from __future__ import annotations

import copy
from datetime import timedelta

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from socialcare.bot import lifecycle, sla
from socialcare.bot.errors import AlreadyClaimed, DomainError, InvalidTransition
from socialcare.bot.model import OPEN_STATES, EventKind, State
from tests.conftest import T0
from tests.unit.cases import POLICY, new_case


def test_claim_answer_resolve_is_the_happy_path() -> None:
    case = new_case()

    kinds = [
        lifecycle.claim(case, by="aigerim", at=T0).kind,
        lifecycle.answer(case, by="aigerim", at=T0 + timedelta(minutes=3), policy=POLICY).kind,
        lifecycle.resolve(case, by="aigerim", at=T0 + timedelta(minutes=9), policy=POLICY).kind,
    ]

    assert kinds == [EventKind.CLAIMED, EventKind.AGENT_MESSAGE, EventKind.RESOLVED]
    assert case.state is State.RESOLVED
    assert case.first_response_at == T0 + timedelta(minutes=3)
    assert case.next_alert_at is None


def test_a_claimed_case_cannot_be_claimed_again_and_says_by_whom() -> None:
    case = new_case()
    lifecycle.claim(case, by="aigerim", at=T0)

    with pytest.raises(AlreadyClaimed, match="already claimed by aigerim"):
        lifecycle.claim(case, by="daniyar", at=T0)


@pytest.mark.parametrize(
    ("setup", "action", "reason"),
    [
        ([], "resolve", "Case #1 is new: it cannot be resolved."),
        ([], "release", "Case #1 is new: it cannot be released."),
        (["answer", "resolve"], "dismiss", "Case #1 is resolved: it cannot be dismissed."),
        (["dismiss"], "claim", "Case #1 is dismissed: it cannot be claimed."),
        (["dismiss"], "answer", "Case #1 is dismissed: it cannot be answered."),
    ],
)
def test_an_illegal_transition_names_the_state_and_changes_nothing(
    setup: list[str], action: str, reason: str
) -> None:
    case = new_case()
    for step in setup:
        _apply(case, step)
    before = copy.deepcopy(case)

    with pytest.raises(InvalidTransition) as refused:
        _apply(case, action)

    assert str(refused.value) == reason
    assert case == before


def test_a_customer_message_after_resolution_reopens_with_a_new_deadline() -> None:
    case = new_case()
    lifecycle.answer(case, by="aigerim", at=T0, policy=POLICY)
    lifecycle.resolve(case, by="aigerim", at=T0, policy=POLICY)
    later = T0 + timedelta(days=1)

    events = lifecycle.add_customer_message(case, by="customer:x", at=later, policy=POLICY)

    assert [e.kind for e in events] == [EventKind.CUSTOMER_MESSAGE, EventKind.REOPENED]
    assert case.state is State.REOPENED
    assert case.response_due_at == later + POLICY.next_response
    assert case.response_cycle == 2


def _apply(case, action: str, at=T0, by: str = "aigerim"):  # type: ignore[no-untyped-def]
    if action == "claim":
        return [lifecycle.claim(case, by=by, at=at)]
    if action == "release":
        return [lifecycle.release(case, by=by, at=at, policy=POLICY)]
    if action == "expire":
        return [lifecycle.release(case, by="system", at=at, policy=POLICY, expired=True)]
    if action == "answer":
        return [lifecycle.answer(case, by=by, at=at, policy=POLICY)]
    if action == "brand_answer":
        return [lifecycle.answer(case, by="brand:@k", at=at, policy=POLICY, claims=False)]
    if action == "customer":
        return lifecycle.add_customer_message(case, by="customer:x", at=at, policy=POLICY)
    if action == "resolve":
        return [lifecycle.resolve(case, by=by, at=at, policy=POLICY)]
    if action == "dismiss":
        return [lifecycle.dismiss(case, by=by, at=at, policy=POLICY, reason="spam")]
    if action == "handoff":
        return [lifecycle.hand_off(case, by=by, at=at, team="billing", policy=POLICY)]
    if action == "handback":
        return [lifecycle.hand_back(case, by="billing-agent", at=at, policy=POLICY)]
    raise AssertionError(action)


ACTIONS = ["claim", "release", "expire", "answer", "brand_answer", "customer", "resolve",
           "dismiss", "handoff", "handback"]


class CaseMachine(RuleBasedStateMachine):
    """Random commands, random waits and SLA sweeps on one case."""

    def __init__(self) -> None:
        super().__init__()
        self.case = new_case()
        self.now = T0
        self.answered = False

    @rule(action=st.sampled_from(ACTIONS), by=st.sampled_from(["aigerim", "daniyar"]))
    def command(self, action: str, by: str) -> None:
        before = copy.deepcopy(self.case)
        try:
            events = _apply(self.case, action, self.now, by)
        except DomainError:
            assert self.case == before, "a refused command must change nothing"
            return
        assert events and all(e.case_id == 1 and e.at == self.now for e in events)
        if action in ("answer", "brand_answer"):
            self.answered = True

    @rule(minutes=st.integers(min_value=0, max_value=90))
    def wait_and_sweep(self, minutes: int) -> None:
        self.now += timedelta(minutes=minutes)
        fired = sla.fire_due_points(self.case, POLICY, self.now)
        assert all(e.kind is EventKind.SLA_POINT for e in fired)
        assert self.case.next_alert_at is None or self.case.next_alert_at > self.now

    @invariant()
    def state_is_consistent(self) -> None:
        case = self.case
        assert case.state in State
        if case.state is State.CLAIMED:
            assert case.claimed_by is not None
        if case.state in (State.NEW, State.REOPENED):
            assert case.claimed_by is None
        assert (case.first_response_at is not None) == self.answered
        assert (case.resolved_at is not None) == (case.state is State.RESOLVED)
        if case.state is State.ANSWERED:
            assert case.response_due_at is None
        if case.state in (State.NEW, State.REOPENED):
            assert case.response_due_at is not None, "an unanswered case has a deadline"
        if case.state not in OPEN_STATES:
            assert case.next_alert_at is None
        if case.handoff_team is not None:
            assert case.handed_off_at is not None and case.handed_off_by is not None
            assert sla.claim_expires_at(case, POLICY) is None
        before = case.next_alert_at
        sla.schedule(case, POLICY)
        assert case.next_alert_at == before, "the stored next alert matches the clocks"


TestCaseMachine = CaseMachine.TestCase
TestCaseMachine.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
