"""Incidents, their linked cases and timelines in SQL."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, and_, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from socialcare.bot.errors import ConcurrentUpdate, IncidentNotFound
from socialcare.bot.incidents import (
    Incident,
    IncidentEvent,
    IncidentState,
    Key,
    Reply,
    Send,
    StaleSend,
)
from socialcare.bot.model import OPEN_STATES
from socialcare.storage.schema import (
    case_places,
    case_topics,
    cases,
    incident_cases,
    incident_events,
    incidents,
)

_FIELDS = ("topic", "place", "first_mention_at", "detected_at", "acknowledged_at",
           "answered_at", "answer", "answered_by", "announcement_id", "resolved_at",
           "resolved_by", "follow_up", "escalation_id")
_OPEN = [s.value for s in OPEN_STATES]


def _open_key(i: Incident) -> str | None:
    return f"{i.topic}|{i.place or ''}" if i.state is IncidentState.OPEN else None


def _row(i: Incident) -> dict[str, Any]:
    values = {name: getattr(i, name) for name in _FIELDS}
    values["state"] = i.state.value
    values["open_key"] = _open_key(i)
    values["explanation"] = {"count": i.count, "usual": i.usual,
                             "window_minutes": i.window_minutes}
    return values


def _incident(row: Row[Any]) -> Incident:
    m = row._mapping
    explained = m["explanation"]
    return Incident(
        **{name: m[name] for name in _FIELDS},
        count=int(explained["count"]), usual=explained.get("usual"),
        window_minutes=int(explained["window_minutes"]),
        state=IncidentState(m["state"]), version=m["version"], id=m["id"],
    )


class SqlIncidentRepository:
    """Incidents in the `incidents`, `incident_cases` and `incident_events` tables."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    def _insert(self, table: Any) -> Any:
        dialect = postgresql if self._conn.dialect.name == "postgresql" else sqlite
        return dialect.insert(table)

    async def counts(self, start: datetime, end: datetime) -> dict[Key, int]:
        """Count the cases published in [start, end) per topic and per topic and place (a
        mention found late counts when its customer wrote, not when it was found)."""
        window = and_(case_topics.c.published_at >= start, case_topics.c.published_at < end)
        found: dict[Key, int] = {}
        for topic, n in await self._conn.execute(
            select(case_topics.c.topic, func.count()).where(window)
            .group_by(case_topics.c.topic)
        ):
            found[(topic, None)] = int(n)
        for topic, place, n in await self._conn.execute(
            select(case_topics.c.topic, case_places.c.place, func.count())
            .join(case_places, case_places.c.case_id == case_topics.c.case_id)
            .where(window).group_by(case_topics.c.topic, case_places.c.place)
        ):
            found[(topic, place)] = int(n)
        return found

    async def first_cases(self, topics: Collection[str]) -> dict[str, datetime]:
        """Return when the first case of each topic was published."""
        found = {}
        for topic in topics:
            first = (await self._conn.execute(
                select(func.min(case_topics.c.published_at)).where(case_topics.c.topic == topic)
            )).scalar_one_or_none()
            if first is not None:
                found[topic] = first
        return found

    async def matching(self, topic: str, place: str | None, *, since: datetime,
                       unlinked_of: int | None = None) -> list[tuple[int, datetime]]:
        """Return the open cases of a topic (in a place) published since `since`."""
        query = (
            select(cases.c.id, cases.c.published_at)
            .join(case_topics, case_topics.c.case_id == cases.c.id)
            .where(case_topics.c.topic == topic, case_topics.c.published_at >= since,
                   cases.c.state.in_(_OPEN))
            .order_by(cases.c.id)
        )
        if place is not None:
            query = query.join(case_places, and_(case_places.c.case_id == cases.c.id,
                                                 case_places.c.place == place))
        if unlinked_of is not None:
            query = query.where(~select(incident_cases.c.case_id).where(
                incident_cases.c.incident_id == unlinked_of,
                incident_cases.c.case_id == cases.c.id).exists())
        return [(row.id, row.published_at) for row in await self._conn.execute(query)]

    async def add(self, incident: Incident) -> bool:
        """Store a new open incident; False if one of its topic and place is open."""
        result = await self._conn.execute(
            self._insert(incidents).values(**_row(incident), version=0)
            .on_conflict_do_nothing(index_elements=["open_key"])
            .returning(incidents.c.id)
        )
        found = result.scalar_one_or_none()
        if found is None:
            return False
        incident.id = found
        return True

    async def get(self, incident_id: int) -> Incident:
        """Return the incident, or raise IncidentNotFound."""
        row = (await self._conn.execute(
            select(incidents).where(incidents.c.id == incident_id))).first()
        if row is None:
            raise IncidentNotFound(incident_id)
        return _incident(row)

    async def save(self, incident: Incident) -> None:
        """Store a changed incident if it is still at the version it was read at."""
        result = await self._conn.execute(
            update(incidents)
            .where(incidents.c.id == incident.id, incidents.c.version == incident.version)
            .values(**_row(incident), version=incident.version + 1)
        )
        if result.rowcount != 1:
            raise ConcurrentUpdate(f"incident #{incident.id} changed meanwhile")
        incident.version += 1

    async def list_open(self) -> list[Incident]:
        """Return the open incidents."""
        rows = await self._conn.execute(
            select(incidents).where(incidents.c.state == IncidentState.OPEN.value)
            .order_by(incidents.c.id))
        return [_incident(row) for row in rows]

    async def detected_between(self, start: datetime, end: datetime
                               ) -> tuple[list[Incident], dict[int, int]]:
        """Return the incidents detected in [start, end) with their linked cases' counts."""
        rows = await self._conn.execute(
            select(incidents).where(incidents.c.detected_at >= start,
                                    incidents.c.detected_at < end).order_by(incidents.c.id))
        found = [_incident(row) for row in rows]
        counts = await self._conn.execute(
            select(incident_cases.c.incident_id, func.count())
            .where(incident_cases.c.incident_id.in_([i.id for i in found]),
                   incident_cases.c.removed_at.is_(None))
            .group_by(incident_cases.c.incident_id))
        return found, {incident_id: int(n) for incident_id, n in counts}

    async def resolved_since(self, since: datetime) -> list[Incident]:
        """Return the incidents resolved since `since`."""
        rows = await self._conn.execute(
            select(incidents).where(incidents.c.resolved_at >= since).order_by(incidents.c.id))
        return [_incident(row) for row in rows]

    async def list_recent(self, *, since: datetime, limit: int) -> list[Incident]:
        """Return the open incidents and those detected since `since`, newest first."""
        rows = await self._conn.execute(
            select(incidents)
            .where(or_(incidents.c.state == IncidentState.OPEN.value,
                       incidents.c.detected_at >= since))
            .order_by(incidents.c.id.desc()).limit(limit))
        return [_incident(row) for row in rows]

    async def link(self, incident_id: int, case_ids: Collection[int], *, by: str,
                   at: datetime) -> list[int]:
        """Link cases never linked before; return those linked now."""
        if not case_ids:
            return []
        known = set((await self._conn.execute(
            select(incident_cases.c.case_id).where(
                incident_cases.c.incident_id == incident_id,
                incident_cases.c.case_id.in_(list(case_ids)))
        )).scalars())
        new = [i for i in dict.fromkeys(case_ids) if i not in known]
        if new:
            await self._conn.execute(
                self._insert(incident_cases).on_conflict_do_nothing(),
                [{"incident_id": incident_id, "case_id": i, "joined_at": at, "joined_by": by}
                 for i in new])
        return new

    async def unremove(self, incident_id: int, case_ids: Collection[int]) -> None:
        """Forget that these cases were taken out: drop their links to link again."""
        await self._conn.execute(
            incident_cases.delete().where(incident_cases.c.incident_id == incident_id,
                                          incident_cases.c.case_id.in_(list(case_ids)),
                                          incident_cases.c.removed_at.is_not(None)))

    async def remove(self, incident_id: int, case_ids: Collection[int], *,
                     at: datetime) -> list[int]:
        """Take linked cases out; return those taken out now."""
        result = await self._conn.execute(
            update(incident_cases)
            .where(incident_cases.c.incident_id == incident_id,
                   incident_cases.c.case_id.in_(list(case_ids)),
                   incident_cases.c.removed_at.is_(None))
            .values(removed_at=at).returning(incident_cases.c.case_id))
        return sorted(result.scalars())

    async def case_ids(self, incident_id: int) -> list[int]:
        """Return the cases linked and not taken out, in order of joining."""
        rows = await self._conn.execute(
            select(incident_cases.c.case_id)
            .where(incident_cases.c.incident_id == incident_id,
                   incident_cases.c.removed_at.is_(None))
            .order_by(incident_cases.c.joined_at, incident_cases.c.case_id))
        return list(rows.scalars())

    def _linked(self, incident_id: int, case_id: int) -> Any:
        return and_(incident_cases.c.incident_id == incident_id,
                    incident_cases.c.case_id == case_id)

    async def set_send(self, incident_id: int, case_id: int, send: Send, status: Reply, *,
                       at: datetime | None = None) -> bool:
        """Set a linked case's status of the answer or follow-up if it has none yet."""
        column = incident_cases.c[send.value]
        values: dict[str, Any] = {send.value: status.value}
        if at is not None:
            values["sending_at"] = at
        result = await self._conn.execute(
            update(incident_cases)
            .where(self._linked(incident_id, case_id), column.is_(None)).values(**values))
        return bool(result.rowcount == 1)

    async def publishing(self, incident_id: int, case_id: int, send: Send, *,
                         at: datetime) -> None:
        """Record that a taken send's call to the platform begins now."""
        await self._conn.execute(
            update(incident_cases)
            .where(self._linked(incident_id, case_id),
                   incident_cases.c[send.value] == Reply.SENDING.value)
            .values(**{send.value: Reply.PUBLISHING.value}, sending_at=at))

    async def end_send(self, incident_id: int, case_id: int, send: Send, status: Reply, *,
                       at: datetime | None, since: datetime) -> bool:
        """Record a send's outcome if it is still the one taken or begun at `since`."""
        values: dict[str, Any] = {send.value: status.value, "sending_at": None}
        if at is not None:
            values["replied_at" if send is Send.ANSWER else "follow_up_at"] = at
        result = await self._conn.execute(
            update(incident_cases)
            .where(self._linked(incident_id, case_id),
                   incident_cases.c[send.value].in_([Reply.SENDING.value,
                                                     Reply.PUBLISHING.value]),
                   incident_cases.c.sending_at == since)
            .values(**values))
        return bool(result.rowcount == 1)

    async def stale_sends(self, *, before: datetime) -> list[StaleSend]:
        """Return the sends taken or begun before `before` and never settled."""
        under_way = [Reply.SENDING.value, Reply.PUBLISHING.value]
        rows = await self._conn.execute(
            select(incident_cases.c.incident_id, incident_cases.c.case_id,
                   incident_cases.c.reply, incident_cases.c.follow_up,
                   incident_cases.c.sending_at)
            .where(incident_cases.c.sending_at < before,
                   or_(incident_cases.c.reply.in_(under_way),
                       incident_cases.c.follow_up.in_(under_way)))
            .order_by(incident_cases.c.sending_at, incident_cases.c.case_id))
        found = []
        for row in rows:
            send = Send.ANSWER if row.reply in under_way else Send.FOLLOW_UP
            found.append(StaleSend(row.incident_id, row.case_id, send,
                                   Reply(row._mapping[send.value]), row.sending_at))
        return found

    async def requeue(self, send: StaleSend) -> bool:
        """Give a stale send that never reached the platform back to the queue."""
        result = await self._conn.execute(
            update(incident_cases)
            .where(self._linked(send.incident_id, send.case_id),
                   incident_cases.c[send.send.value] == Reply.SENDING.value,
                   incident_cases.c.sending_at == send.since)
            .values(**{send.send.value: None}, sending_at=None))
        return bool(result.rowcount == 1)

    async def replies(self, incident_id: int, send: Send = Send.ANSWER
                      ) -> dict[int, str | None]:
        """Return each linked case's status of the answer (or of the follow-up)."""
        rows = await self._conn.execute(
            select(incident_cases.c.case_id, incident_cases.c[send.value])
            .where(incident_cases.c.incident_id == incident_id,
                   incident_cases.c.removed_at.is_(None)))
        return {case_id: status for case_id, status in rows}

    async def of_cases(self, case_ids: Collection[int]) -> dict[int, int]:
        """Return the incident each case is linked to (the newest)."""
        if not case_ids:
            return {}
        rows = await self._conn.execute(
            select(incident_cases.c.case_id, func.max(incident_cases.c.incident_id))
            .where(incident_cases.c.case_id.in_(list(case_ids)),
                   incident_cases.c.removed_at.is_(None))
            .group_by(incident_cases.c.case_id))
        return {case_id: incident_id for case_id, incident_id in rows}

    async def add_events(self, new: Sequence[IncidentEvent]) -> None:
        """Append moments to incidents' timelines."""
        if new:
            await self._conn.execute(insert(incident_events), [
                {"incident_id": e.incident_id, "kind": e.kind, "actor": e.actor, "at": e.at,
                 "data": dict(e.data)} for e in new])

    async def events_for(self, incident_id: int) -> list[IncidentEvent]:
        """Return an incident's timeline in order."""
        rows = await self._conn.execute(
            select(incident_events).where(incident_events.c.incident_id == incident_id)
            .order_by(incident_events.c.at, incident_events.c.id))
        return [IncidentEvent(row.incident_id, row.kind, row.actor, row.at, dict(row.data))
                for row in rows]

    async def sent_since(self, source: str, since: datetime) -> int:
        """Count the bulk replies (answers and follow-ups) sent to, or maybe sent to, a
        source's cases since `since`."""
        c = incident_cases.c
        publishing = Reply.PUBLISHING.value
        counted = [c.replied_at >= since, c.follow_up_at >= since,
                   and_(c.sending_at >= since,
                        or_(c.reply == publishing, c.follow_up == publishing))]
        total = 0
        for condition in counted:
            total += int((await self._conn.execute(
                select(func.count()).select_from(incident_cases)
                .join(cases, cases.c.id == c.case_id)
                .where(cases.c.source == source, condition))).scalar_one())
        return total

    async def closing(self) -> list[Incident]:
        """Return the resolved incidents with linked cases not yet closed."""
        waiting = select(incident_cases.c.incident_id).where(
            incident_cases.c.incident_id == incidents.c.id,
            incident_cases.c.removed_at.is_(None), incident_cases.c.closed_at.is_(None))
        rows = await self._conn.execute(
            select(incidents).where(incidents.c.state == IncidentState.RESOLVED.value,
                                    waiting.exists()).order_by(incidents.c.id))
        return [_incident(row) for row in rows]

    async def unclosed(self, incident_id: int) -> list[int]:
        """Return the linked cases of an incident not yet closed."""
        rows = await self._conn.execute(
            select(incident_cases.c.case_id).where(
                incident_cases.c.incident_id == incident_id,
                incident_cases.c.removed_at.is_(None), incident_cases.c.closed_at.is_(None))
            .order_by(incident_cases.c.case_id))
        return list(rows.scalars())

    async def close(self, incident_id: int, case_id: int, *, at: datetime) -> bool:
        """Take the closing of a linked case; False if it was taken."""
        result = await self._conn.execute(
            update(incident_cases).where(incident_cases.c.incident_id == incident_id,
                                         incident_cases.c.case_id == case_id,
                                         incident_cases.c.closed_at.is_(None))
            .values(closed_at=at))
        return bool(result.rowcount == 1)
