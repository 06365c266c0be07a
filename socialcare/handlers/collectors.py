"""Collecting as the app runs it: poll the due sources, tell the team about their health.

Every process with the collector role runs this loop. A Redis lease per source
lets one process poll a source at a time; without Redis every process polls, and
the pipeline still stores each mention once. Sources are polled side by side, so
a feed that hangs holds up nobody but itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from functools import partial

from aiohttp import web
from redis.exceptions import RedisError

from socialcare.bot import collecting
from socialcare.bot.model import RawMention
from socialcare.bot.pipeline import IngestResult
from socialcare.bot.ports import Note, Poller
from socialcare.bot.sources import Alert, alert_text
from socialcare.bot.team import Source
from socialcare.deps import Deps
from socialcare.handlers import background
from socialcare.storage.redis import lease

log = logging.getLogger(__name__)

TICK_SECONDS = 1.0
# After a poll could not run at all (database away), look again after this.
RETRY_SECONDS = 30.0
# How often pushed sources are checked for going silent.
SILENCE_CHECK_SECONDS = 60.0
# A poll holds its source this long at most (collecting gives a poll 300 s).
LEASE_SECONDS = collecting.POLL_TIMEOUT + 30
# Groups of pushed requests stored at once (`Intake`).
GROUPS_AT_ONCE = 2


async def poll_due(deps: Deps) -> list[collecting.Collected]:
    """Poll every source that is due, side by side, and wait for all; return the polls."""
    pollers = deps.collectors.pollers
    sources = [s for s in deps.team.sources if s.name in pollers]
    done = await asyncio.gather(*(_poll(deps, s, pollers[s.name]) for s in sources))
    return [c for c in done if c is not None and not c.skipped]


async def _poll(deps: Deps, source: Source, poller: Poller) -> collecting.Collected | None:
    try:
        async with lease(deps.redis, f"source:{source.name}", seconds=LEASE_SECONDS) as held:
            if not held:
                return None
            collected = await _poll_now(deps, source, poller)
    except RedisError as error:
        log.warning("polling %s without a lease, Redis is unavailable: %s", source.name,
                    type(error).__name__)
        collected = await _poll_now(deps, source, poller)
    return collected


async def _poll_now(deps: Deps, source: Source, poller: Poller) -> collecting.Collected:
    collected = await collecting.poll(source, poller, uow=deps.uow, pipeline=deps.pipeline,
                                      clock=deps.clock,
                                      hand_over=partial(hand_over, deps) if deps.hands_over
                                      else None)
    if collected.skipped:
        return collected
    if collected.error is not None:
        deps.telemetry.source_polls.labels(source.name, "failed").inc()
        log.warning("source %s: %s", source.name, collected.error)
    else:
        deps.telemetry.source_polls.labels(source.name, "ok").inc()
        if collected.found:
            log.info("source %s: %d found, %d new case(s)", source.name, collected.found,
                     collected.created)
    await after_ingest(deps, source, [], list(collected.results), alert=collected.alert)
    return collected


async def take_in(deps: Deps, raws: Sequence[RawMention]) -> list[IngestResult] | None:
    """Ingest pushed mentions now (one transaction), or hand them to the workers if
    this process is not one (None then); note each source's delivery in its health."""
    results = await _store(deps, raws)
    await _note(deps, raws, results)
    return results


async def _store(deps: Deps, raws: Sequence[RawMention]) -> list[IngestResult] | None:
    if deps.hands_over:
        await hand_over(deps, raws)
        return None
    return await deps.pipeline.ingest(raws, uow=deps.uow()) if raws else []


async def _note(deps: Deps, raws: Sequence[RawMention],
                results: Sequence[IngestResult] | None) -> None:
    for source, mentions, outcomes in by_source(deps, raws, results or []):
        await received(deps, source, mentions, outcomes)


class Intake:
    """`take_in` for requests that arrive side by side: the mentions of every request
    waiting at the moment are stored together — one transaction, one inbox insert, one
    health update a source — and each request is answered with its own mentions'
    outcomes once they are stored.

    Fifty webhooks in flight at once then cost a few transactions instead of fifty
    (each its own commit, its own round trips, the source's health row taken in turns).
    While one group is stored the next gathers. A group that fails is taken again
    request by request, so that one request's failure is that request's alone."""

    def __init__(self, deps: Deps, *, most: int = collecting.BATCH,
                 at_once: int = GROUPS_AT_ONCE) -> None:
        self._deps = deps
        self._most = most  # mentions a group takes at most (a larger request goes alone)
        self._waiting: deque[tuple[Sequence[RawMention],
                                   asyncio.Future[list[IngestResult] | None]]] = deque()
        self._draining: asyncio.Task[None] | None = None
        # Groups stored at once: while one waits for the database the next is stored.
        self._slots = asyncio.Semaphore(at_once)
        self._storing: set[asyncio.Task[None]] = set()

    async def take_in(self, raws: Sequence[RawMention]) -> list[IngestResult] | None:
        """Store the mentions with those of the other requests waiting; return what
        became of each of these (None: handed to the workers), as `take_in` does."""
        future: asyncio.Future[list[IngestResult] | None] = \
            asyncio.get_running_loop().create_future()
        self._waiting.append((raws, future))
        if self._draining is None or self._draining.done():
            self._draining = asyncio.create_task(self._drain(), name="intake")
        # A request that goes away (its client hung up) leaves its mentions to be stored.
        return await asyncio.shield(future)

    async def _drain(self) -> None:
        while self._waiting:
            # A group is formed when it can be stored: what waits meanwhile joins it.
            await self._slots.acquire()
            if not self._waiting:
                self._slots.release()
                return
            group = [self._waiting.popleft()]
            size = len(group[0][0])
            while self._waiting and size + len(self._waiting[0][0]) <= self._most:
                group.append(self._waiting.popleft())
                size += len(group[-1][0])
            task = asyncio.create_task(self._store(group), name="intake group")
            self._storing.add(task)
            task.add_done_callback(self._stored)

    def _stored(self, task: asyncio.Task[None]) -> None:
        self._storing.discard(task)
        self._slots.release()

    async def _store(self, group: Sequence[tuple[Sequence[RawMention],
                                                 asyncio.Future[list[IngestResult] | None]]],
                     ) -> None:
        raws = [raw for request, _ in group for raw in request]
        try:
            try:
                results = await _store(self._deps, raws)
            except Exception as error:
                if len(group) == 1:
                    _settle(group[0][1], error=error)
                for one in group if len(group) > 1 else ():
                    await self._store([one])
                return
            await _note(self._deps, raws, results)
            start = 0
            for request, future in group:
                end = start + len(request)
                _settle(future, None if results is None else results[start:end])
                start = end
        finally:  # stopped half-way (the process is stopping): no request waits for ever
            for _, future in group:
                _settle(future, error=RuntimeError("stopped before the mentions were stored"))


def _settle(future: asyncio.Future[list[IngestResult] | None],
            result: list[IngestResult] | None = None, *,
            error: BaseException | None = None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def by_source(deps: Deps, raws: Sequence[RawMention], results: Sequence[IngestResult],
              ) -> Iterator[tuple[Source, list[RawMention], list[IngestResult]]]:
    """Split a batch by configured source, each mention with its result if it has one."""
    for name in dict.fromkeys(raw.source for raw in raws):
        source = deps.team.source(name)
        if source is None:
            continue
        picked = [i for i, raw in enumerate(raws) if raw.source == name]
        yield (source, [raws[i] for i in picked],
               [results[i] for i in picked] if results else [])


async def hand_over(deps: Deps, raws: Sequence[RawMention]) -> None:
    """Give mentions to the workers through the ingest queue."""
    assert deps.queue is not None
    await deps.queue.put(raws, now=deps.clock.now())
    deps.telemetry.queued.inc(len(raws))


async def received(deps: Deps, source: Source, mentions: Sequence[RawMention],
                   results: Sequence[IngestResult]) -> None:
    """Note what a pushed source delivered in its health; tell the team if that changed.

    The delivery is stored by now, and the sender is answered that it is: a failure
    here is logged, never raised into the request."""
    try:
        alert = await collecting.delivered(source, mentions, uow=deps.uow, clock=deps.clock,
                                           polled=deps.collectors.polled(source))
    except Exception:
        log.exception("source %s: a delivery of %d mention(s) is stored, but its health "
                      "could not be noted", source.name, len(mentions))
        alert = None
    await after_ingest(deps, source, mentions, results, alert=alert)


async def after_ingest(deps: Deps, source: Source, mentions: Sequence[RawMention],
                       results: Sequence[IngestResult],
                       *, alert: tuple[Alert, Alert] | None) -> None:
    """Count the outcomes, wake the cards, and announce a change of health."""
    for result in results:
        deps.telemetry.mentions.labels(
            source.name, result.outcome.value, result.reason.value if result.reason else ""
        ).inc()
    if any(result.case_id is not None for result in results):
        deps.wake()
    if mentions:
        newest = max(m.published_at for m in mentions)
        deps.telemetry.source_lag.labels(source.name).set(
            max(0.0, (deps.clock.now() - newest).total_seconds()))
    if alert is not None:
        await announce(deps, source, alert)


async def check_silence(deps: Deps) -> None:
    """Tell the team about sources that went silent, or spoke again."""
    for source, change in await collecting.check_silence(
            deps.team.sources, polled=deps.collectors.polled, uow=deps.uow, clock=deps.clock):
        await announce(deps, source, change)


async def announce(deps: Deps, source: Source, change: tuple[Alert, Alert]) -> None:
    """Post a source's change of health in the channels its cards go to.

    The database decided that this process saw the change (the state's version), so
    the team hears it once, whichever process polled.
    """
    try:
        async with deps.uow() as uow:
            state = await uow.sources.get(source.name)
    except Exception:
        log.exception("source %s went %s, but its state cannot be read to tell the team",
                      source.name, change[1].value)
        return
    text = alert_text(source, change, state, catalog=deps.catalog)
    log.warning("source %s: %s → %s", source.name, change[0].value, change[1].value)
    for channel in deps.team.channels_for_source(source):
        messenger = deps.messengers.get(channel.messenger)
        if messenger is None:
            continue
        try:
            await messenger.post_note(channel.id, Note(text))
        except Exception:
            log.exception("source alert for %s not posted to %s %s", source.name,
                          channel.messenger, channel.id)


async def _run(deps: Deps) -> None:
    loop = asyncio.get_running_loop()
    silence_checked = -SILENCE_CHECK_SECONDS
    polls: dict[str, asyncio.Task[collecting.Collected | None]] = {}
    due: dict[str, datetime] = {}  # when each source is next due, as last seen
    pollers = deps.collectors.pollers
    sources = [s for s in deps.team.sources if s.name in pollers]
    try:
        while True:
            background.stop_if_asked()
            now = deps.clock.now()
            for source in sources:
                task = polls.pop(source.name, None)
                if task is not None and not task.done():
                    polls[source.name] = task  # still polling: it holds up nobody else
                    continue
                if task is not None:
                    due[source.name] = _next_due(source, task, now)
                if due.get(source.name, now) <= now:
                    polls[source.name] = asyncio.create_task(
                        _poll(deps, source, pollers[source.name]), name=f"poll {source.name}")
            try:
                if loop.time() - silence_checked >= SILENCE_CHECK_SECONDS:
                    await check_silence(deps)
                    silence_checked = loop.time()
            except Exception:
                background.stop_if_asked()
                log.exception("checking the sources for silence failed; trying again")
            await asyncio.sleep(TICK_SECONDS)
    finally:
        # Stopping, wherever the loop was: the polls end with it, before the storage
        # they use closes.
        for task in polls.values():
            task.cancel()
        await asyncio.gather(*polls.values(), return_exceptions=True)


def _next_due(source: Source, task: asyncio.Task[collecting.Collected | None],
              now: datetime) -> datetime:
    """When to look at a source again, after its last poll task ended."""
    error = None if task.cancelled() else task.exception()
    if error is not None:
        # Its state could not even be read (the database is away): try again shortly.
        log.error("polling source %s failed: %s", source.name, error, exc_info=error)
        return now + timedelta(seconds=RETRY_SECONDS)
    collected = None if task.cancelled() else task.result()
    if collected is None or collected.next_poll_at is None:
        return now  # another process holds it: look again next tick
    return collected.next_poll_at


def register(app: web.Application, deps: Deps) -> None:
    """Collect from the polled sources, and watch all of them, while the app runs."""
    background.run_while_serving(app, "collectors", lambda: _run(deps))
