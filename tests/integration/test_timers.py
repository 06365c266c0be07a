"""SLA timers live in the database: each point fires once, whoever runs, whenever."""

from __future__ import annotations

import asyncio
from collections import Counter

from socialcare.bot import cases, timers
from socialcare.bot.model import EventKind
from socialcare.bot.pipeline import Pipeline
from socialcare.bot.team import Team
from socialcare.storage.database import SqlUnitOfWork
from tests.conftest import FakeClock, Storage
from tests.mentions import mention


async def _points(storage: Storage) -> Counter[tuple[int, str, int]]:
    async with storage.uow() as uow:
        events = await uow.events.for_cases(range(1, 100))
    return Counter(
        (e.case_id, e.data["clock"], e.data["index"])
        for case_events in events.values()
        for e in case_events
        if e.kind is EventKind.SLA_POINT
    )


async def test_points_due_while_down_fire_exactly_once_after_restart(
    storage: Storage, team: Team, clock: FakeClock
) -> None:
    await Pipeline(team, clock=clock).ingest(
        [mention(i, minutes_ago=0) for i in range(10)], uow=storage.uow()
    )
    assert await timers.fire_due(uow=storage.uow(), clock=clock, config=team.sla) == []

    # The process is down for 20 minutes: the 50 %, 80 % and breach points all pass.
    clock.advance(minutes=20)
    # Two schedulers come up at once, each with its own engine, as two processes.
    engines = [storage.new_engine(), storage.new_engine()]
    fired = await asyncio.gather(*(
        timers.fire_due(uow=SqlUnitOfWork(engine), clock=clock, config=team.sla)
        for engine in engines
    ))
    # ...and a restart later runs them again.
    again = await timers.fire_due(uow=SqlUnitOfWork(storage.new_engine()), clock=clock,
                               config=team.sla)

    points = await _points(storage)
    assert again == []
    assert sum(len(f) for f in fired) == len(points) == 10 * 4
    assert set(points.values()) == {1}
    one_case = sorted(
        (e for f in fired for e in f if e.case_id == 1), key=lambda e: e.data["index"]
    )
    assert [e.data["label"] for e in one_case] == [
        "warning 50%", "warning 80%", "breach", "breach +5 min"
    ]
    # Each says how late it is; only the latest is announced, the rest are superseded.
    assert [e.data["late_seconds"] for e in one_case] == [750, 480, 300, 0]
    assert [e.data["superseded"] for e in one_case] == [True, True, True, False]


async def test_an_answer_stops_the_response_clock(
    storage: Storage, team: Team, clock: FakeClock
) -> None:
    [created] = await Pipeline(team, clock=clock).ingest([mention(1)], uow=storage.uow())
    clock.advance(minutes=8)
    warned = await timers.fire_due(uow=storage.uow(), clock=clock, config=team.sla)
    await cases.mark_answered(cases.MarkAnswered(created.case_id, "aigerim"),
                              uow=storage.uow(), clock=clock, team=team)
    clock.advance(hours=3)

    assert [e.data["label"] for e in warned] == ["warning 50%"]
    assert await timers.fire_due(uow=storage.uow(), clock=clock, config=team.sla) == []
    async with storage.uow() as uow:
        assert (await uow.cases.get(created.case_id)).next_alert_at is None


async def test_breach_re_pings_every_interval_until_answered(
    storage: Storage, team: Team, clock: FakeClock
) -> None:
    await Pipeline(team, clock=clock).ingest([mention(1)], uow=storage.uow())
    labels = []
    for _ in range(30):  # 30 minutes, a tick each minute
        clock.advance(minutes=1)
        labels += [e.data["label"] for e in
                   await timers.fire_due(uow=storage.uow(), clock=clock, config=team.sla)]

    assert labels == [
        "warning 50%", "warning 80%", "breach", "breach +5 min", "breach +10 min",
        "breach +15 min",
    ]


async def test_a_case_changed_meanwhile_is_left_out_of_a_batch_save_and_the_rest_stored(
    storage: Storage, team: Team, clock: FakeClock
) -> None:
    await Pipeline(team, clock=clock).ingest(
        [mention(i, minutes_ago=0) for i in range(3)], uow=storage.uow()
    )
    async with storage.uow() as uow:
        read = [await uow.cases.get(case_id) for case_id in (1, 2, 3)]
    # Case 2 changes in another transaction after the batch read it.
    async with storage.uow() as uow:
        other = await uow.cases.get(2)
        other.claimed_by = "U0SOMEONE"
        await uow.cases.save(other)
        await uow.commit()
    for case in read:
        case.response_alerts = 7
    async with storage.uow() as uow:
        stored = await uow.cases.save_many(read)
        await uow.commit()

    assert [case.id for case in stored] == [1, 3]
    async with storage.uow() as uow:
        after = {case_id: await uow.cases.get(case_id) for case_id in (1, 2, 3)}
    assert [after[i].response_alerts for i in (1, 2, 3)] == [7, 0, 7]
    assert after[2].claimed_by == "U0SOMEONE"
    assert [after[i].version for i in (1, 3)] == [read[0].version, read[2].version]


async def test_a_sweep_fires_the_points_of_many_cases_in_one_go(
    storage: Storage, team: Team, clock: FakeClock
) -> None:
    await Pipeline(team, clock=clock).ingest(
        [mention(i, minutes_ago=0) for i in range(250)], uow=storage.uow()
    )
    async def cards() -> dict[int, int]:
        async with storage.uow() as uow:
            return {card.id or 0: card.change_seq for case_id in (1, 199, 250)
                    for card in await uow.cards.for_case(case_id)}

    before = await cards()
    clock.advance(minutes=8)  # past the 50 % warning of every case

    first = await timers.fire_due(uow=storage.uow(), clock=clock, config=team.sla)
    rest = await timers.fire_due(uow=storage.uow(), clock=clock, config=team.sla)

    assert len(first) == timers.BATCH and len(rest) == 250 - timers.BATCH
    assert {e.case_id for e in first + rest} == set(range(1, 251))
    # Their cards are out of step: due again.
    assert before and await cards() == {card: seq + 1 for card, seq in before.items()}
