"""Workers: ingest the mentions other processes handed over through the queue.

Every process with the workers role runs this loop, as one consumer of the stream's
group. An entry is acknowledged only after its mentions are stored; a worker killed
in between leaves it pending, and another worker claims it after `claim_seconds`.
A worker that is slow but alive claims its entries again every third of that time
while it works, so only a silent worker's batch is taken over. The pipeline drops
what was already stored, so a claimed entry is never doubled.

Nothing taken is dropped unstored. A mention of a source this worker's config does
not know (a config change rolling through the processes) stays in the inbox, marked,
until a worker that knows the source takes it back; a mention that cannot be read or
stored is tried again at later sweeps and, after a few tries, set aside in the dead
letters, with one alert to the team.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from functools import partial

from aiohttp import web
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from socialcare.bot import collecting
from socialcare.bot.model import RawMention
from socialcare.bot.notices import Notice
from socialcare.bot.pipeline import IngestResult
from socialcare.deps import Deps
from socialcare.handlers import background, collectors
from socialcare.storage.dead_letters import DeadLetter, DeadLetters
from socialcare.storage.queue import DEAD_AFTER, IngestQueue, Taken, consumer_name
from socialcare.storage.redis import lease

log = logging.getLogger(__name__)

# Stream entries per round (each names up to IDS_PER_ENTRY mentions).
ENTRIES = 5
BLOCK_MS = 1000
# A row still in the inbox after this many claim periods has lost its announcement
# (Redis restarted without it): it is announced again. Looked for once a claim period.
REQUEUE_AFTER_CLAIMS = 4
MAX_BACKOFF_SECONDS = 30.0
# A working worker claims its entries again this many times per claim period.
EXTENSIONS_PER_CLAIM = 3


async def work_once(deps: Deps, queue: IngestQueue, consumer: str, *,
                    claim_seconds: float, block_ms: int = BLOCK_MS) -> int:
    """Take one batch from the queue, ingest it, and acknowledge it; return its size."""
    taken = await queue.read(consumer, count=ENTRIES, block_ms=block_ms,
                             claim_idle_ms=int(claim_seconds * 1000))
    if taken.claimed:
        log.info("took over %d queue entries a stopped worker left", taken.claimed)
    if not taken.entries:
        return 0
    async with _holding(deps, queue, consumer, taken, every=claim_seconds / EXTENSIONS_PER_CLAIM):
        taken = await queue.load(taken)
        rows = [(row_id, raw) for row_id, raw in taken.rows
                if deps.team.source(raw.source) is not None]
        unknown = _unknown_sources(deps, taken)
        for name, ids in unknown.items():
            log.warning("%d queued mention(s) of source %r, which this worker's config does "
                        "not know, stay in the inbox until a worker that knows the source "
                        "takes them (a config change on its way?): inbox rows %s", len(ids),
                        name, ", ".join(map(str, ids)))
        raws = [raw for _, raw in rows]
        failed: dict[int, str] = {}
        try:
            results = await collecting.ingest(raws, pipeline=deps.pipeline, uow=deps.uow)
        except Exception as error:
            if _outage(error):
                raise
            results, failed = await _one_by_one(deps, rows)
            raws = [raw for row_id, raw in rows if row_id not in failed]
        dead = await queue.done(taken, failed=failed,
                                unknown=[i for ids in unknown.values() for i in ids],
                                now=deps.clock.now(), alert=partial(dead_letter_notices, deps))
    _failures(deps, {**dict(taken.unreadable), **failed}, dead)
    for source, _, outcomes in collectors.by_source(deps, raws, results):
        await collectors.after_ingest(deps, source, [], outcomes, alert=None)
    return taken.size


def _unknown_sources(deps: Deps, taken: Taken) -> dict[str, list[int]]:
    """The rows taken whose source this worker's config does not know, by source."""
    unknown: dict[str, list[int]] = {}
    for row_id, raw in taken.rows:
        if deps.team.source(raw.source) is None:
            unknown.setdefault(raw.source, []).append(row_id)
    return unknown


@contextlib.asynccontextmanager
async def _holding(deps: Deps, queue: IngestQueue, consumer: str, taken: Taken, *,
                   every: float) -> AsyncIterator[None]:
    """Keep what was taken this worker's while the block runs: its entries are claimed
    again every `every` seconds (XAUTOCLAIM takes over only a silent worker's), and
    its rows are marked as announced once a claim period, apart, so that a database
    that keeps the mark waiting holds up no claim."""

    async def extend() -> None:
        while True:
            await asyncio.sleep(every)
            try:
                await queue.extend(consumer, taken)
            except RedisError as error:
                background.stop_if_asked()
                log.warning("worker: could not extend its claim (%s)", type(error).__name__)

    async def touch() -> None:
        while True:
            await asyncio.sleep(every * EXTENSIONS_PER_CLAIM)
            try:
                await queue.touch(taken, now=deps.clock.now())
            except Exception as error:
                background.stop_if_asked()
                log.warning("worker: could not mark its rows as in hand (%s)",
                            type(error).__name__)

    if every <= 0:  # no claim time: anything pending may be taken over at once
        yield
        return
    tasks = [asyncio.create_task(extend()), asyncio.create_task(touch())]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _failures(deps: Deps, failed: dict[int, str], dead: Sequence[DeadLetter]) -> None:
    """Log the rows that could not be read or stored: set aside, or to be tried again."""
    deps.telemetry.dead_lettered.inc(len(dead))
    for letter in dead:
        log.error("queued mention %s of %s (inbox row %d) failed %d times and is set aside "
                  "as a dead letter (socialcare inbox list): %s", letter.external_id,
                  letter.source, letter.id, letter.tries, letter.reason)
    gone = {letter.id for letter in dead}
    for row_id, reason in sorted(failed.items()):
        if row_id not in gone:
            log.error("inbox row %d %s; it stays in the inbox and is tried again at a later "
                      "sweep", row_id, reason)


def dead_letter_notices(deps: Deps, dead: Sequence[DeadLetter]) -> list[Notice]:
    """Return the alerts of newly set-aside mentions: one per team channel they
    concern (their sources' channels; every card channel for a source not
    configured)."""
    now = deps.clock.now()
    channels: dict[tuple[str, str], None] = {}  # in order, once each
    for letter in dead:
        source = deps.team.source(letter.source)
        for channel in (deps.team.channels_for_source(source) if source is not None
                        else deps.team.channels):
            channels[(channel.messenger, channel.id)] = None
    params = {"count": len(dead), "tries": DEAD_AFTER,
              "sources": ", ".join(sorted({letter.source for letter in dead})),
              "ids": ", ".join(f"#{letter.id}" for letter in dead[:10])
              + (" …" if len(dead) > 10 else "")}
    return [Notice(messenger=messenger, recipient=channel_id, key="notice.dead_letters",
                   params=dict(params), created_at=now)
            for messenger, channel_id in channels]


async def _one_by_one(deps: Deps, rows: list[tuple[int, RawMention]]
                      ) -> tuple[list[IngestResult], dict[int, str]]:
    """Store a batch that failed as a whole mention by mention; return the results of
    those stored and, by row, why the others failed: they stay in the inbox (to be
    tried again later, after a fix) instead of holding up the others for ever."""
    results: list[IngestResult] = []
    failed: dict[int, str] = {}
    for row_id, raw in rows:
        try:
            results += await collecting.ingest([raw], pipeline=deps.pipeline, uow=deps.uow)
        except Exception as error:
            if _outage(error):
                raise
            failed[row_id] = (f"(mention {raw.external_id} of {raw.source}) cannot be "
                              f"stored: {type(error).__name__}: {error}")
    return results, failed


def _outage(error: Exception) -> bool:
    """Tell a storage outage (wait and retry everything) from a mention that cannot be
    stored (set it aside)."""
    if isinstance(error, DBAPIError):
        return error.connection_invalidated or isinstance(error, OperationalError | InterfaceError)
    return isinstance(error, OSError | TimeoutError | RedisError)


async def requeue(deps: Deps, queue: IngestQueue, *, claim_seconds: float) -> int:
    """Announce again what waited in the inbox too long (one process at a time)."""
    waited = timedelta(seconds=claim_seconds * REQUEUE_AFTER_CLAIMS)
    # Not under the lease: each worker takes back what its own config knows.
    back = await queue.take_back([source.name for source in deps.team.sources],
                                 now=deps.clock.now())
    if back:
        log.info("took back %d queued mention(s) of sources another worker did not know",
                 back)
    count = 0
    async with lease(deps.redis, "inbox-requeue", seconds=claim_seconds) as held:
        if held:
            count = await queue.requeue(now=deps.clock.now(), waited=waited)
    if count:
        log.warning("%d mention(s) waited in the inbox over %.0f s: announced again", count,
                    waited.total_seconds())
    deps.telemetry.inbox.set(await queue.backlog())
    deps.telemetry.dead_letters.set(await DeadLetters(deps.engine).count())
    unknown = await queue.unknown_sources()
    deps.telemetry.inbox_unknown_source.set(sum(n for n, _ in unknown.values()))
    return back + count


async def _run(deps: Deps, queue: IngestQueue, *, claim_seconds: float) -> None:
    consumer = consumer_name()
    loop = asyncio.get_running_loop()
    checked = -claim_seconds
    backoff = 1.0
    log.info("worker %s reads the ingest queue", consumer)
    while True:
        background.stop_if_asked()
        await deps.foreground.give_way()  # the requests in flight first
        try:
            if loop.time() - checked >= claim_seconds:
                checked = loop.time()
                await requeue(deps, queue, claim_seconds=claim_seconds)
            await work_once(deps, queue, consumer, claim_seconds=claim_seconds)
            backoff = 1.0
        except Exception as error:
            background.stop_if_asked()
            what = "Redis" if isinstance(error, RedisError) else "ingest"
            log.warning("worker: %s failed (%s); trying again in %.0f s", what,
                        type(error).__name__, backoff, exc_info=what == "ingest")
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)


def register(app: web.Application, deps: Deps, *, claim_seconds: float) -> None:
    """Read the ingest queue for as long as the app runs."""
    queue = deps.queue
    assert queue is not None
    background.run_while_serving(app, "worker",
                                 lambda: _run(deps, queue, claim_seconds=claim_seconds))
