"""The ingest queue from the processes that collect to the processes that ingest.

A mention handed over is first written to the `inbox` table — the database is the
truth — and then announced on the Redis stream `ingest`, which the consumer group
`workers` reads. A worker reads entries, ingests the inbox rows they name, deletes
the rows and acknowledges the entries. A worker that dies leaves its entries
pending; another claims them once they have been idle long enough (XAUTOCLAIM). A
worker that is only slow keeps them: while it works it claims them again for
itself (`extend`), so they never look idle. If Redis loses the stream (a restart
without persistence), the rows are still in the inbox, and `requeue` announces
again the ones that waited too long. Ingesting a row twice is harmless: the
pipeline drops a mention it already has as a duplicate.

Rows are never deleted unstored. A row of a source the worker's config does not
know stays, marked, until a worker that knows the source takes it back
(`take_back`); a row that cannot be read or stored stays and counts its tries, and
after `DEAD_AFTER` of them moves to the dead letters (`storage/dead_letters.py`).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from socialcare.bot.model import Author, RawMention
from socialcare.bot.notices import Notice
from socialcare.storage.bulk import insert_returning_ids
from socialcare.storage.dead_letters import DeadLetter, set_aside
from socialcare.storage.escalations import SqlNoticeRepository
from socialcare.storage.schema import inbox

log = logging.getLogger(__name__)

STREAM = "ingest"
GROUP = "workers"
# Row ids per stream entry: one entry per handed-over batch, up to this many rows.
IDS_PER_ENTRY = 200
# A row that failed to be read or stored this many times goes to the dead letters.
DEAD_AFTER = 3
MAX_REASON = 1000
# Claim again the entries that are still this consumer's (ARGV: group, consumer,
# entry ids): their idle time starts over, so XAUTOCLAIM leaves them alone. Entries
# another consumer took meanwhile stay its own. Returns how many were extended.
_EXTEND = """
local group, consumer = ARGV[1], ARGV[2]
local owned = {}
for i = 3, #ARGV do
  local entry = redis.call('XPENDING', KEYS[1], group, ARGV[i], ARGV[i], 1)
  if entry[1] and entry[1][2] == consumer then owned[#owned + 1] = ARGV[i] end
end
if #owned > 0 then
  redis.call('XCLAIM', KEYS[1], group, consumer, 0, unpack(owned), 'JUSTID')
end
return #owned
"""


@dataclass(frozen=True)
class Taken:
    """Stream entries a worker took, and the inbox rows they name that still wait."""

    entries: tuple[str, ...]
    rows: tuple[tuple[int, RawMention], ...] = ()
    claimed: int = 0  # entries taken over from a worker that stopped answering
    unreadable: tuple[tuple[int, str], ...] = ()  # rows this version cannot read, and why
    ids: tuple[int, ...] = ()  # the inbox rows the entries name

    @property
    def size(self) -> int:
        """How many inbox rows were taken."""
        return len(self.rows) + len(self.unreadable)


def consumer_name() -> str:
    """This process's name in the consumer group: host and process id."""
    return f"{socket.gethostname()}-{os.getpid()}"


class IngestQueue:
    """The inbox table and the stream that announces its rows."""

    def __init__(self, engine: AsyncEngine, redis: Redis[Any], *, stream: str = STREAM,
                 group: str = GROUP) -> None:
        self._engine = engine
        self._redis = redis
        self._stream = stream
        self._group = group
        # Rows this process stored while Redis was away: announced with the next put
        # that reaches it (the inbox sweep is the fallback, should the process stop).
        self._unannounced: set[int] = set()

    async def put(self, raws: Sequence[RawMention], *, now: datetime) -> list[int]:
        """Store mentions in the inbox and announce them; return their row ids.

        Once this returns they are safe: if Redis is away the announcement is lost,
        not the mentions (`requeue` announces them later)."""
        if not raws:
            return []
        async with self._engine.begin() as conn:
            ids = await insert_returning_ids(
                conn, inbox, [{"source": raw.source, "mention": _to_json(raw),
                               "queued_at": now} for raw in raws])
        late = sorted(self._unannounced)
        try:
            await self._announce([*late, *ids])
        except RedisError as error:
            self._unannounced.update(ids)
            log.warning("%d queued mention(s) not announced, Redis is unavailable (%s); "
                        "they wait in the inbox", len(self._unannounced),
                        type(error).__name__)
        else:
            self._unannounced.difference_update(late)
            if late:
                log.info("announced %d mention(s) queued while Redis was away", len(late))
        return ids

    async def take(self, consumer: str, *, count: int, block_ms: int,
                   claim_idle_ms: int) -> Taken:
        """Take entries and read the inbox rows they name (`read`, then `load`)."""
        return await self.load(await self.read(consumer, count=count, block_ms=block_ms,
                                               claim_idle_ms=claim_idle_ms))

    async def read(self, consumer: str, *, count: int, block_ms: int,
                   claim_idle_ms: int) -> Taken:
        """Take entries: first those another worker left idle too long, else new ones
        (waiting up to `block_ms` for some). Their rows are not read yet."""
        try:
            entries, claimed = await self._read(consumer, count, block_ms, claim_idle_ms)
        except ResponseError as error:
            if "NOGROUP" not in str(error):
                raise
            await self.ensure_group()  # Redis lost the stream: start it again
            entries, claimed = await self._read(consumer, count, block_ms, claim_idle_ms)
        ids = sorted({int(i) for _, fields in entries for i in fields.get("ids", "").split(",")
                      if i.isdigit()})
        return Taken(tuple(entry_id for entry_id, _ in entries), claimed=claimed,
                     ids=tuple(ids))

    async def load(self, taken: Taken) -> Taken:
        """Read the inbox rows the entries name (those still waiting)."""
        rows: list[tuple[int, RawMention]] = []
        unreadable: list[tuple[int, str]] = []
        if taken.ids:
            async with self._engine.connect() as conn:
                found = await conn.execute(
                    select(inbox.c.id, inbox.c.mention).where(inbox.c.id.in_(taken.ids))
                    .order_by(inbox.c.id))
                for row in found:
                    try:
                        rows.append((row.id, from_json(row.mention)))
                    except (KeyError, TypeError, ValueError) as error:
                        unreadable.append(
                            (row.id, f"cannot be read: {type(error).__name__}: {error}"))
        return dataclasses.replace(taken, rows=tuple(rows), unreadable=tuple(unreadable))

    async def done(
        self, taken: Taken, *, failed: Mapping[int, str] | None = None,
        unknown: Collection[int] = (), now: datetime,
        alert: Callable[[Sequence[DeadLetter]], Sequence[Notice]] | None = None,
    ) -> list[DeadLetter]:
        """Forget what was taken: delete its stored rows, keep the others, then
        acknowledge its entries; return the rows that went to the dead letters.

        A row in `failed` (row id → why), or one that could not be read, counts a try;
        after DEAD_AFTER it moves to the dead letters, and the notices `alert` makes of
        them are stored in the same transaction (the team hears of each once). A row in
        `unknown` is of a source this worker does not know: it is marked for a worker
        that does. Either way it waits a full sweep before it is announced again."""
        why = {**dict(taken.unreadable), **(failed or {})}
        stay = {*why, *unknown}
        dead: list[DeadLetter] = []
        async with self._engine.begin() as conn:
            stored = [row_id for row_id, _ in taken.rows if row_id not in stay]
            if stored:
                await conn.execute(delete(inbox).where(inbox.c.id.in_(stored)))
            for row_id, reason in sorted(why.items()):
                await conn.execute(
                    update(inbox).where(inbox.c.id == row_id)
                    .values(tries=inbox.c.tries + 1, last_error=reason[:MAX_REASON],
                            queued_at=now))
            if why:
                dead = await set_aside(conn, sorted(why), tries=DEAD_AFTER, now=now)
                if dead and alert is not None:
                    await SqlNoticeRepository(conn).add(alert(dead))
            if unknown:
                await conn.execute(
                    update(inbox).where(inbox.c.id.in_(sorted(unknown)))
                    .values(queued_at=now, unknown_source_since=func.coalesce(
                        inbox.c.unknown_source_since, now)))
        if taken.entries:
            await self._redis.xack(self._stream, self._group, *taken.entries)
            await self._redis.xdel(self._stream, *taken.entries)
        return dead

    async def extend(self, consumer: str, taken: Taken) -> int:
        """Tell the other workers this consumer is still at work on what it took: its
        entries are claimed again, their idle time starting over; return how many are
        still its own."""
        if not taken.entries:
            return 0
        return int(await self._redis.eval(
            _EXTEND, 1, self._stream, self._group, consumer, *taken.entries))

    async def touch(self, taken: Taken, *, now: datetime) -> None:
        """Mark the rows taken as just announced, so the sweep leaves them alone."""
        if taken.ids:
            async with self._engine.begin() as conn:
                await conn.execute(update(inbox).where(inbox.c.id.in_(taken.ids))
                                   .values(queued_at=now))

    async def requeue(self, *, now: datetime, waited: timedelta, limit: int = 5000) -> int:
        """Announce again the rows that have waited longer than `waited`; return how many.

        Only when the stream has nothing left to deliver or acknowledge — so a row still
        waiting can no longer be on its way — or when a row has waited ten times that
        long (a stream never idle). Each row is taken by one conditional update, so two
        processes sweeping at once announce it once."""
        if not await self._stream_idle():
            waited *= 10
        async with self._engine.begin() as conn:
            # Rows kept for a source their worker did not know wait for `take_back`.
            stale = [row.id for row in await conn.execute(
                select(inbox.c.id).where(inbox.c.queued_at < now - waited,
                                         inbox.c.unknown_source_since.is_(None))
                .order_by(inbox.c.id).limit(limit))]
            if not stale:
                return 0
            result = await conn.execute(
                update(inbox).where(inbox.c.id.in_(stale), inbox.c.queued_at < now - waited)
                .values(queued_at=now).returning(inbox.c.id))
            ids = sorted(row.id for row in result)
        await self._announce(ids)
        return len(ids)

    async def take_back(self, sources: Collection[str], *, now: datetime) -> int:
        """Announce again, at once, the rows kept for a source another worker did not
        know, if it is one of `sources`; return how many. One conditional update per
        row: two workers sweeping at once announce it once."""
        if not sources:
            return 0
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(inbox).where(inbox.c.unknown_source_since.is_not(None),
                                    inbox.c.source.in_(sorted(sources)))
                .values(unknown_source_since=None, queued_at=now).returning(inbox.c.id))
            ids = sorted(row.id for row in result)
        if ids:
            await self._announce(ids)
        return len(ids)

    async def backlog(self) -> int:
        """How many mentions wait in the inbox."""
        async with self._engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(inbox))).scalar_one())

    async def unknown_sources(self) -> dict[str, tuple[int, datetime]]:
        """The sources of rows kept because a worker did not know them: how many rows
        of each, and since when."""
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                select(inbox.c.source, func.count(), func.min(inbox.c.unknown_source_since))
                .where(inbox.c.unknown_source_since.is_not(None)).group_by(inbox.c.source)
                .order_by(inbox.c.source))
            return {source: (int(count), since) for source, count, since in rows}

    async def ensure_group(self) -> None:
        """Create the stream and its consumer group unless they exist."""
        try:
            await self._redis.xgroup_create(self._stream, self._group, id="0", mkstream=True)
        except ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise

    async def _stream_idle(self) -> bool:
        try:
            groups = await self._redis.xinfo_groups(self._stream)
        except ResponseError:
            return True  # no stream: Redis lost it
        mine = [group for group in groups if group["name"] == self._group]
        if not mine:  # no worker has read it yet
            return int(await self._redis.xlen(self._stream)) == 0
        return mine[0]["pending"] == 0 and not mine[0].get("lag")

    async def _announce(self, ids: Sequence[int]) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            for start in range(0, len(ids), IDS_PER_ENTRY):
                chunk = ids[start:start + IDS_PER_ENTRY]
                pipe.xadd(self._stream, {"ids": ",".join(map(str, chunk))})
            await pipe.execute()

    async def _read(self, consumer: str, count: int, block_ms: int,
                    claim_idle_ms: int) -> tuple[list[tuple[str, dict[str, str]]], int]:
        _, claimed, _ = await self._redis.xautoclaim(
            self._stream, self._group, consumer, min_idle_time=claim_idle_ms,
            start_id="0-0", count=count)
        claimed = [(entry_id, fields) for entry_id, fields in claimed if fields]
        if claimed:
            return claimed, len(claimed)
        answer = await self._redis.xreadgroup(self._group, consumer, {self._stream: ">"},
                                              count=count, block=block_ms)
        return [entry for _, entries in answer or [] for entry in entries], 0


def _to_json(raw: RawMention) -> dict[str, Any]:
    author = raw.author
    data = {
        "source": raw.source, "external_id": raw.external_id, "text": raw.text,
        "published_at": raw.published_at.isoformat(), "url": raw.url,
        "platform": raw.platform, "thread_id": raw.thread_id, "parent_id": raw.parent_id,
        "rating": raw.rating,
        "author": {"id": author.id, "name": author.name, "handle": author.handle,
                   "url": author.url},
    }
    # Rebuilt only when a field holds a NUL: a thousand-mention delivery is queued
    # within the request, and rebuilding each mention's dict doubled its cost.
    fields = (raw.source, raw.external_id, raw.text, raw.url, raw.platform, raw.thread_id,
              raw.parent_id, author.id, author.name, author.handle, author.url)
    return _without_nul(data) if any(f and "\x00" in f for f in fields) else data


def _without_nul(data: dict[str, Any]) -> dict[str, Any]:
    """Drop NUL, which PostgreSQL's JSON cannot hold (the pipeline drops control
    characters from what it stores anyway)."""
    return {key: _without_nul(value) if isinstance(value, dict)
            else value.replace("\x00", "") if isinstance(value, str) else value
            for key, value in data.items()}


def from_json(data: dict[str, Any]) -> RawMention:
    """Return the mention an inbox row holds; raise KeyError, TypeError or ValueError
    if it holds something else."""
    return RawMention(
        source=data["source"], external_id=data["external_id"], text=data["text"],
        published_at=datetime.fromisoformat(data["published_at"]), url=data.get("url"),
        platform=data.get("platform"), thread_id=data.get("thread_id"),
        parent_id=data.get("parent_id"), rating=data.get("rating"),
        author=Author(**data.get("author") or {}),
    )
