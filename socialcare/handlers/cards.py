"""Keep cards in step: run the dispatcher when cases change and at SLA steps.

Runs in every process that has messengers; the database decides which process
posts a card, so any number may run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from aiohttp import web

from socialcare.bot.dispatcher import Dispatcher, DispatchReport
from socialcare.deps import Deps
from socialcare.handlers import background

log = logging.getLogger(__name__)

# With nothing to do, look again this often anyway (SLA steps, other processes' work).
IDLE_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 30.0
# A round that sent nothing because a channel was held is not run again sooner than
# this, however many changes come meanwhile (SLA points fire by the hundred a second
# under a surge): looking again costs the sweep that fires them.
HELD_ROUND_SECONDS = 0.25


def record(report: DispatchReport, deps: Deps) -> None:
    """Count what a round did."""
    for posted in report.posted:
        deps.telemetry.time_to_card.labels(posted.messenger, posted.tier.value).observe(
            posted.since_published
        )
    for outcome in ("edited", "unchanged", "notes", "deferred", "failed"):
        count = getattr(report, outcome)
        if count:
            deps.telemetry.card_syncs.labels(outcome).inc(count)
    if report.posted:
        deps.telemetry.card_syncs.labels("posted").inc(len(report.posted))
    for double in report.possible_doubles:
        deps.telemetry.possible_doubles.labels(double.messenger).inc(double.copies)


async def _run(dispatcher: Dispatcher, deps: Deps, messenger: str,
               changes: asyncio.Event) -> None:
    """Sync one messenger's cards, round after round: a messenger at its limits never
    holds back another's cards."""
    backoff = IDLE_SECONDS
    while True:
        background.stop_if_asked()
        await deps.foreground.give_way()  # the requests in flight first
        changes.clear()
        began = time.monotonic()
        try:
            report = await dispatcher.sync(messengers=[messenger])
            record(report, deps)
            backoff = IDLE_SECONDS
        except Exception:
            background.stop_if_asked()
            log.exception("syncing %s cards failed; retrying in %.0f s", messenger, backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
            report = DispatchReport()
        if report.busy:
            continue
        pause = min(backoff, report.retry_in) if report.retry_in is not None else backoff
        # asyncio.timeout, not wait_for: Python 3.11's wait_for can swallow the
        # cancellation that stops this loop at shutdown.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(pause, 0.05)):
                await changes.wait()
        if report.held:
            await asyncio.sleep(max(0.0, began + HELD_ROUND_SECONDS - time.monotonic()))


async def _run_all(dispatcher: Dispatcher, deps: Deps) -> None:
    """Run one loop a messenger, each woken by every change of a card."""
    changes = {name: asyncio.Event() for name in dispatcher.messengers}

    async def tell_each() -> None:
        while True:
            await deps.card_changes.wait()
            deps.card_changes.clear()
            for event in changes.values():
                event.set()

    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(tell_each(), name="cards: wake-ups")
        for name, event in changes.items():
            tasks.create_task(_run(dispatcher, deps, name, event), name=f"cards: {name}")


def register(app: web.Application, dispatcher: Dispatcher, deps: Deps) -> None:
    """Run the dispatcher for as long as the app runs."""
    background.run_while_serving(app, "cards", lambda: _run_all(dispatcher, deps))
