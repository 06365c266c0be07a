"""The web console's sign-in records: password hashes, one-time links, sessions.

Secrets are never stored, only their hashes (the caller hashes). A link is used by a
conditional update, so that of two clicks on the same link exactly one signs in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from socialcare.bot.model import OPEN_STATES
from socialcare.storage import wallboard
from socialcare.storage.schema import (
    cards,
    cases,
    console_links,
    console_passwords,
    console_sessions,
    escalation_cases,
    escalations,
    events,
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


class SqlConsoleRepository:
    """The console's sign-in tables, and the marks its live pages watch."""

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
