"""The web console's sign-in records: password hashes, one-time links, sessions; and
what its live pages read.

Secrets are never stored, only their hashes (the caller hashes). A link is used by a
conditional update, so that of two clicks on the same link exactly one signs in.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, delete, func, insert, or_, select, true, update
from sqlalchemy.ext.asyncio import AsyncConnection

from socialcare.bot.model import OPEN_STATES, Case, Mention
from socialcare.bot.reports import Period
from socialcare.storage import wallboard
from socialcare.storage.repositories import (
    CASE_FIELDS,
    QUEUE_ORDER,
    case_of,
    mention_from,
    queue_first,
)
from socialcare.storage.schema import (
    cards,
    cases,
    console_links,
    console_passwords,
    console_sessions,
    escalation_cases,
    escalations,
    events,
    mentions,
)


@dataclass(frozen=True)
class ConsoleSession:
    """A signed-in browser: whose it is, its CSRF token, and its times."""

    token_hash: str
    person_id: str
    csrf: str
    created_at: datetime
    seen_at: datetime
    expires_at: datetime
    ended_at: datetime | None = None


@dataclass(frozen=True)
class QueueMark:
    """What changes whenever the open queue does (in any process): the newest event,
    and the open cases' count and summed versions."""

    last_event: int
    open_cases: int
    versions: int


@dataclass(frozen=True)
class BoardRead:
    """The wallboard's data as one statement read it: the open queue's first cases in
    work order, each with its first mention, and the counts."""

    head: list[tuple[Case, Mention | None]]
    figures: wallboard.Figures


class SqlConsoleRepository:
    """The console's sign-in tables, and what its live pages read and watch."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def set_password(self, person_id: str, password_hash: str, *, at: datetime) -> None:
        """Store (or replace) a person's password hash."""
        await self._conn.execute(
            delete(console_passwords).where(console_passwords.c.person_id == person_id))
        await self._conn.execute(insert(console_passwords).values(
            person_id=person_id, hash=password_hash, set_at=at))

    async def password_hash(self, person_id: str) -> str | None:
        """Return a person's password hash, if an admin set one."""
        return (await self._conn.execute(
            select(console_passwords.c.hash).where(console_passwords.c.person_id == person_id)
        )).scalar()

    async def add_link(self, token_hash: str, person_id: str, *, at: datetime,
                       expires_at: datetime) -> None:
        """Store a one-time sign-in link."""
        await self._conn.execute(insert(console_links).values(
            token_hash=token_hash, person_id=person_id, created_at=at, expires_at=expires_at))

    async def link_owner(self, token_hash: str, *, now: datetime) -> str | None:
        """Return whose unused, unexpired link this is, without using it."""
        return (await self._conn.execute(
            select(console_links.c.person_id).where(
                console_links.c.token_hash == token_hash, console_links.c.used_at.is_(None),
                console_links.c.expires_at > now)
        )).scalar()

    async def use_link(self, token_hash: str, *, now: datetime) -> str | None:
        """Mark a link used and return its person; None if it is unknown, used or expired."""
        owner = await self.link_owner(token_hash, now=now)
        if owner is None:
            return None
        result = await self._conn.execute(
            update(console_links)
            .where(console_links.c.token_hash == token_hash, console_links.c.used_at.is_(None))
            .values(used_at=now)
        )
        return owner if result.rowcount == 1 else None

    async def add_session(self, session: ConsoleSession) -> None:
        """Store a new session."""
        await self._conn.execute(insert(console_sessions).values(
            token_hash=session.token_hash, person_id=session.person_id, csrf=session.csrf,
            created_at=session.created_at, seen_at=session.seen_at,
            expires_at=session.expires_at))

    async def session(self, token_hash: str) -> ConsoleSession | None:
        """Return a session, whatever its state."""
        row = (await self._conn.execute(
            select(console_sessions).where(console_sessions.c.token_hash == token_hash)
        )).first()
        return None if row is None else ConsoleSession(**row._mapping)

    async def touch_session(self, token_hash: str, *, at: datetime) -> None:
        """Record that the session was used at `at`."""
        await self._conn.execute(update(console_sessions)
                                 .where(console_sessions.c.token_hash == token_hash)
                                 .values(seen_at=at))

    async def end_session(self, token_hash: str, *, at: datetime) -> None:
        """Sign a session out."""
        await self._conn.execute(update(console_sessions)
                                 .where(console_sessions.c.token_hash == token_hash,
                                        console_sessions.c.ended_at.is_(None))
                                 .values(ended_at=at))

    async def end_sessions_of(self, person_id: str, *, at: datetime) -> int:
        """Sign every session of a person out; return how many were open."""
        result = await self._conn.execute(update(console_sessions)
                                          .where(console_sessions.c.person_id == person_id,
                                                 console_sessions.c.ended_at.is_(None),
                                                 console_sessions.c.expires_at > at)
                                          .values(ended_at=at))
        return result.rowcount

    async def purge(self, *, before: datetime) -> None:
        """Forget links and sessions that expired before `before`."""
        await self._conn.execute(delete(console_links)
                                 .where(console_links.c.expires_at < before))
        await self._conn.execute(delete(console_sessions).where(or_(
            console_sessions.c.expires_at < before, console_sessions.c.seen_at < before)))

    async def fold_counts(self, *, above: int = wallboard.FOLD_ROWS) -> None:
        """Fold the wallboard's rows of changes, if more than `above` have piled up
        (`socialcare.storage.wallboard.fold`)."""
        await wallboard.fold(self._conn, above=above)

    async def board(self, *, rows: int, period: Period, now: datetime) -> BoardRead:
        """Read the wallboard's data: the open queue's first `rows` cases
        (`SqlCaseRepository.list_open`) with their first mentions, the open cases per tier
        and `period`'s SLA counts (`socialcare.storage.wallboard.figures`).

        One statement, so that one state of the database answers and a board costs one
        round trip (eight, read one by one, took most of its time on a busy server)."""
        found = (await self._conn.execute(
            _board(), {"limit": rows, **wallboard.sla_parameters(period, now=now)})).all()
        # By position: a row is the figures, the case's columns (in the order `Case`
        # takes them), its first mention's.
        cases_at, mentions_at = _board_offsets()
        cases_end = cases_at + len(CASE_FIELDS)
        head = []
        for row in found:
            if row[cases_at] is None:  # the figures' row, joined to no case
                continue
            first = None
            if row[mentions_at] is not None:
                first = mention_from(dict(zip(_MENTION_NAMES, row[mentions_at:], strict=True)))
            head.append((case_of(row[cases_at:cases_end]), first))
        return BoardRead(head, wallboard.read_figures(found[0]._mapping))

    async def queue_mark(self) -> QueueMark:
        """Return the open queue's mark: two small indexed reads."""
        last_event = (await self._conn.execute(select(func.max(events.c.id)))).scalar()
        count, versions = (await self._conn.execute(
            select(func.count(), func.coalesce(func.sum(cases.c.version), 0))
            .where(cases.c.state.in_([s.value for s in OPEN_STATES]))
        )).one()
        return QueueMark(int(last_event or 0), int(count), int(versions))

    async def case_mark(self, case_id: int) -> str:
        """Return a mark of what a case's page shows (empty if there is no such case): it
        moves with the case's state, its events, its cards being posted and its
        escalations — not with each edit of a card, which follows every action a moment
        later and would reload the page of the agent who just acted."""
        mark = select(
            select(cases.c.version).where(cases.c.id == case_id).scalar_subquery(),
            select(func.max(events.c.id)).where(events.c.case_id == case_id)
            .scalar_subquery(),
            select(func.count(cards.c.message_id)).where(cards.c.case_id == case_id)
            .scalar_subquery(),
            select(func.sum(escalations.c.version))
            .where(escalations.c.id == escalation_cases.c.escalation_id,
                   escalation_cases.c.case_id == case_id).scalar_subquery(),
        )
        version, *others = (await self._conn.execute(mark)).one()
        if version is None:
            return ""
        return ".".join(str(value or 0) for value in (version, *others))


_MENTION_NAMES = [c.name for c in mentions.columns]


@functools.cache
def _board_offsets() -> tuple[int, int]:
    """Where a row of `_board` holds its case's columns and its mention's."""
    keys = list(_board().selected_columns.keys())
    return keys.index(CASE_FIELDS[0]), keys.index(f"m_{_MENTION_NAMES[0]}")


@functools.cache
def _board() -> Select[Any]:
    """The board's one statement: the figures' one row, joined to the queue's first
    `limit` cases (none: one row of figures alone) and each case's first mention, in
    work order. Built once."""
    first = queue_first()
    earliest = mentions.alias("earliest")
    head = (select(cases, select(func.min(earliest.c.id))
                   .where(earliest.c.case_id == cases.c.id).scalar_subquery()
                   .label("first_mention"), *(first.c[name] for name in QUEUE_ORDER))
            .join(first, first.c.id == cases.c.id).subquery("head"))
    figures = wallboard.figures().subquery("figures")
    return (select(figures, *(head.c[name] for name in CASE_FIELDS),
                   *(c.label(f"m_{c.name}") for c in mentions.columns))
            .select_from(figures.outerjoin(head, true())
                         .outerjoin(mentions, mentions.c.id == head.c.first_mention))
            .order_by(*(head.c[name] for name in QUEUE_ORDER)))
