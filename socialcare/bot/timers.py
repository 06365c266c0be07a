"""The scheduler's step: fire what is due on the cases' clocks, each exactly once.

Due are SLA points (warnings, breach, reminders) and lapsed claims. Any number of
schedulers may run this at once: a case's clocks are stored with a conditional
update, so of two schedulers that read the same case only one stores what fired;
the other drops it.
"""

from __future__ import annotations

from socialcare.bot import lifecycle, sla
from socialcare.bot.errors import ConcurrentUpdate
from socialcare.bot.model import SYSTEM, Case, Event
from socialcare.bot.ports import Clock, UnitOfWork
from socialcare.bot.sla import SlaConfig


async def fire_due(
    *, uow: UnitOfWork, clock: Clock, config: SlaConfig, limit: int = 200
) -> list[Event]:
    """Fire what is due now and return the events; the cases' cards go out of step."""
    now = clock.now()
    fired: list[Event] = []
    changed: list[Case] = []
    async with uow:
        for case in await uow.cases.list_due(now, limit=limit):
            policy = config.for_tier(case.tier)
            events = sla.fire_due_points(case, policy, now)
            expiry = sla.claim_expires_at(case, policy)
            if expiry is not None and expiry <= now:
                events.append(
                    lifecycle.release(case, by=SYSTEM, at=now, policy=policy, expired=True)
                )
            try:
                await uow.cases.save(case)
            except ConcurrentUpdate:
                continue
            fired += events
            changed.append(case)
        await uow.cards.mark_changed(changed, at=now)
        await uow.events.add(fired)
        await uow.commit()
    return fired
