"""Announcements, their copies, receipts, events and answered cases in SQL."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from socialcare.bot.announcements.model import (
    Announcement,
    AnnouncementEvent,
    AnnouncementState,
    Copy,
    Outlet,
    Receipt,
)
from socialcare.bot.errors import AnnouncementNotFound, ConcurrentUpdate
from socialcare.storage.schema import (
    announcement_answers,
    announcement_copies,
    announcement_events,
    announcement_receipts,
    announcements,
)

_FIELDS = ("text", "author", "created_at", "until", "revision", "corrected_at", "ended_at",
           "ended_by", "reminded_at")
_COPY_FIELDS = ("message_id", "pinned", "revision_sent", "attempts", "last_error",
                "delivered_at", "gave_up_at", "posting_since")


def _row(a: Announcement) -> dict[str, Any]:
    values = {name: getattr(a, name) for name in _FIELDS}
    values |= {"state": a.state.value, "audiences": list(a.audiences),
               "keywords": list(a.keywords), "topics": list(a.topics)}
    return values


def _announcement(r: Any) -> Announcement:
    return Announcement(
        text=r.text, author=r.author, created_at=r.created_at, until=r.until,
        audiences=tuple(r.audiences), keywords=tuple(r.keywords), topics=tuple(r.topics),
        state=AnnouncementState(r.state), revision=r.revision, corrected_at=r.corrected_at,
        ended_at=r.ended_at, ended_by=r.ended_by, reminded_at=r.reminded_at,
        version=r.version, id=r.id,
    )


def _copy(r: Any) -> Copy:
    return Copy(
        announcement_id=r.announcement_id, audience=r.audience, outlet=Outlet(r.outlet),
        address=r.address, next_try_at=r.next_try_at, message_id=r.message_id,
        pinned=r.pinned, revision_sent=r.revision_sent, attempts=r.attempts,
        last_error=r.last_error, delivered_at=r.delivered_at, gave_up_at=r.gave_up_at,
        posting_since=r.posting_since, leased_until=r.leased_until, changes=r.changes, id=r.id,
    )


class SqlAnnouncementRepository:
    """Announcements in the `announcement*` tables."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, announcement: Announcement, copies: Sequence[Copy]) -> None:
        """Store a new announcement with its copies; set their ids."""
        result = await self._conn.execute(
            insert(announcements).returning(announcements.c.id),
            [_row(announcement) | {"version": 0}])
        announcement.id = result.scalar_one()
        for copy in copies:
            copy.announcement_id = announcement.id
            copy.id = (await self._conn.execute(
                insert(announcement_copies).returning(announcement_copies.c.id),
                [{"announcement_id": copy.announcement_id, "audience": copy.audience,
                  "outlet": copy.outlet.value, "address": copy.address,
                  "next_try_at": copy.next_try_at, "leased_until": None, "changes": 0}
                 | {name: getattr(copy, name) for name in _COPY_FIELDS}],
            )).scalar_one()

    async def get(self, announcement_id: int) -> Announcement:
        """Return the announcement, or raise AnnouncementNotFound."""
        row = (await self._conn.execute(
            select(announcements).where(announcements.c.id == announcement_id))).first()
        if row is None:
            raise AnnouncementNotFound(announcement_id)
        return _announcement(row)

    async def save(self, announcement: Announcement) -> None:
        """Store a changed announcement if it is still at the version it was read at."""
        result = await self._conn.execute(
            update(announcements)
            .where(announcements.c.id == announcement.id,
                   announcements.c.version == announcement.version)
            .values(**_row(announcement), version=announcement.version + 1))
        if result.rowcount != 1:
            raise ConcurrentUpdate(f"announcement #{announcement.id} changed meanwhile")
        announcement.version += 1

    async def add_events(self, new: Sequence[AnnouncementEvent]) -> None:
        """Append announcement events."""
        if new:
            await self._conn.execute(insert(announcement_events), [
                {"announcement_id": e.announcement_id, "kind": e.kind, "actor": e.actor,
                 "at": e.at, "data": dict(e.data)} for e in new])

    async def events_for(self, announcement_id: int) -> list[AnnouncementEvent]:
        """Return an announcement's events in order."""
        rows = await self._conn.execute(
            select(announcement_events)
            .where(announcement_events.c.announcement_id == announcement_id)
            .order_by(announcement_events.c.id))
        return [AnnouncementEvent(r.announcement_id, r.kind, r.actor, r.at, r.data, r.id)
                for r in rows]

    async def in_force(self, now: datetime) -> list[Announcement]:
        """Return the active announcements whose `until` has not come, newest first."""
        rows = await self._conn.execute(
            select(announcements)
            .where(announcements.c.state == AnnouncementState.ACTIVE.value,
                   or_(announcements.c.until.is_(None), announcements.c.until > now))
            .order_by(announcements.c.id.desc()))
        return [_announcement(r) for r in rows]

    async def published_between(self, start: datetime, end: datetime) -> list[Announcement]:
        """Return the announcements made in [start, end), oldest first."""
        rows = await self._conn.execute(
            select(announcements)
            .where(announcements.c.created_at >= start, announcements.c.created_at < end)
            .order_by(announcements.c.created_at, announcements.c.id))
        return [_announcement(r) for r in rows]

    async def expiring(self, now: datetime, *, limit: int) -> list[Announcement]:
        """Return active announcements whose `until` has come."""
        rows = await self._conn.execute(
            select(announcements)
            .where(announcements.c.state == AnnouncementState.ACTIVE.value,
                   announcements.c.until <= now)
            .order_by(announcements.c.until).limit(limit))
        return [_announcement(r) for r in rows]

    async def copies_of(self, announcement_ids: Collection[int]) -> dict[int, list[Copy]]:
        """Return the copies of these announcements."""
        found: dict[int, list[Copy]] = {}
        if not announcement_ids:
            return found
        rows = await self._conn.execute(
            select(announcement_copies)
            .where(announcement_copies.c.announcement_id.in_(list(announcement_ids)))
            .order_by(announcement_copies.c.id))
        for r in rows:
            found.setdefault(r.announcement_id, []).append(_copy(r))
        return found

    async def copies_due(self, now: datetime, *, limit: int) -> list[Copy]:
        """Return copies due now and not leased, longest waiting first."""
        c = announcement_copies.c
        rows = await self._conn.execute(
            select(announcement_copies)
            .where(c.next_try_at <= now, or_(c.leased_until.is_(None), c.leased_until < now))
            .order_by(c.next_try_at, c.id).limit(limit))
        return [_copy(r) for r in rows]

    async def make_due(self, announcement_id: int, *, at: datetime) -> None:
        """Make every copy of the announcement that has not given up due at `at`."""
        c = announcement_copies.c
        await self._conn.execute(
            update(announcement_copies)
            .where(c.announcement_id == announcement_id, c.gave_up_at.is_(None))
            .values(next_try_at=at, changes=c.changes + 1))

    async def lease(self, copy: Copy, *, now: datetime, until: datetime) -> bool:
        """Take a copy until `until` if it is still as read and not leased."""
        c = announcement_copies.c
        result = await self._conn.execute(
            update(announcement_copies)
            .where(c.id == copy.id, c.next_try_at == copy.next_try_at,
                   c.changes == copy.changes,
                   or_(c.leased_until.is_(None), c.leased_until < now))
            .values(leased_until=until))
        if result.rowcount != 1:
            return False
        copy.leased_until = until
        return True

    async def save_copy(self, copy: Copy, *, keep_lease: bool = False) -> None:
        """Store how far a leased copy got; see the protocol."""
        c = announcement_copies.c
        values: dict[str, Any] = {name: getattr(copy, name) for name in _COPY_FIELDS}
        if not keep_lease:
            values["leased_until"] = None
            # Made due again while it was worked (a correction): it stays due.
            values["next_try_at"] = case((c.changes == copy.changes, copy.next_try_at),
                                         else_=c.next_try_at)
        await self._conn.execute(
            update(announcement_copies)
            .where(c.id == copy.id, c.leased_until == copy.leased_until).values(**values))
        if not keep_lease:
            copy.leased_until = None

    async def posted(self, copy: Copy, *, message_id: str) -> None:
        """Record at once where a chat copy was posted."""
        c = announcement_copies.c
        await self._conn.execute(
            update(announcement_copies).where(c.id == copy.id)
            .values(message_id=message_id, posting_since=None))

    async def find_copy(self, announcement_id: int, outlet: str, address: str) -> Copy | None:
        """Return the announcement's copy in a place, if it has one."""
        c = announcement_copies.c
        row = (await self._conn.execute(
            select(announcement_copies)
            .where(c.announcement_id == announcement_id, c.outlet == outlet,
                   c.address == address))).first()
        return None if row is None else _copy(row)

    async def acknowledge(self, receipt: Receipt) -> bool:
        """Record a Got it; False if this person had pressed it already."""
        dialect = postgresql if self._conn.dialect.name == "postgresql" else sqlite
        result = await self._conn.execute(
            dialect.insert(announcement_receipts).values(
                announcement_id=receipt.announcement_id, messenger=receipt.messenger,
                user_id=receipt.user_id, name=receipt.name, channel=receipt.channel,
                at=receipt.at,
            ).on_conflict_do_nothing())
        return bool(result.rowcount == 1)

    async def receipts(self, announcement_ids: Collection[int]) -> dict[int, list[Receipt]]:
        """Return the receipts of these announcements, oldest first."""
        found: dict[int, list[Receipt]] = {}
        if not announcement_ids:
            return found
        r = announcement_receipts.c
        rows = await self._conn.execute(
            select(announcement_receipts)
            .where(r.announcement_id.in_(list(announcement_ids))).order_by(r.at, r.user_id))
        for row in rows:
            found.setdefault(row.announcement_id, []).append(Receipt(
                row.announcement_id, row.messenger, row.user_id, row.name, row.channel, row.at))
        return found

    async def record_answer(self, announcement_id: int, case_id: int, *, by: str,
                            at: datetime) -> None:
        """Record that a case was answered with the announcement (once per case)."""
        dialect = postgresql if self._conn.dialect.name == "postgresql" else sqlite
        await self._conn.execute(
            dialect.insert(announcement_answers)
            .values(announcement_id=announcement_id, case_id=case_id, by=by, at=at)
            .on_conflict_do_nothing())

    async def answered(self, announcement_ids: Collection[int]) -> dict[int, int]:
        """Count the cases answered with each of these announcements."""
        if not announcement_ids:
            return {}
        a = announcement_answers.c
        rows = await self._conn.execute(
            select(a.announcement_id, func.count())
            .where(a.announcement_id.in_(list(announcement_ids)))
            .group_by(a.announcement_id))
        return {row[0]: int(row[1]) for row in rows}
