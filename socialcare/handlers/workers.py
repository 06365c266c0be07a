"""Workers: ingest the mentions other processes handed over through the queue.

Every process with the workers role runs this loop, as one consumer of the stream's
group. An entry is acknowledged only after its mentions are stored; a worker killed
in between leaves it pending, and another worker claims it after `claim_seconds`.
The pipeline drops what was already stored, so a claimed entry is never doubled.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from aiohttp import web
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from socialcare.bot import collecting
from socialcare.bot.model import RawMention
from socialcare.bot.pipeline import IngestResult
from socialcare.deps import Deps
from socialcare.handlers import background, collectors
from socialcare.storage.queue import IngestQueue, consumer_name
from socialcare.storage.redis import lease

log = logging.getLogger(__name__)

# Stream entries per round (each names up to IDS_PER_ENTRY mentions).
ENTRIES = 5
BLOCK_MS = 1000
# A row still in the inbox after this many claim periods has lost its announcement
# (Redis restarted without it): it is announced again. Looked for once a claim period.
REQUEUE_AFTER_CLAIMS = 4
MAX_BACKOFF_SECONDS = 30.0


async def work_once(deps: Deps, queue: IngestQueue, consumer: str, *,
                    claim_seconds: float, block_ms: int = BLOCK_MS) -> int:
    """Take one batch from the queue, ingest it, and acknowledge it; return its size."""
    taken = await queue.take(consumer, count=ENTRIES, block_ms=block_ms,
                             claim_idle_ms=int(claim_seconds * 1000))
    if taken.claimed:
        log.info("took over %d queue entries a stopped worker left", taken.claimed)
    rows = []
    for row_id, raw in taken.rows:
        if deps.team.source(raw.source) is None:
            log.warning("queued mention %s (row %d) is from source %r, which is no longer "
                        "in the config: dropped", raw.external_id, row_id, raw.source)
        else:
            rows.append((row_id, raw))
    raws = [raw for _, raw in rows]
    kept: list[int] = []
    try:
        results = await collecting.ingest(raws, pipeline=deps.pipeline, uow=deps.uow)
    except Exception as error:
        if _outage(error):
            raise
        results, kept = await _one_by_one(deps, rows)
        raws = [raw for row_id, raw in rows if row_id not in kept]
    await queue.done(taken, kept=kept, now=deps.clock.now())
    for source, _, outcomes in collectors.by_source(deps, raws, results):
        await collectors.after_ingest(deps, source, [], outcomes, alert=None)
    return len(taken.rows) + len(taken.unreadable)


async def _one_by_one(deps: Deps, rows: list[tuple[int, RawMention]]
                      ) -> tuple[list[IngestResult], list[int]]:
    """Store a batch that failed as a whole mention by mention; return the results of
    those stored and the rows of those that fail alone, which stay in the inbox (to be
    tried again later, after a fix) instead of holding up the others for ever."""
    results: list[IngestResult] = []
    kept: list[int] = []
    for row_id, raw in rows:
        try:
            results += await collecting.ingest([raw], pipeline=deps.pipeline, uow=deps.uow)
        except Exception as error:
            if _outage(error):
                raise
            log.error("queued mention %s of %s (inbox row %d) cannot be stored (%s: %s); it "
                      "stays in the inbox and is tried again later", raw.external_id,
                      raw.source, row_id, type(error).__name__, error)
            kept.append(row_id)
    return results, kept


def _outage(error: Exception) -> bool:
    """Tell a storage outage (wait and retry everything) from a mention that cannot be
    stored (set it aside)."""
    if isinstance(error, DBAPIError):
        return error.connection_invalidated or isinstance(error, OperationalError | InterfaceError)
    return isinstance(error, OSError | TimeoutError | RedisError)


async def requeue(deps: Deps, queue: IngestQueue, *, claim_seconds: float) -> int:
    """Announce again what waited in the inbox too long (one process at a time)."""
    waited = timedelta(seconds=claim_seconds * REQUEUE_AFTER_CLAIMS)
    async with lease(deps.redis, "inbox-requeue", seconds=claim_seconds) as held:
        if not held:
            return 0
        count = await queue.requeue(now=deps.clock.now(), waited=waited)
    if count:
        log.warning("%d mention(s) waited in the inbox over %.0f s: announced again", count,
                    waited.total_seconds())
    deps.telemetry.inbox.set(await queue.backlog())
    return count


async def _run(deps: Deps, queue: IngestQueue, *, claim_seconds: float) -> None:
    consumer = consumer_name()
    loop = asyncio.get_running_loop()
    checked = -claim_seconds
    backoff = 1.0
    log.info("worker %s reads the ingest queue", consumer)
    while True:
        try:
            if loop.time() - checked >= claim_seconds:
                checked = loop.time()
                await requeue(deps, queue, claim_seconds=claim_seconds)
            await work_once(deps, queue, consumer, claim_seconds=claim_seconds)
            backoff = 1.0
        except asyncio.CancelledError:
            raise
        except Exception as error:
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
