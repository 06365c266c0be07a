"""The figures equal a brute-force recomputation, over random case histories."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from socialcare.bot import lifecycle
from socialcare.bot.errors import DomainError
from socialcare.bot.metrics import (
    FACT_EVENTS,
    CaseFigures,
    Standing,
    case_facts,
    case_figures,
    sla_by_tier,
)
from socialcare.bot.model import Author, Mention, Tier
from socialcare.bot.pipeline import created_event
from tests.conftest import T0, make_team
from tests.unit.cases import new_case
from tests.unit.test_lifecycle import ACTIONS, POLICY, _apply

TEAM = make_team()
history = st.lists(
    st.tuples(st.sampled_from(ACTIONS), st.integers(min_value=0, max_value=40)), max_size=25
)


def _run(lag: int, steps: list[tuple[str, int]], wait: int):  # type: ignore[no-untyped-def]
    """Apply a history to a case; return its events, a ledger of what was accepted, and now."""
    published = T0 - timedelta(minutes=lag)
    case = new_case(published=published, policy=POLICY)
    case.collected_at = T0
    mention = Mention(
        source="webhook", external_id="p1", platform="instagram", text="Kcell?",
        published_at=published, collected_at=T0, thread_key="p1", author=Author(),
    )
    events = [created_event(case, mention, TEAM)]
    ledger: list[tuple[str, object]] = []
    now = T0
    for action, gap in steps:
        now += timedelta(minutes=gap)
        try:
            events += _apply(case, action, now)
        except DomainError:
            continue
        ledger.append((action, now))
    return events, ledger, published, now + timedelta(minutes=wait)


def _brute_force(ledger, published, now) -> dict:  # type: ignore[no-untyped-def]
    due = published + timedelta(minutes=15)
    answers = [at for action, at in ledger if action in ("answer", "brand_answer")]
    standing = Standing.OPEN
    last_resolve = None
    last_dismiss = None
    with_team, since = timedelta(0), None
    for action, at in ledger:
        if action == "handoff":
            since = at
        elif action == "handback" and since is not None:
            with_team, since = with_team + (at - since), None
    if since is not None:
        with_team += now - since
    for i, (action, at) in enumerate(ledger):
        if action == "resolve":
            standing, last_resolve = Standing.RESOLVED, (i, at)
        elif action == "dismiss":
            standing, last_dismiss = Standing.DISMISSED, at
        elif action == "customer" and standing is Standing.RESOLVED:
            standing = Standing.OPEN
    expected = {
        "standing": standing,
        "reaction": min(answers) - published if answers else None,
        # Dismissed unanswered before its deadline: neither met nor missed.
        "sla_met": (min(answers) <= due) if answers else None if (
            now <= due or (standing is Standing.DISMISSED and last_dismiss <= due)) else False,
        "resolution": None,
        "messages_to_resolve": None,
        "second_line": with_team,
    }
    if standing is Standing.RESOLVED and last_resolve is not None:
        index, at = last_resolve
        expected["resolution"] = at - published
        expected["messages_to_resolve"] = 1 + sum(
            1 for action, _ in ledger[:index]
            if action in ("answer", "brand_answer", "customer")
        )
    return expected


@settings(max_examples=300, deadline=None)
@given(lag=st.integers(min_value=0, max_value=30), steps=history,
       wait=st.integers(min_value=0, max_value=60))
def test_case_figures_equal_a_brute_force_recomputation(
    lag: int, steps: list[tuple[str, int]], wait: int
) -> None:
    events, ledger, published, now = _run(lag, steps, wait)

    figures = case_figures(events, now=now)

    assert figures.collector_lag == timedelta(minutes=lag)
    assert {
        "standing": figures.standing,
        "reaction": figures.reaction,
        "sla_met": figures.sla_met,
        "resolution": figures.resolution,
        "messages_to_resolve": figures.messages_to_resolve,
        "second_line": figures.second_line,
    } == _brute_force(ledger, published, now)


def _figures(tier: Tier, sla_met: bool | None) -> CaseFigures:
    return CaseFigures(
        case_id=1, tier=tier, platform="x", brand="Kcell", published_at=T0,
        standing=Standing.OPEN, collector_lag=timedelta(0), reaction=None, resolution=None,
        messages_to_resolve=None, sla_met=sla_met,
    )


def test_sla_tally_counts_pending_cases_apart_from_met_and_missed() -> None:
    tally = sla_by_tier([
        _figures(Tier.MAIN, True), _figures(Tier.MAIN, True), _figures(Tier.MAIN, False),
        _figures(Tier.MAIN, None), _figures(Tier.EXTRA, None),
    ])

    assert (tally[Tier.MAIN].met, tally[Tier.MAIN].missed, tally[Tier.MAIN].pending) == (2, 1, 1)
    assert tally[Tier.MAIN].met_share == 2 / 3
    assert tally[Tier.EXTRA].met_share is None  # nothing decided: no share, not zero


def _answered_case(*answers: tuple[str, int]) -> list:  # type: ignore[type-arg]
    """A case published at T0 (first response due at T0 + 15 min), answered by each
    (who, minutes after T0) in the order the answers reached us."""
    case = new_case(published=T0, policy=POLICY)
    mention = Mention(
        source="webhook", external_id="p1", platform="instagram", text="Kcell?",
        published_at=T0, collected_at=T0, thread_key="p1", author=Author(),
    )
    events = [created_event(case, mention, TEAM)]
    for who, minutes in answers:
        events.append(lifecycle.answer(case, by=who, at=T0 + timedelta(minutes=minutes),
                                       policy=POLICY, claims=not who.startswith("brand:")))
    return [case, *events]


def test_the_first_answer_is_the_earliest_by_its_time_not_the_first_delivered() -> None:
    # Marked answered at 10:16; the brand's post of 10:14 is delivered afterwards.
    case, *events = _answered_case(("aigerim", 16), ("brand:@kcell_kz", 14))

    facts = case_facts(events)
    figures = case_figures(events, now=T0 + timedelta(hours=1))

    assert figures.reaction == timedelta(minutes=14)
    assert figures.sla_met is True
    assert facts.first_answer_by == "brand:@kcell_kz"
    assert case.first_response_at == T0 + timedelta(minutes=14)


def _dismissed(minutes: int) -> list:  # type: ignore[type-arg]
    case = new_case(published=T0, policy=POLICY)
    mention = Mention(
        source="webhook", external_id="p1", platform="instagram", text="Kcell?",
        published_at=T0, collected_at=T0, thread_key="p1", author=Author(),
    )
    return [created_event(case, mention, TEAM), lifecycle.dismiss(
        case, by="aigerim", at=T0 + timedelta(minutes=minutes), policy=POLICY, reason="spam")]


def test_a_case_dismissed_before_its_deadline_is_neither_met_missed_nor_pending() -> None:
    later = T0 + timedelta(days=1)
    before = case_figures(_dismissed(5), now=later)
    after = case_figures(_dismissed(30), now=later)

    assert (before.sla_met, before.sla_void) == (None, True)
    assert (after.sla_met, after.sla_void) == (False, False)  # the breach happened
    tally = sla_by_tier([before, after])[before.tier]
    assert (tally.met, tally.missed, tally.pending) == (0, 1, 0)
@settings(max_examples=100, deadline=None)
@given(lag=st.integers(min_value=0, max_value=60), steps=history)
def test_only_the_fact_events_change_a_cases_facts(lag: int,
                                                   steps: list[tuple[str, int]]) -> None:
    """Storage recomputes a case's facts only when it gets one of `FACT_EVENTS`: every
    other event, wherever it falls in a history, leaves the facts as they were."""
    events, _, _, _ = _run(lag, steps, 0)
    kept = [e for e in events if e.kind in FACT_EVENTS]
    assert case_facts(kept) == case_facts(events)
    for n in range(1, len(events) + 1):
        if events[n - 1].kind not in FACT_EVENTS:
            assert case_facts(events[:n]) == case_facts(events[:n - 1])
