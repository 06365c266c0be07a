"""Collecting: poll a source, feed what it found to the pipeline, keep its health.

The cursor is stored only after what it covers is stored: a crash in between means
the next poll fetches those items again, and the pipeline drops them as duplicates —
nothing is lost, nothing is doubled.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from socialcare.bot.errors import ConcurrentUpdate
from socialcare.bot.model import RawMention
from socialcare.bot.pipeline import IngestResult, Outcome, Pipeline
from socialcare.bot.ports import Clock, Poller, UnitOfWork
from socialcare.bot.sources import (
    Alert,
    Delivery,
    SourceState,
    SourceUnavailable,
    changed_alert,
    next_poll,
    record_failure,
    record_success,
)
from socialcare.bot.team import Source

log = logging.getLogger(__name__)

BATCH = 500
_ATTEMPTS = 5
# A poll that takes longer than this is given up (and counted as failed).
POLL_TIMEOUT = 300.0


@dataclass(frozen=True)
class Collected:
    """What one poll or delivery of a source came to."""

    source: str
    next_poll_at: datetime | None = None
    skipped: bool = False  # it was not due (another process may have polled it)
    found: int = 0
    created: int = 0
    error: str | None = None
    alert: tuple[Alert, Alert] | None = None  # (was, is) when the team must be told
    results: tuple[IngestResult, ...] = ()


async def poll(
    source: Source,
    poller: Poller,
    *,
    uow: Callable[[], UnitOfWork],
    pipeline: Pipeline,
    clock: Clock,
    hand_over: Callable[[Sequence[RawMention]], Awaitable[None]] | None = None,
) -> Collected:
    """Poll the source if it is due; return what came of it.

    With `hand_over`, what the poll found is given to it (another process's workers
    ingest it) instead of to the pipeline; either way it is stored before the cursor.
    """
    now = clock.now()
    async with uow() as unit:
        state = await unit.sources.get(source.name)
    if state.next_poll_at is not None and state.next_poll_at > now:
        return Collected(source.name, next_poll_at=state.next_poll_at, skipped=True)
    try:
        async with asyncio.timeout(POLL_TIMEOUT):
            polled = await poller.poll(source, state.cursor)
    except Exception as error:
        failure = _as_unavailable(source, error)

        def failed(state: SourceState) -> None:
            record_failure(state, str(failure), now=now)
            if failure.cursor is not None:
                state.cursor = dict(failure.cursor)
            state.next_poll_at = next_poll(source, state, now=now,
                                           retry_after=failure.retry_after)

        state, alert = await _update(source, failed, uow=uow, now=now, polled=True)
        return Collected(source.name, next_poll_at=state.next_poll_at, error=str(failure),
                         alert=alert)
    if hand_over is None:
        results = await ingest(polled.mentions, pipeline=pipeline, uow=uow)
    else:
        await hand_over(polled.mentions)
        results = []

    def succeeded(state: SourceState) -> None:
        record_success(state, polled.mentions, now=now, note=polled.note)
        state.cursor = dict(polled.cursor)
        state.next_poll_at = next_poll(source, state, now=now, retry_after=polled.retry_after)

    state, alert = await _update(source, succeeded, uow=uow, now=now, polled=True)
    return Collected(source.name, next_poll_at=state.next_poll_at, found=len(polled.mentions),
                     created=_created(results), alert=alert, results=tuple(results))


def _as_unavailable(source: Source, error: Exception) -> SourceUnavailable:
    if isinstance(error, SourceUnavailable):
        return error
    if isinstance(error, TimeoutError):
        return SourceUnavailable(f"the poll took over {POLL_TIMEOUT:.0f} s")
    # A collector's bug must not stop the others: it shows as this source failing.
    log.exception("polling source %s failed", source.name)
    return SourceUnavailable(f"unexpected {type(error).__name__}: {error}")


async def ingest(mentions: Sequence[RawMention], *, pipeline: Pipeline,
                 uow: Callable[[], UnitOfWork]) -> list[IngestResult]:
    """Feed mentions to the pipeline in batches."""
    results: list[IngestResult] = []
    for start in range(0, len(mentions), BATCH):
        results += await pipeline.ingest(mentions[start:start + BATCH], uow=uow())
    return results


async def delivered(
    source: Source, mentions: Sequence[RawMention], *, uow: Callable[[], UnitOfWork],
    clock: Clock, polled: bool = False,
) -> tuple[Alert, Alert] | None:
    """Note a pushed source's delivery in its health; return an alert change.

    Deliveries arrive side by side (fifty requests at once is ordinary), so the
    delivery is added in one step that no other can undo, never read and written
    back; the alert then moves only if it is still what was seen, so that one process
    tells the team. A source that is polled as well (Threads with webhooks) keeps the
    health and note of its polls: the delivery only counts its items."""
    now = clock.now()
    delivery = Delivery.of(mentions, now=now, items_only=polled)
    async with uow() as unit:
        state = await unit.sources.add_delivery(source.name, delivery)
        await unit.commit()
    return await _move_alert(source, state, uow=uow, now=now, polled=polled)


async def check_silence(
    sources: Sequence[Source], *, polled: Callable[[Source], bool],
    uow: Callable[[], UnitOfWork], clock: Clock,
) -> list[tuple[Source, tuple[Alert, Alert]]]:
    """Find the sources that went silent (or spoke again) since they were last looked at.

    Silence is counted from the last item (or success) seen: a source never heard from
    is not called silent, it shows as "nothing yet" in `/sources`.
    """
    now = clock.now()
    changes = []
    for source in sources:
        async with uow() as unit:
            state = await unit.sources.get(source.name)
        if state.version == 0:
            continue
        # Only if nothing came meanwhile: a delivery between the read and the move
        # would make "silent" wrong.
        alert = await _move_alert(source, state, uow=uow, now=now, polled=polled(source),
                                  version=state.version)
        if alert is not None:
            changes.append((source, alert))
    return changes


async def _move_alert(source: Source, state: SourceState, *, uow: Callable[[], UnitOfWork],
                      now: datetime, polled: bool,
                      version: int | None = None) -> tuple[Alert, Alert] | None:
    """Move the source's alert to what its state calls for, unless another process did
    meanwhile (or, given a version, the state changed at all); return the change if this
    process made it."""
    change = changed_alert(source, state, now=now, polled=polled)
    if change is None:
        return None
    async with uow() as unit:
        moved = await unit.sources.move_alert(source.name, was=change[0], to=change[1],
                                              version=version)
        await unit.commit()
    return change if moved else None


async def _update(
    source: Source, apply: Callable[[SourceState], None], *,
    uow: Callable[[], UnitOfWork], now: datetime, polled: bool,
) -> tuple[SourceState, tuple[Alert, Alert] | None]:
    """Read the source's state, apply a change, move its alert, store it; again from a
    fresh read if another process stored it meanwhile. Return the state and the alert
    change (which only the process that stored it sees, so the team hears it once)."""
    for _ in range(_ATTEMPTS):
        async with uow() as unit:
            state = await unit.sources.get(source.name)
            apply(state)
            alert = changed_alert(source, state, now=now, polled=polled)
            try:
                await unit.sources.save(state)
            except ConcurrentUpdate:
                continue
            await unit.commit()
        return state, alert
    raise ConcurrentUpdate(f"source {source.name}: its state kept changing meanwhile")


def _created(results: Sequence[IngestResult]) -> int:
    return sum(r.outcome is Outcome.CREATED for r in results)
