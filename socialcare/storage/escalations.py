"""Escalations (with their linked cases and events) and notices in SQL."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from socialcare.bot.errors import ConcurrentUpdate, EscalationNotFound
from socialcare.bot.escalations import Category, Escalation, EscalationEvent, EscalationState
from socialcare.bot.notices import Notice
from socialcare.storage.schema import escalation_cases, escalation_events, escalations, notices

_FIELDS = ("category", "problem", "director", "raised_by", "raised_at", "assigned_at", "area",
           "state", "acknowledged_at", "decided_at", "decided_by", "decision", "closed_at",
           "next_ping_at", "pings")


def _row(e: Escalation) -> dict[str, Any]:
    values = {name: getattr(e, name) for name in _FIELDS}
    values["category"] = e.category.value
    values["state"] = e.state.value
    values["options"] = list(e.options)
    return values


class SqlEscalationRepository:
    """Escalations in the `escalations`, `escalation_cases` and `escalation_events` tables."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, escalation: Escalation) -> None:
        """Store a new escalation with its linked cases and set its id."""
        result = await self._conn.execute(
            insert(escalations).returning(escalations.c.id),
            [_row(escalation) | {"version": 0}],
        )
        escalation.id = result.scalar_one()
        await self._conn.execute(insert(escalation_cases), [
            {"escalation_id": escalation.id, "case_id": case_id}
            for case_id in escalation.case_ids
        ])

    async def get(self, escalation_id: int) -> Escalation:
        """Return the escalation, or raise EscalationNotFound."""
        found = await self._load(select(escalations).where(escalations.c.id == escalation_id))
        if not found:
            raise EscalationNotFound(escalation_id)
        return found[0]

    async def save(self, escalation: Escalation) -> None:
        """Store a changed escalation if it is still at the version it was read at."""
        result = await self._conn.execute(
            update(escalations)
            .where(escalations.c.id == escalation.id,
                   escalations.c.version == escalation.version)
            .values(**_row(escalation), version=escalation.version + 1)
        )
        if result.rowcount != 1:
            raise ConcurrentUpdate(f"escalation #{escalation.id} changed meanwhile")
        escalation.version += 1

    async def add_events(self, new: Sequence[EscalationEvent]) -> None:
        """Append escalation events."""
        if new:
            await self._conn.execute(insert(escalation_events), [
                {"escalation_id": e.escalation_id, "kind": e.kind, "actor": e.actor,
                 "at": e.at, "data": dict(e.data)}
                for e in new
            ])

    async def events_for(
        self, escalation_ids: Collection[int]
    ) -> dict[int, list[EscalationEvent]]:
        """Return the events of several escalations, each list in order."""
        found: dict[int, list[EscalationEvent]] = {}
        if not escalation_ids:
            return found
        rows = await self._conn.execute(
            select(escalation_events)
            .where(escalation_events.c.escalation_id.in_(list(escalation_ids)))
            .order_by(escalation_events.c.id)
        )
        for row in rows:
            found.setdefault(row.escalation_id, []).append(EscalationEvent(
                escalation_id=row.escalation_id, kind=row.kind, actor=row.actor, at=row.at,
                data=row.data, id=row.id,
            ))
        return found

    async def find(
        self, *, raised_since: datetime | None = None, raised_before: datetime | None = None,
        states: Collection[str] = (), categories: Collection[str] = (), limit: int = 200,
    ) -> list[Escalation]:
        """Return escalations, newest first, filtered."""
        query = select(escalations).order_by(escalations.c.raised_at.desc()).limit(limit)
        if raised_since is not None:
            query = query.where(escalations.c.raised_at >= raised_since)
        if raised_before is not None:
            query = query.where(escalations.c.raised_at < raised_before)
        if states:
            query = query.where(escalations.c.state.in_(list(states)))
        if categories:
            query = query.where(escalations.c.category.in_(list(categories)))
        return await self._load(query)

    async def list_due(self, now: datetime, *, limit: int) -> list[Escalation]:
        """Return escalations whose next reminder or hand-over is due."""
        return await self._load(
            select(escalations).where(escalations.c.next_ping_at <= now)
            .order_by(escalations.c.next_ping_at).limit(limit)
        )

    async def latest_for_cases(self, case_ids: Collection[int]) -> dict[int, Escalation]:
        """Return the newest escalation of each of these cases."""
        if not case_ids:
            return {}
        newest = (
            select(escalation_cases.c.case_id,
                   func.max(escalation_cases.c.escalation_id).label("escalation_id"))
            .where(escalation_cases.c.case_id.in_(list(case_ids)))
            .group_by(escalation_cases.c.case_id)
        ).subquery()
        rows = (await self._conn.execute(select(newest))).all()
        loaded = {e.id: e for e in await self._load(
            select(escalations).where(escalations.c.id.in_([r.escalation_id for r in rows]))
        )}
        return {r.case_id: loaded[r.escalation_id] for r in rows}

    async def _load(self, query: Any) -> list[Escalation]:
        rows = (await self._conn.execute(query)).all()
        if not rows:
            return []
        links: dict[int, list[int]] = {}
        for escalation_id, case_id in await self._conn.execute(
            select(escalation_cases.c.escalation_id, escalation_cases.c.case_id)
            .where(escalation_cases.c.escalation_id.in_([row.id for row in rows]))
            .order_by(escalation_cases.c.case_id)
        ):
            links.setdefault(escalation_id, []).append(case_id)
        return [_escalation(row, links.get(row.id, [])) for row in rows]


def _escalation(row: Row[Any], case_ids: list[int]) -> Escalation:
    values = {name: getattr(row, name) for name in _FIELDS}
    values["category"] = Category(row.category)
    values["state"] = EscalationState(row.state)
    return Escalation(**values, options=tuple(row.options), case_ids=tuple(case_ids),
                      version=row.version, id=row.id)


class SqlNoticeRepository:
    """Direct messages waiting in the `notices` table."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, new: Sequence[Notice]) -> None:
        """Store notices to send (their `created_at` must be set)."""
        if new:
            await self._conn.execute(insert(notices), [
                {"messenger": n.messenger, "recipient": n.recipient, "key": n.key,
                 "params": dict(n.params), "created_at": n.created_at}
                for n in new
            ])

    async def pending(self, *, messengers: Collection[str], limit: int) -> list[Notice]:
        """Return unsent, unclaimed notices, oldest first."""
        rows = await self._conn.execute(
            select(notices)
            .where(notices.c.sent_at.is_(None), notices.c.claimed_at.is_(None),
                   notices.c.messenger.in_(list(messengers)))
            .order_by(notices.c.id).limit(limit)
        )
        return [Notice(messenger=r.messenger, recipient=r.recipient, key=r.key,
                       params=r.params, created_at=r.created_at, id=r.id) for r in rows]

    async def claim(self, notice: Notice, *, at: datetime) -> bool:
        """Take a notice for sending; False if another worker took it."""
        result = await self._conn.execute(
            update(notices).where(notices.c.id == notice.id, notices.c.claimed_at.is_(None))
            .values(claimed_at=at)
        )
        return bool(result.rowcount == 1)

    async def release(self, notice: Notice) -> None:
        """Give a claimed notice back after a failed send."""
        await self._conn.execute(
            update(notices).where(notices.c.id == notice.id).values(claimed_at=None)
        )

    async def sent(self, notice: Notice, *, at: datetime) -> None:
        """Record a notice as sent."""
        await self._conn.execute(
            update(notices).where(notices.c.id == notice.id).values(sent_at=at)
        )
