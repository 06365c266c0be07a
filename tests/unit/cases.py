"""Cases built in memory for domain tests."""

from __future__ import annotations

from datetime import datetime

from socialcare.bot import sla
from socialcare.bot.model import Case, Priority, Tier
from socialcare.bot.sla import SlaPolicy
from tests.conftest import T0

POLICY = SlaPolicy(first_response_minutes=15, repeat_minutes=5, resolution_minutes=120)


def new_case(*, published: datetime = T0, policy: SlaPolicy = POLICY, case_id: int = 1) -> Case:
    """Return a stored-looking new main-tier case with its clocks started."""
    case = Case(
        brand="Kcell", source="webhook", platform="instagram", tier=Tier.MAIN,
        priority=Priority.HIGH, thread_key="p1", published_at=published,
        collected_at=published, id=case_id,
    )
    if policy.resolution is not None:
        case.resolve_due_at = published + policy.resolution
    sla.start_response_clock(case, published, policy, first=True)
    return case
