"""Claims are decided by the database: exactly one of many concurrent claims wins."""

from __future__ import annotations

import asyncio

import pytest

from socialcare.bot import cases
from socialcare.bot.errors import AlreadyClaimed, InvalidTransition, NotAllowed
from socialcare.bot.model import EventKind, State
from socialcare.bot.pipeline import Pipeline
from socialcare.bot.team import Person, Role, Team
from socialcare.storage.database import SqlUnitOfWork
from tests.conftest import FakeClock, Storage, make_team
from tests.mentions import mention

AGENTS = tuple(
    Person(id=f"agent{i}", name=f"Agent {i}", role=Role.AGENT, telegram=1000 + i)
    for i in range(50)
)


async def _one_case(storage: Storage, team: Team, clock: FakeClock) -> int:
    [result] = await Pipeline(team, clock=clock).ingest([mention(1)], uow=storage.uow())
    assert result.case_id is not None
    return result.case_id


async def test_fifty_concurrent_claims_have_exactly_one_winner(
    storage: Storage, clock: FakeClock
) -> None:
    team = make_team(people=AGENTS)
    case_id = await _one_case(storage, team, clock)
    # Half the claims go through a second engine, as from a second process.
    other = storage.new_engine()

    async def attempt(i: int) -> str:
        uow = SqlUnitOfWork(other) if i % 2 else storage.uow()
        try:
            await cases.claim(cases.Claim(case_id, f"agent{i}"), uow=uow, clock=clock, team=team)
        except AlreadyClaimed as lost:
            return f"lost to {lost.by}"
        return "won"

    outcomes = await asyncio.gather(*(attempt(i) for i in range(50)))

    assert outcomes.count("won") == 1
    async with storage.uow() as uow:
        case = await uow.cases.get(case_id)
        events = await uow.events.for_case(case_id)
    winner = case.claimed_by
    assert case.state is State.CLAIMED
    assert outcomes[int(winner.removeprefix("agent"))] == "won"
    assert set(outcomes) - {"won"} == {f"lost to {winner}"}
    assert [e.kind for e in events].count(EventKind.CLAIMED) == 1


async def test_second_claim_loses_and_is_told_who_won(
    storage: Storage, team: Team, clock: FakeClock
) -> None:
    case_id = await _one_case(storage, team, clock)
    await cases.claim(cases.Claim(case_id, "aigerim"), uow=storage.uow(), clock=clock, team=team)

    with pytest.raises(AlreadyClaimed) as lost:
        await cases.claim(cases.Claim(case_id, "daniyar"), uow=storage.uow(), clock=clock,
                          team=team)

    assert lost.value.by == "aigerim"
    assert "already claimed by aigerim" in str(lost.value)


async def test_only_the_holder_or_a_lead_releases(
    storage: Storage, team: Team, clock: FakeClock
) -> None:
    case_id = await _one_case(storage, team, clock)
    await cases.claim(cases.Claim(case_id, "aigerim"), uow=storage.uow(), clock=clock, team=team)

    with pytest.raises(NotAllowed, match="only they or a shift lead"):
        await cases.release(cases.Release(case_id, "daniyar"), uow=storage.uow(), clock=clock,
                            team=team)
    released = await cases.release(cases.Release(case_id, "saule"), uow=storage.uow(),
                                   clock=clock, team=team)

    assert released.case.state is State.NEW
    assert released.events[0].data == {"holder": "aigerim"}


async def test_people_outside_the_roster_and_directors_cannot_claim(
    storage: Storage, team: Team, clock: FakeClock
) -> None:
    case_id = await _one_case(storage, team, clock)

    with pytest.raises(NotAllowed, match="not in this team's roster"):
        await cases.claim(cases.Claim(case_id, "stranger"), uow=storage.uow(), clock=clock,
                          team=team)
    with pytest.raises(NotAllowed, match="director"):
        await cases.claim(cases.Claim(case_id, "nurlan"), uow=storage.uow(), clock=clock,
                          team=team)
    async with storage.uow() as uow:
        assert (await uow.cases.get(case_id)).state is State.NEW


async def test_full_life_of_a_case_is_recorded_as_events(
    storage: Storage, team: Team, clock: FakeClock
) -> None:
    case_id = await _one_case(storage, team, clock)
    deps = {"uow": storage.uow(), "clock": clock, "team": team}
    await cases.claim(cases.Claim(case_id, "aigerim"), **deps)
    clock.advance(minutes=4)
    answered = await cases.mark_answered(
        cases.MarkAnswered(case_id, "aigerim", url="https://example.org/answer/1"), **deps
    )
    with pytest.raises(InvalidTransition, match="cannot be dismissed"):
        await cases.dismiss(cases.Dismiss(case_id, "aigerim"), **deps)
    clock.advance(minutes=10)
    resolved = await cases.resolve(cases.Resolve(case_id, "aigerim"), **deps)

    assert answered.case.first_response_at == clock.current.replace(minute=4)
    assert resolved.case.state is State.RESOLVED
    assert resolved.case.next_alert_at is None
    async with storage.uow() as uow:
        events = await uow.events.for_case(case_id)
    assert [(e.kind, e.actor) for e in events] == [
        (EventKind.CREATED, "source:webhook"),
        (EventKind.CLAIMED, "aigerim"),
        (EventKind.AGENT_MESSAGE, "aigerim"),
        (EventKind.RESOLVED, "aigerim"),
    ]
    assert events[2].data == {"first": True, "url": "https://example.org/answer/1"}
