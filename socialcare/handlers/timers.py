"""The clock's ticks as domain commands: fire due SLA points, keep gauges current.

Runs in every process that has the scheduler role; the database decides which
process fires a point, so any number of them may run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from socialcare.bot import sla
from socialcare.bot.model import Event
from socialcare.deps import Deps

log = logging.getLogger(__name__)

TICK_SECONDS = 1.0
# After a failed tick (database away), wait longer each time, up to this.
MAX_BACKOFF_SECONDS = 30.0


async def tick(deps: Deps) -> list[Event]:
    """Fire the SLA points due now; log and count each."""
    events = await sla.fire_due(uow=deps.uow(), clock=deps.clock, config=deps.team.sla)
    zone = deps.team.zone
    for event in events:
        data = event.data
        due = sla.parse_due(data).astimezone(zone)
        late = f", fired {data['late_seconds']} s late" if data["late_seconds"] else ""
        log.info(
            "SLA %s: case #%d (%s tier), %s due %s%s",
            data["label"], event.case_id, data["tier"], data["clock"],
            due.strftime("%Y-%m-%d %H:%M %Z"), late,
        )
        deps.telemetry.sla_points.labels(data["tier"], data["clock"], data["point"]).inc()
    return events


async def _run(deps: Deps) -> None:
    backoff = TICK_SECONDS
    while True:
        try:
            await tick(deps)
            backoff = TICK_SECONDS
        except Exception:
            log.exception("SLA tick failed; retrying in %.0f s", backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
        await asyncio.sleep(backoff)


def register(app: web.Application, deps: Deps) -> None:
    """Run the SLA timers for as long as the app runs."""

    async def timers(_app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(_run(deps), name="sla-timers")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app.cleanup_ctx.append(timers)
