"""Repositories over one connection: cases, mentions, events."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import Row, Text, bindparam, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError

from socialcare.bot.errors import CaseNotFound, ConcurrentUpdate, DuplicateMention
from socialcare.bot.metrics import FACT_EVENTS
from socialcare.bot.model import (
    OPEN_STATES,
    Author,
    Case,
    Event,
    EventKind,
    Mention,
    Priority,
    State,
    Tier,
)
from socialcare.storage import bulk, wallboard
from socialcare.storage.schema import cases, events, mentions

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

# Keeps every IN (...) list well under SQLite's and asyncpg's bind-parameter limits.
CHUNK = 500
T = TypeVar("T")

_CASE_FIELDS = [f.name for f in dataclasses.fields(Case) if f.name != "id"]
# Orders cases by their priority, the most pressing first.
_PRIORITY_RANK = sa.case({p.value: p.rank for p in Priority}, value=cases.c.priority,
                         else_=len(Priority))
# Open cases in the order they are worked: earliest deadline, then the most pressing.
_WORK_ORDER = (cases.c.response_due_at.asc().nulls_last(), _PRIORITY_RANK, cases.c.id)


def _chunks(items: Collection[T]) -> Iterator[list[T]]:
    items = list(items)
    for start in range(0, len(items), CHUNK):
        yield items[start:start + CHUNK]


# `save_many` on PostgreSQL: every case's row as one array per column, each case
# stored if still at the version it was read at; the ids of those stored come back.
_SAVE_MANY = text(
    "UPDATE cases SET "
    + ", ".join(f"{name} = given.{name}" for name in _CASE_FIELDS if name != "version")
    + ", version = given.version + 1 FROM unnest("
    + ", ".join(f":{c.name}" for c in cases.columns) + ") AS given("
    + ", ".join(c.name for c in cases.columns) + ") "
    "WHERE cases.id = given.id AND cases.version = given.version RETURNING cases.id"
).bindparams(*(bindparam(c.name, type_=ARRAY(c.type)) for c in cases.columns))


def _case_row(case: Case) -> dict[str, Any]:
    row = {name: getattr(case, name) for name in _CASE_FIELDS}
    row["topics"], row["places"] = ",".join(case.topics), ",".join(case.places)
    return row


def names(joined: str | None) -> tuple[str, ...]:
    """Return the names a comma-separated column holds."""
    return tuple(n for n in (joined or "").split(",") if n)


def _case(row: Row[Any]) -> Case:
    values = row._mapping
    return case_of([values[name] for name in CASE_FIELDS])


# The case's fields in the order `Case` takes them; a case built from its values by
# position takes a quarter of the time it takes by name (2.5 µs against 10 µs).
CASE_FIELDS = [f.name for f in dataclasses.fields(Case)]
_TIER, _PRIORITY, _STATE, _TOPICS, _PLACES = (
    CASE_FIELDS.index(name) for name in ("tier", "priority", "state", "topics", "places"))


def case_of(values: Sequence[Any]) -> Case:
    """Return the case whose column values are given in the order of `CASE_FIELDS`."""
    given = list(values)
    given[_TIER] = Tier(given[_TIER])
    given[_PRIORITY] = Priority(given[_PRIORITY])
    given[_STATE] = State(given[_STATE])
    given[_TOPICS], given[_PLACES] = names(given[_TOPICS]), names(given[_PLACES])
    return Case(*given)


# A case by id, and a changed case stored if still at the version it was read at: built
# once (building a statement of every column anew costs each claim a millisecond).
_GET = select(cases).where(cases.c.id == bindparam("case_id"))
_SAVE = update(cases).where(cases.c.id == bindparam("case_id"),
                            cases.c.version == bindparam("read_version"))


class SqlCaseRepository:
    """Cases in the `cases` table."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def get(self, case_id: int) -> Case:
        """Return the case, or raise CaseNotFound."""
        row = (await self._conn.execute(_GET, {"case_id": case_id})).first()
        if row is None:
            raise CaseNotFound(case_id)
        return _case(row)

    async def get_many(self, case_ids: Collection[int]) -> dict[int, Case]:
        """Return the cases that exist among these ids."""
        found: dict[int, Case] = {}
        for chunk in _chunks(case_ids):
            for row in await self._conn.execute(select(cases).where(cases.c.id.in_(chunk))):
                found[row.id] = _case(row)
        return found

    async def add(self, new: Sequence[Case]) -> None:
        """Store new cases and set their ids."""
        if not new:
            return
        ids = await bulk.insert_returning_ids(self._conn, cases,
                                              [_case_row(case) for case in new])
        for case, case_id in zip(new, ids, strict=True):
            case.id = case_id

    async def save(self, case: Case) -> None:
        """Store a changed case if it is still at the version it was read at."""
        result = await self._conn.execute(_SAVE, _case_row(case) | {
            "version": case.version + 1, "case_id": case.id, "read_version": case.version})
        if result.rowcount != 1:
            raise ConcurrentUpdate(f"case #{case.id} changed since version {case.version}")
        case.version += 1

    async def save_many(self, changed: Sequence[Case]) -> list[Case]:
        """Store changed cases, each if it is still at the version it was read at;
        return those stored (the others changed meanwhile and are left as they are).

        On PostgreSQL one statement stores them all (an update from arrays, one per
        column), which a sweep of hundreds of cases needs: a statement each would pay
        a round trip each. SQLite, in-process, stores them one by one."""
        if self._conn.dialect.name != "postgresql":
            stored = []
            for case in changed:
                try:
                    await self.save(case)
                except ConcurrentUpdate:
                    continue
                stored.append(case)
            return stored
        if not changed:
            return []
        rows = [_case_row(case) | {"id": case.id} for case in changed]
        result = await self._conn.execute(
            _SAVE_MANY, {c.name: [row[c.name] for row in rows] for c in cases.columns})
        ids = set(result.scalars())
        stored = [case for case in changed if case.id in ids]
        for case in stored:
            case.version += 1
        return stored

    async def list_open(self, *, limit: int = 500) -> list[Case]:
        """Return open cases, earliest response deadline first (urgent first among equal
        deadlines).

        Each state and priority's first `limit` are read in the order of their index
        (`ix_cases_queue`: deadline, then id; those with no deadline after), a few rows
        each, then merged and joined to their rows in the same statement: sorting the
        whole open queue for its head took seconds with 100,000 open cases on SQLite,
        and a second round trip for the rows was a fifth of the wallboard's time."""
        if limit <= 0:
            return []
        return [_case(row) for row in await self._conn.execute(_queue_head(),
                                                                {"limit": limit})]

    async def list_queue(self, holder: str, *, unclaimed: bool, limit: int,
                         languages: Collection[str] = ()) -> tuple[list[Case], int]:
        """Return the open cases `holder` holds (and, with `unclaimed`, the new and
        reopened ones — in `languages` or of no known language, if any are given),
        earliest response deadline first (urgent first among equal deadlines), at most
        `limit`; and the count."""
        wanted = cases.c.claimed_by == holder
        if unclaimed:
            waiting = cases.c.state.in_([State.NEW.value, State.REOPENED.value])
            if languages:
                waiting = waiting & or_(cases.c.language.in_(list(languages)),
                                        cases.c.language.is_(None))
            wanted = or_(wanted, waiting)
        where = (cases.c.state.in_([s.value for s in OPEN_STATES]), wanted)
        rows = await self._conn.execute(
            select(cases).where(*where)
            .order_by(*_WORK_ORDER)
            .limit(limit)
        )
        found = [_case(row) for row in rows]
        if len(found) < limit:
            return found, len(found)
        total = await self._conn.scalar(select(func.count()).select_from(cases).where(*where))
        return found, int(total or 0)

    async def count_waiting_elsewhere(self, languages: Collection[str]) -> int:
        """Count the new and reopened cases in a known language not among `languages`."""
        return int(await self._conn.scalar(
            select(func.count()).select_from(cases).where(
                cases.c.state.in_([State.NEW.value, State.REOPENED.value]),
                cases.c.language.is_not(None), cases.c.language.not_in(list(languages)))) or 0)

    async def published_between(self, start: datetime, end: datetime) -> list[int]:
        """Return the ids of cases whose customer published in [start, end)."""
        rows = await self._conn.execute(
            select(cases.c.id)
            .where(cases.c.published_at >= start, cases.c.published_at < end)
            .order_by(cases.c.id)
        )
        return [case_id for (case_id,) in rows]

    async def count_by_state(self) -> dict[State, int]:
        """Count cases per state."""
        rows = await self._conn.execute(
            select(cases.c.state, func.count()).group_by(cases.c.state)
        )
        return {State(state): count for state, count in rows}

    async def count_open(self) -> dict[Tier, int]:
        """Count open cases per tier (the counts kept by `socialcare.storage.wallboard`)."""
        return await wallboard.open_counts(self._conn)

    async def list_due(self, now: datetime, *, limit: int) -> list[Case]:
        """Return cases whose next SLA alert is due, earliest first."""
        rows = await self._conn.execute(
            select(cases)
            .where(cases.c.next_alert_at <= now)
            .order_by(cases.c.next_alert_at)
            .limit(limit)
        )
        return [_case(row) for row in rows]

    async def next_alert(self) -> datetime | None:
        """Return when the earliest SLA alert of any case is due (None: none is)."""
        found = await self._conn.execute(select(func.min(cases.c.next_alert_at)))
        at: datetime | None = found.scalar_one_or_none()
        return at


# The queue's limit, written into the statement: with a bound `LIMIT $1` PostgreSQL
# cannot tell that a few rows are read, its generic plan looks dear, and it plans the
# statement anew at every run (2–4 ms of the server's time a board).
_LIMIT = bindparam("limit", type_=sa.Integer, literal_execute=True)


@functools.cache
def _queue_heads() -> Any:
    """The first rows of each open state and priority, with a deadline and without, in
    the order of `ix_cases_queue` (built once: two dozen subqueries)."""
    heads = []
    for state in sorted(OPEN_STATES):
        for priority in Priority:
            mine = (cases.c.state == state.value) & (cases.c.priority == priority.value)
            for due in (cases.c.response_due_at.is_not(None), cases.c.response_due_at.is_(None)):
                heads.append(
                    select(cases.c.id, cases.c.response_due_at, cases.c.priority)
                    .where(mine, due).order_by(cases.c.response_due_at, cases.c.id)
                    .limit(_LIMIT).subquery().select())
    return sa.union_all(*heads)


# The columns of `queue_first` that put its cases in work order.
QUEUE_ORDER = ("o0", "o1", "o2", "o3")


@functools.cache
def queue_first() -> Any:
    """The open queue's first `limit` cases in work order, as a subquery: their `id`
    and the keys to order them by (`QUEUE_ORDER`): the heads of `_queue_heads` merged
    (deadline, those without last; urgent first; id)."""
    heads = _queue_heads().subquery()
    rank = sa.case({p.value: p.rank for p in Priority}, value=heads.c.priority)
    order = (heads.c.response_due_at.is_(None), heads.c.response_due_at, rank, heads.c.id)
    return (select(heads.c.id, *(o.label(name) for name, o in zip(QUEUE_ORDER, order,
                                                                   strict=True)))
            .order_by(*order).limit(_LIMIT).subquery())


@functools.cache
def _queue_head() -> Any:
    """The open queue's first `limit` cases, whole rows, in work order."""
    first = queue_first()
    return (select(cases).join(first, first.c.id == cases.c.id)
            .order_by(*(first.c[name] for name in QUEUE_ORDER)))


def _mention_row(m: Mention) -> dict[str, Any]:
    return {
        "case_id": m.case_id, "source": m.source, "external_id": m.external_id,
        "platform": m.platform, "text": m.text, "published_at": m.published_at,
        "collected_at": m.collected_at, "thread_key": m.thread_key, "parent_id": m.parent_id,
        "url": m.url, "author_id": m.author.id, "author_name": m.author.name,
        "author_handle": m.author.handle, "author_url": m.author.url,
        "from_brand": m.from_brand,
    }


def _mention(row: Row[Any]) -> Mention:
    return mention_from(row._mapping)


def mention_from(row: Mapping[str, Any]) -> Mention:
    """Return the mention a row's values (by column name) hold."""
    return Mention(
        id=row["id"], case_id=row["case_id"], source=row["source"],
        external_id=row["external_id"], platform=row["platform"], text=row["text"],
        published_at=row["published_at"], collected_at=row["collected_at"],
        thread_key=row["thread_key"], parent_id=row["parent_id"], url=row["url"],
        from_brand=row["from_brand"],
        author=Author(id=row["author_id"], name=row["author_name"],
                      handle=row["author_handle"], url=row["author_url"]),
    )


class SqlMentionRepository:
    """Mentions in the `mentions` table; (source, external_id) is unique."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def reserve(self, keys: Collection[tuple[str, str]], *,
                      threads: Collection[tuple[str, str]] = ()) -> None:
        """Hold these (source, external id) and (source, thread reference) keys until
        the transaction ends.

        On PostgreSQL a transaction-scoped advisory lock per key, all taken in one
        order, makes a second writer of the same mention — or of another mention of
        the same thread — wait for the first to commit and then see what it stored:
        the thread lookup that follows finds the first's case instead of opening a
        second. SQLite needs nothing: `BEGIN IMMEDIATE` already lets one writer in at a
        time.
        """
        if self._conn.dialect.name != "postgresql" or not (keys or threads):
            return
        flat = sorted({f"{source}\x1f{external_id}" for source, external_id in keys}
                      | {f"thread\x1f{source}\x1f{ref}" for source, ref in threads})
        await self._conn.execute(
            text(
                "SELECT pg_advisory_xact_lock(h) FROM ("
                " SELECT DISTINCT hashtextextended(k, 0) AS h FROM unnest(:keys) AS k ORDER BY h"
                ") AS ordered"
            ).bindparams(bindparam("keys", type_=ARRAY(Text))),
            {"keys": flat},
        )

    async def existing(self, keys: Collection[tuple[str, str]]) -> set[tuple[str, str]]:
        """Return which of these (source, external id) pairs are already stored."""
        by_source: dict[str, list[str]] = {}
        for source, external_id in keys:
            by_source.setdefault(source, []).append(external_id)
        found: set[tuple[str, str]] = set()
        for source, ids in by_source.items():
            for chunk in self._chunks(ids):
                among, values = bulk.any_of(self._conn, mentions.c.external_id, "ids", chunk)
                rows = await self._conn.execute(
                    select(mentions.c.external_id).where(mentions.c.source == source, among),
                    values)
                found.update((source, external_id) for (external_id,) in rows)
        return found

    async def threads(self, source: str, keys: Collection[str]) -> Mapping[str, tuple[int, str]]:
        """Map thread ids and external ids of stored mentions of a source to
        (case id, thread key); the latest case wins where a thread has several."""
        found: dict[str, tuple[int, str]] = {}
        for chunk in self._chunks(keys):
            ids, values = bulk.any_of(self._conn, mentions.c.external_id, "refs", chunk)
            threads, _ = bulk.any_of(self._conn, mentions.c.thread_key, "refs", chunk)
            rows = await self._conn.execute(
                select(mentions.c.external_id, mentions.c.thread_key, mentions.c.case_id)
                .where(mentions.c.source == source, or_(ids, threads))
                .order_by(mentions.c.case_id, mentions.c.id),
                values,
            )
            wanted = set(chunk)
            for external_id, thread_key, case_id in rows:
                for ref in {external_id, thread_key} & wanted:
                    found[ref] = (case_id, thread_key)
        return found

    def _chunks(self, items: Collection[T]) -> Iterator[list[T]]:
        """All at once as one array on PostgreSQL, else in `IN` lists of `CHUNK`."""
        if self._conn.dialect.name == "postgresql":
            return iter([list(items)] if items else [])
        return _chunks(items)

    async def add(self, new: Sequence[Mention]) -> None:
        """Store mentions; raise DuplicateMention if one was stored meanwhile."""
        if not new:
            return
        # One key order for every writer: two batches that share mentions then wait for
        # each other instead of deadlocking on the unique index.
        rows = sorted((_mention_row(m) for m in new), key=lambda r: (r["source"], r["external_id"]))
        try:
            await bulk.insert_rows(self._conn, mentions, rows)
        except IntegrityError as error:
            if _violates_unique_mention(error):
                raise DuplicateMention(str(error.orig)) from error
            raise

    async def for_case(self, case_id: int) -> list[Mention]:
        """Return a case's mentions, oldest first."""
        rows = await self._conn.execute(
            select(mentions).where(mentions.c.case_id == case_id).order_by(mentions.c.id)
        )
        return [_mention(row) for row in rows]

    async def first_of(self, case_ids: Collection[int]) -> dict[int, Mention]:
        """Return the first mention of each of these cases."""
        found: dict[int, Mention] = {}
        for chunk in _chunks(case_ids):
            firsts = (
                select(func.min(mentions.c.id))
                .where(mentions.c.case_id.in_(chunk))
                .group_by(mentions.c.case_id)
            )
            for row in await self._conn.execute(select(mentions).where(mentions.c.id.in_(firsts))):
                found[row.case_id] = _mention(row)
        return found


def _violates_unique_mention(error: IntegrityError) -> bool:
    message = str(error.orig)
    return (
        "uq_mentions_source_external_id" in message  # PostgreSQL names the constraint
        or "mentions.source, mentions.external_id" in message  # SQLite names the columns
    )


def _event(row: Row[Any]) -> Event:
    return Event(
        id=row.id, case_id=row.case_id, kind=EventKind(row.kind), actor=row.actor, at=row.at,
        data=row.data,
    )


class SqlEventRepository:
    """Events in the append-only `events` table."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn
        # Cases whose facts must be re-established before the transaction commits: those
        # that got an event the facts are made of (`FACT_EVENTS`).
        self.touched: set[int] = set()
        # Those of them whose topics and places rows are written first, or again.
        self.labelled: set[int] = set()
        self.relabelled: set[int] = set()
        # The whole history of the cases created in this transaction: every event of
        # theirs went through `add`, so their facts need not read them back.
        self._born: dict[int, list[Event]] = {}

    async def add(self, new: Iterable[Event]) -> None:
        """Append events."""
        new = list(new)
        for e in new:
            if e.kind is EventKind.CREATED:
                self._born.setdefault(e.case_id, [])
            history = self._born.get(e.case_id)
            if history is not None:
                history.append(e)
        self.labelled.update(e.case_id for e in new if e.kind is EventKind.CREATED)
        self.relabelled.update(e.case_id for e in new if e.kind is EventKind.TOPICS_CHANGED)
        rows = [
            {"case_id": e.case_id, "kind": e.kind.value, "actor": e.actor, "at": e.at,
             "data": dict(e.data)}
            for e in new
        ]
        if rows:
            await bulk.insert_rows(self._conn, events, rows)
            self.touched.update(e.case_id for e in new if e.kind in FACT_EVENTS)

    async def histories(self, case_ids: Collection[int]) -> dict[int, list[Event]]:
        """Return the events of several cases, as `for_cases`, without reading back
        those of cases created in this transaction."""
        found = {case_id: list(self._born[case_id]) for case_id in case_ids
                 if case_id in self._born}
        found |= await self.for_cases([i for i in case_ids if i not in self._born])
        return found

    async def for_case(self, case_id: int) -> list[Event]:
        """Return a case's events in the order they happened."""
        return (await self.for_cases([case_id])).get(case_id, [])

    async def for_cases(self, case_ids: Collection[int]) -> dict[int, list[Event]]:
        """Return the events of several cases, each list in order."""
        found: dict[int, list[Event]] = {}
        for chunk in _chunks(case_ids):
            rows = await self._conn.execute(
                select(events).where(events.c.case_id.in_(chunk)).order_by(events.c.id)
            )
            for row in rows:
                found.setdefault(row.case_id, []).append(_event(row))
        return found
