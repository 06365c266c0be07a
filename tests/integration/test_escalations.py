"""Escalations on real storage: who may do what, reminders, hand-overs, notices."""

from __future__ import annotations

import pytest

from socialcare.bot import escalations as esc
from socialcare.bot import timers
from socialcare.bot.errors import CaseNotFound, DomainError, NotAllowed
from socialcare.bot.escalations import Category, EscalationState
from socialcare.bot.model import EventKind
from socialcare.bot.pipeline import Pipeline
from socialcare.bot.sla import SlaConfig, SlaPolicy
from socialcare.bot.team import EscalationConfig, Person, Role, Team
from tests.conftest import FakeClock, Storage, make_team
from tests.mentions import mention

ASKAR = Person(id="askar", name="Askar", role=Role.DIRECTOR, telegram=900, areas=("network",))


def _team() -> Team:
    base = make_team()
    return make_team(
        people=(*base.people, ASKAR),
        escalation=EscalationConfig(
            critical_repeat_minutes=10, critical_handover_minutes=30,
            chains={"network": ("nurlan", "askar"), "default": ("nurlan",)},
        ),
        sla=SlaConfig(main=SlaPolicy(first_response_minutes=15)),
    )


async def _cases(storage: Storage, team: Team, clock: FakeClock, n: int = 2) -> list[int]:
    results = await Pipeline(team, clock=clock).ingest(
        [mention(i, f"Kcell, no network #{i}") for i in range(n)], uow=storage.uow())
    return [r.case_id for r in results]


def _escalate(ids: list[int], *, category: Category = Category.CRITICAL,
              director: str = "nurlan", actor: str = "aigerim") -> esc.Escalate:
    return esc.Escalate(
        case_ids=tuple(ids), actor=actor, category=category,
        problem="No 4G in Almaty since morning", options=("Roll back", "Call vendor"),
        director=director,
    )


async def test_an_escalation_links_its_cases_and_gets_a_card_per_messenger_of_the_director(
    storage: Storage, clock: FakeClock
) -> None:
    team = _team()
    ids = await _cases(storage, team, clock)

    escalation = await esc.escalate(_escalate(ids), uow=storage.uow(), clock=clock, team=team)

    async with storage.uow() as uow:
        stored = await uow.escalations.get(escalation.id)
        cards = await uow.cards.for_escalation(escalation.id)
        case_events = await uow.events.for_cases(ids)
        latest = await uow.escalations.latest_for_cases(ids)
    assert stored.case_ids == tuple(ids)
    assert stored.area == "network" and stored.state is EscalationState.OPEN
    assert stored.next_ping_at == clock.now() + team.escalation.repeat
    assert [(c.messenger, c.channel) for c in cards] == [("slack", "U0NURLAN")]
    assert all(events[-1].kind is EventKind.ESCALATED for events in case_events.values())
    assert set(latest) == set(ids)


@pytest.mark.parametrize(
    ("change", "error", "key"),
    [
        ({"case_ids": (999,)}, CaseNotFound, "error.no_case"),
        ({"director": "aigerim"}, DomainError, "error.unknown_director"),
        ({"director": "ghost"}, DomainError, "error.unknown_director"),
        ({"problem": "  "}, DomainError, "error.empty_problem"),
        ({"actor": "nurlan"}, NotAllowed, "error.escalators_only"),
        ({"actor": "stranger"}, NotAllowed, "error.not_in_roster"),
    ],
)
async def test_a_bad_escalation_is_refused_with_its_reason_and_changes_nothing(
    storage: Storage, clock: FakeClock, change: dict, error: type, key: str  # type: ignore[type-arg]
) -> None:
    team = _team()
    ids = await _cases(storage, team, clock)
    command = _escalate(ids)
    values = {**command.__dict__, **change}

    with pytest.raises(error) as refused:
        await esc.escalate(esc.Escalate(**values), uow=storage.uow(), clock=clock, team=team)

    assert refused.value.key == key
    async with storage.uow() as uow:
        assert await uow.escalations.find() == []


async def test_only_the_responsible_director_or_an_admin_decides_and_the_raiser_is_told(
    storage: Storage, clock: FakeClock
) -> None:
    team = make_team(people=(*_team().people,
                             Person(id="root", name="Root", role=Role.ADMIN, slack="U0ROOT")),
                     escalation=_team().escalation)
    ids = await _cases(storage, team, clock)
    escalation = await esc.escalate(_escalate(ids), uow=storage.uow(), clock=clock, team=team)
    deps = {"uow": storage.uow(), "clock": clock, "team": team}

    for outsider in ("askar", "saule", "aigerim"):
        with pytest.raises(NotAllowed) as refused:
            await esc.decide(esc.Decide(escalation.id, outsider, "Roll back"), **deps)
        assert refused.value.key == "error.director_only"
    await esc.acknowledge(esc.Acknowledge(escalation.id, "nurlan"), **deps)
    decided = await esc.decide(esc.Decide(escalation.id, "root", "Roll back now"), **deps)
    with pytest.raises(DomainError, match="cannot be acknowledged"):
        await esc.acknowledge(esc.Acknowledge(escalation.id, "nurlan"), **deps)
    await esc.close(esc.Close(escalation.id, "nurlan"), **deps)

    async with storage.uow() as uow:
        stored = await uow.escalations.get(escalation.id)
        kinds = [e.kind for e in (await uow.escalations.events_for([escalation.id]))[
            escalation.id]]
        notices = await uow.notices.pending(messengers=["slack", "telegram"], limit=10)
    assert decided.escalation.decision == "Roll back now"
    assert stored.state is EscalationState.CLOSED and stored.next_ping_at is None
    assert kinds == ["raised", "acknowledged", "decided", "closed"]
    # Aigerim is in Slack and Telegram: told twice over, once per messenger.
    assert sorted((n.key, n.messenger) for n in notices) == [
        ("notice.acknowledged", "slack"), ("notice.acknowledged", "telegram"),
        ("notice.decided", "slack"), ("notice.decided", "telegram"),
    ]


async def test_a_critical_escalation_is_re_sent_then_handed_down_the_chain_until_acknowledged(
    storage: Storage, clock: FakeClock
) -> None:
    team = _team()
    ids = await _cases(storage, team, clock)
    escalation = await esc.escalate(_escalate(ids), uow=storage.uow(), clock=clock, team=team)
    fired = []
    for _ in range(7):  # 35 minutes in 5-minute sweeps
        clock.advance(minutes=5)
        fired += [(e.kind, e.data) for e in await timers.fire_escalations(
            uow=storage.uow(), clock=clock, team=team)]
    await esc.acknowledge(esc.Acknowledge(escalation.id, "askar"), uow=storage.uow(),
                          clock=clock, team=team)
    clock.advance(hours=2)
    later = await timers.fire_escalations(uow=storage.uow(), clock=clock, team=team)

    assert fired == [
        ("reminded", {"ping": 1}),  # 10 min
        ("reminded", {"ping": 2}),  # 20 min
        ("handed_over", {"from": "nurlan", "to": "askar"}),  # 30 min
    ]
    assert later == []
    async with storage.uow() as uow:
        cards = await uow.cards.for_escalation(escalation.id)
    assert {(c.messenger, c.channel) for c in cards} == {("slack", "U0NURLAN"),
                                                         ("telegram", "900")}


async def test_food_for_thought_and_praise_are_sent_once(
    storage: Storage, clock: FakeClock
) -> None:
    team = _team()
    ids = await _cases(storage, team, clock)
    for category in (Category.INSIGHT, Category.POSITIVE):
        await esc.escalate(_escalate(ids, category=category), uow=storage.uow(), clock=clock,
                           team=team)

    clock.advance(hours=5)

    assert await timers.fire_escalations(uow=storage.uow(), clock=clock, team=team) == []
