"""Hand-offs to the second line on real storage."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import pytest

from socialcare.bot import cases, handoffs, timers
from socialcare.bot.errors import DomainError, NotAllowed
from socialcare.bot.metrics import case_figures
from socialcare.bot.model import EventKind, State
from socialcare.bot.pipeline import Pipeline
from socialcare.bot.ports import DeliveryFailed
from socialcare.bot.sla import SlaConfig, SlaPolicy
from socialcare.bot.team import Channel, Person, Role, SecondLineTeam, Team
from tests.conftest import FakeClock, Storage, make_team
from tests.mentions import mention

BILLING = SecondLineTeam(name="billing", title="Billing",
                         channels=(Channel(messenger="slack", id="C0BILLING"),),
                         webhook_url="https://tickets.example.org/hook")
NETWORK = SecondLineTeam(name="network", title="Network",
                         channels=(Channel(messenger="telegram", id="-100777"),))


def _team() -> Team:
    base = make_team()
    return make_team(
        second_line=(BILLING, NETWORK),
        people=(*base.people,
                Person(id="gulnara", name="Gulnara", role=Role.SECOND_LINE, team="billing",
                       slack="U0GULNARA"),
                Person(id="timur", name="Timur", role=Role.SECOND_LINE, team="network",
                       telegram=777)),
        sla=SlaConfig(main=SlaPolicy(first_response_minutes=15, claim_expiry_minutes=10)),
    )


async def _claimed_case(storage: Storage, team: Team, clock: FakeClock) -> int:
    [result] = await Pipeline(team, clock=clock).ingest([mention(1)], uow=storage.uow())
    await cases.claim(cases.Claim(result.case_id, "aigerim"), uow=storage.uow(), clock=clock,
                      team=team)
    return result.case_id


async def test_a_hand_off_reaches_the_teams_channel_and_ticket_system_and_comes_back(
    storage: Storage, clock: FakeClock
) -> None:
    team = _team()
    case_id = await _claimed_case(storage, team, clock)
    deps = {"uow": storage.uow(), "clock": clock, "team": team}

    sent = await handoffs.hand_off(handoffs.HandOff(case_id, "aigerim", "Billing", "refund?"),
                                   **deps)
    with pytest.raises(DomainError, match="already with billing"):
        await handoffs.hand_off(handoffs.HandOff(case_id, "aigerim", "network"), **deps)
    with pytest.raises(NotAllowed, match="Another team"):
        await handoffs.hand_back(handoffs.HandBack(case_id, "timur"), **deps)
    clock.advance(minutes=25)  # longer than a claim may stand: it does not lapse meanwhile
    lapsed = await timers.fire_due(uow=storage.uow(), clock=clock, config=team.sla)
    back = await handoffs.hand_back(handoffs.HandBack(case_id, "team:billing", "refunded"),
                                    **deps)

    async with storage.uow() as uow:
        cards = await uow.cards.for_case(case_id)
        events = await uow.events.for_case(case_id)
        notices = await uow.notices.pending(messengers=["slack", "telegram"], limit=10)
        deliveries = await uow.webhooks.due(clock.now(), limit=10)
    assert sent.case.handoff_team == "billing"
    assert EventKind.CLAIM_EXPIRED not in [e.kind for e in lapsed]
    assert [e.data["label"] for e in lapsed][-1].startswith("breach")  # the SLA kept counting
    assert back.case.handoff_team is None
    assert back.case.claimed_by == "aigerim" and back.case.state is State.CLAIMED
    assert ("slack", "C0BILLING") in [(c.messenger, c.channel) for c in cards]
    assert [e.kind for e in events if e.kind in (EventKind.HANDED_OFF,
                                                  EventKind.HANDED_BACK)] == [
        EventKind.HANDED_OFF, EventKind.HANDED_BACK]
    assert events[-1].data == {"team": "billing", "to": "aigerim", "seconds": 1500,
                               "note": "refunded"}
    assert {(n.key, n.params["team"]) for n in notices} == {("notice.handed_back", "Billing")}
    [ticket] = deliveries
    assert ticket.url == BILLING.webhook_url
    assert ticket.body["priority"] == "social_media" and ticket.body["note"] == "refund?"
    assert case_figures(events, now=clock.now()).second_line == timedelta(minutes=25)


async def test_unknown_teams_and_people_outside_the_team_are_refused(
    storage: Storage, clock: FakeClock
) -> None:
    team = _team()
    case_id = await _claimed_case(storage, team, clock)
    deps = {"uow": storage.uow(), "clock": clock, "team": team}

    with pytest.raises(DomainError) as unknown:
        await handoffs.hand_off(handoffs.HandOff(case_id, "aigerim", "legal"), **deps)
    with pytest.raises(DomainError, match="not with the second line"):
        await handoffs.hand_back(handoffs.HandBack(case_id, "gulnara"), **deps)
    with pytest.raises(NotAllowed):
        await handoffs.hand_off(handoffs.HandOff(case_id, "nurlan", "billing"), **deps)

    assert unknown.value.params["teams"] == "billing, network"


class Flaky:
    """A ticket system that refuses the first `failures` calls, then takes them."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.taken: list[Mapping[str, Any]] = []

    async def post(self, url: str, body: Mapping[str, Any]) -> None:
        if self.failures:
            self.failures -= 1
            raise DeliveryFailed(f"{url} answered 503")
        self.taken.append(body)


async def test_a_refused_hand_off_is_retried_later_and_delivered_once(
    storage: Storage, clock: FakeClock
) -> None:
    team = _team()
    case_id = await _claimed_case(storage, team, clock)
    await handoffs.hand_off(handoffs.HandOff(case_id, "aigerim", "billing"),
                            uow=storage.uow(), clock=clock, team=team)
    system = Flaky(failures=2)
    delivered = []
    for _ in range(6):
        delivered += await handoffs.deliver_webhooks(uow=storage.uow(), clock=clock,
                                                     sender=system)
        clock.advance(minutes=5)

    assert len(delivered) == 1 and len(system.taken) == 1
    assert delivered[0].attempts == 3
    assert system.taken[0]["case_id"] == case_id
