"""The scheduler's step: fire what is due on the clocks, each exactly once.

Due are SLA points (warnings, breach, reminders), lapsed claims, and reminders and
hand-overs of unacknowledged critical escalations. Any number of schedulers may run
this at once: what fired is stored with a conditional update, so of two schedulers
that read the same case or escalation only one stores it; the other drops it.
"""

from __future__ import annotations

from socialcare.bot import escalations, lifecycle, sla
from socialcare.bot.errors import ConcurrentUpdate
from socialcare.bot.escalations import EscalationEvent
from socialcare.bot.model import SYSTEM, Case, Event
from socialcare.bot.ports import Clock, UnitOfWork
from socialcare.bot.sla import SlaConfig
from socialcare.bot.team import Team


async def fire_escalations(
    *, uow: UnitOfWork, clock: Clock, team: Team, limit: int = 100
) -> list[EscalationEvent]:
    """Re-send or hand over the critical escalations that wait too long."""
    now = clock.now()
    fired: list[EscalationEvent] = []
    async with uow:
        for escalation in await uow.escalations.list_due(now, limit=limit):
            outcome = escalations.fire_due(escalation, team, now)
            try:
                await escalations.store(escalation, outcome, uow=uow, now=now)
            except ConcurrentUpdate:
                continue
            fired += outcome[0]
        await uow.commit()
    return fired


# Cases whose points one sweep fires at most; a full sweep is followed by another.
BATCH = 200


async def fire_due(
    *, uow: UnitOfWork, clock: Clock, config: SlaConfig, limit: int = BATCH
) -> list[Event]:
    """Fire what is due now and return the events; the cases' cards go out of step."""
    now = clock.now()
    fired: list[Event] = []
    async with uow:
        due: list[tuple[Case, list[Event]]] = []
        for case in await uow.cases.list_due(now, limit=limit):
            policy = config.for_tier(case.tier)
            events = sla.fire_due_points(case, policy, now)
            expiry = sla.claim_expires_at(case, policy)
            if expiry is not None and expiry <= now:
                events.append(
                    lifecycle.release(case, by=SYSTEM, at=now, policy=policy, expired=True)
                )
            due.append((case, events))
        # A case changed by someone else since it was read is left out: its points
        # are fired by the next sweep, on the new version.
        changed = await uow.cases.save_many([case for case, _ in due])
        stored = {id(case) for case in changed}
        for case, events in due:
            if id(case) in stored:
                fired += events
        await uow.cards.mark_changed(changed, at=now)
        await uow.events.add(fired)
        await uow.commit()
    return fired
