"""The cards repository: where each case was posted and how far its cards are in step."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, bindparam, func, or_, select, text, update
from sqlalchemy import case as case_when
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection

from socialcare.bot.model import Card, Case
from socialcare.storage import bulk
from socialcare.storage.schema import cards

# A case's cards put out of step (due at once, ahead of SLA steps, with the case's
# deadline), built once: building it anew cost each claim a millisecond. On PostgreSQL
# any number of cases in one statement, from an array of ids and one of deadlines.
_MARK_CHANGED_MANY = text("""
UPDATE cards SET change_seq = cards.change_seq + 1,
    due_at = least(coalesce(cards.due_at, :at), :at),
    rank = CASE WHEN cards.message_id IS NULL THEN 0 ELSE 1 END,
    deadline = given.deadline
FROM unnest(:case_ids, :deadlines) AS given(case_id, deadline)
WHERE cards.case_id = given.case_id
""").bindparams(bindparam("at", type_=cards.c.due_at.type),
                bindparam("case_ids", type_=ARRAY(cards.c.case_id.type)),
                bindparam("deadlines", type_=ARRAY(cards.c.deadline.type)))
_AT = bindparam("at", type_=cards.c.due_at.type)
_MARK_CHANGED = (
    update(cards)
    .where(cards.c.case_id == bindparam("changed_case"))
    .values(change_seq=cards.c.change_seq + 1,
            due_at=func.min(func.coalesce(cards.c.due_at, _AT), _AT),
            rank=case_when((cards.c.message_id.is_(None), 0), else_=1),
            deadline=bindparam("new_deadline", type_=cards.c.deadline.type))
)


def _card(row: Row[Any]) -> Card:
    return Card(**dict(row._mapping))


_CARD_FIELDS = tuple(f.name for f in dataclasses.fields(Card) if f.name != "id")


def _card_row(card: Card) -> dict[str, Any]:
    return {name: getattr(card, name) for name in _CARD_FIELDS}


class SqlCardRepository:
    """Cards in the `cards` table: where each case was posted and how far it is in step."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    def _least(self, a: Any, b: Any) -> Any:
        # SQLite's two-argument min() is PostgreSQL's least().
        return (func.min if self._conn.dialect.name == "sqlite" else func.least)(a, b)

    def _greatest(self, a: Any, b: Any) -> Any:
        return (func.max if self._conn.dialect.name == "sqlite" else func.greatest)(a, b)

    async def add(self, new: Sequence[Card]) -> None:
        """Store new cards (not yet posted)."""
        await bulk.insert_rows(self._conn, cards, [_card_row(card) for card in new])

    async def mark_changed(self, changed: Sequence[Case], *, at: datetime) -> None:
        """Put the cards of these cases out of step: due at once, ahead of SLA steps.
        On PostgreSQL one statement for them all (a sweep changes hundreds of cases at
        once); SQLite, in the process, takes them one by one."""
        deadlines = {case.id: case.response_due_at for case in changed if case.id is not None}
        if not deadlines:
            return
        if self._conn.dialect.name == "postgresql":
            # In the order of the cases' ids, as an `IN` list's index scan takes them:
            # two transactions marking some of the same cases lock them in one order.
            ids = sorted(deadlines)
            await self._conn.execute(_MARK_CHANGED_MANY, {
                "at": at, "case_ids": ids, "deadlines": [deadlines[i] for i in ids]})
            return
        await self._conn.execute(_MARK_CHANGED, [
            {"at": at, "changed_case": case_id, "new_deadline": deadline}
            for case_id, deadline in deadlines.items()])

    async def mark_escalation_changed(self, escalation_id: int, *, at: datetime) -> None:
        """Put the cards of an escalation out of step: due at once."""
        await self._conn.execute(
            update(cards)
            .where(cards.c.escalation_id == escalation_id)
            .values(
                change_seq=cards.c.change_seq + 1,
                due_at=self._least(func.coalesce(cards.c.due_at, at), at),
                rank=case_when((cards.c.message_id.is_(None), 0), else_=1),
            )
        )

    async def for_escalation(self, escalation_id: int) -> list[Card]:
        """Return an escalation's cards."""
        rows = await self._conn.execute(
            select(cards).where(cards.c.escalation_id == escalation_id).order_by(cards.c.id)
        )
        return [_card(row) for row in rows]

    async def oldest_due(self, now: datetime, *, messengers: Collection[str]) -> datetime | None:
        """Return when the card that has waited longest to be synced fell due."""
        found = await self._conn.execute(
            select(func.min(cards.c.due_at))
            .where(cards.c.due_at <= now, cards.c.messenger.in_(list(messengers)))
        )
        return found.scalar_one_or_none()

    async def due(
        self, now: datetime, *, messengers: Collection[str], per_channel: int, limit: int
    ) -> list[Card]:
        """Return cards to sync now: unposted first, then changed, then SLA steps;
        within the first two, the earliest deadline first, and SLA steps the longest
        due first; at most `per_channel` of a channel, so that one busy channel cannot
        crowd the others out.

        Each channel is read on its own, in the order of a partial index, so a round
        costs the same with a hundred thousand cards waiting as with ten."""
        found: list[Card] = []
        for messenger, channel in await self._channels(messengers):
            of_channel = (cards.c.messenger == messenger, cards.c.channel == channel,
                          cards.c.due_at.is_not(None), cards.c.due_at <= now)
            pressing = (
                select(cards).where(*of_channel, cards.c.rank < 2)
                .order_by(cards.c.rank, cards.c.deadline.asc().nulls_last(), cards.c.id)
                .limit(per_channel)
            )
            rows = list(await self._conn.execute(pressing))
            if len(rows) < per_channel:
                steps = (
                    select(cards).where(*of_channel, cards.c.rank == 2)
                    .order_by(cards.c.due_at).limit(per_channel - len(rows))
                )
                rows += list(await self._conn.execute(steps))
            found += (_card(row) for row in rows)
        found.sort(key=lambda c: (c.rank, c.rank == 2 or c.deadline is None,
                                  c.due_at if c.rank == 2 else c.deadline, c.id))
        return found[:limit]

    async def _channels(self, messengers: Collection[str]) -> list[tuple[str, str]]:
        """Return every channel that has cards of these messengers, one index seek per
        channel (there are few channels and many cards)."""
        channels: list[tuple[str, str]] = []
        for messenger in sorted(messengers):
            after: str | None = None
            while True:
                query = select(cards.c.channel).where(cards.c.messenger == messenger)
                if after is not None:
                    query = query.where(cards.c.channel > after)
                after = (await self._conn.execute(
                    query.order_by(cards.c.channel).limit(1))).scalar_one_or_none()
                if after is None:
                    break
                channels.append((messenger, after))
        return channels

    async def for_case(self, case_id: int) -> list[Card]:
        """Return a case's cards."""
        rows = await self._conn.execute(
            select(cards).where(cards.c.case_id == case_id).order_by(cards.c.id)
        )
        return [_card(row) for row in rows]

    async def for_cases(self, case_ids: Collection[int]) -> dict[int, list[Card]]:
        """Return the cards of several cases, each case's in the order they were made."""
        found: dict[int, list[Card]] = {}
        ids = sorted(case_ids)
        for start in range(0, len(ids), 500):
            rows = await self._conn.execute(
                select(cards).where(cards.c.case_id.in_(ids[start:start + 500]))
                .order_by(cards.c.id)
            )
            for row in rows:
                found.setdefault(row.case_id, []).append(_card(row))
        return found

    async def find(self, messenger: str, channel: str, message_id: str) -> Card | None:
        """Return the card behind a posted message."""
        row = (await self._conn.execute(
            select(cards).where(
                cards.c.messenger == messenger, cards.c.channel == channel,
                cards.c.message_id == message_id,
            )
        )).first()
        return None if row is None else _card(row)

    async def begin_post(self, card: Card, *, now: datetime, stale: datetime) -> int | None:
        """Record an attempt to post the card; None if another worker is posting it,
        else how many earlier attempts have an unknown outcome — counting now a stale
        attempt whose outcome was never recorded (its process stopped mid-call)."""
        result = await self._conn.execute(
            update(cards)
            .where(
                cards.c.id == card.id,
                cards.c.message_id.is_(None),
                or_(cards.c.posting_since.is_(None), cards.c.posting_since < stale),
            )
            .values(posting_since=now, post_attempts=cards.c.post_attempts + 1,
                    unsure_posts=cards.c.unsure_posts + case_when(
                        (cards.c.posting_since.is_not(None), 1), else_=0))
            .returning(cards.c.unsure_posts)
        )
        row = result.first()
        return None if row is None else int(row.unsure_posts)

    async def begin_edit(self, card: Card, *, now: datetime, stale: datetime) -> bool:
        """Claim a posted card for an edit; False if another worker is sending it, or
        if the case changed since `card` was read (the view would be old: the card is
        due again for the change). One edit at a time: two racing could leave the older
        view on the card last."""
        result = await self._conn.execute(
            update(cards)
            .where(
                cards.c.id == card.id,
                cards.c.message_id.is_not(None),
                cards.c.change_seq == card.change_seq,
                or_(cards.c.posting_since.is_(None), cards.c.posting_since < stale),
            )
            .values(posting_since=now)
        )
        return bool(result.rowcount == 1)

    async def end_edit(self, card: Card, *, began: datetime) -> None:
        """Give back the claim `begin_edit` took at `began` (not a later one's)."""
        await self._conn.execute(
            update(cards).where(cards.c.id == card.id, cards.c.posting_since == began)
            .values(posting_since=None)
        )

    async def posted(self, card: Card, *, message_id: str, at: datetime) -> None:
        """Record where the card was posted."""
        await self._conn.execute(
            update(cards).where(cards.c.id == card.id)
            .values(message_id=message_id, posted_at=at, posting_since=None)
        )

    async def post_failed(self, card: Card, *, unsure: bool = False) -> None:
        """Record a post that failed — or, `unsure`, whose outcome is unknown: it may be
        tried again."""
        await self._conn.execute(
            update(cards).where(cards.c.id == card.id)
            .values(posting_since=None,
                    unsure_posts=cards.c.unsure_posts + (1 if unsure else 0))
        )

    async def post_put_off(self, card: Card, *, began: datetime) -> None:
        """Take back the attempt `begin_post` recorded at `began`: it was never made
        (its channel had no slot)."""
        await self._conn.execute(
            update(cards).where(cards.c.id == card.id, cards.c.posting_since == began,
                                cards.c.message_id.is_(None))
            # A stale attempt it counted as unsure stays counted.
            .values(posting_since=None, post_attempts=cards.c.post_attempts - 1)
        )

    async def synced(
        self, card: Card, *, seq: int, fingerprint: str | None, next_due: datetime | None
    ) -> None:
        """Record that the card shows the case as of change `seq`; it is next due at
        `next_due` unless the case changed again meanwhile."""
        await self._conn.execute(
            update(cards).where(cards.c.id == card.id)
            .values(
                synced_seq=self._greatest(cards.c.synced_seq, seq),
                fingerprint=fingerprint,
                due_at=case_when((cards.c.change_seq <= seq, next_due), else_=cards.c.due_at),
                rank=case_when((cards.c.change_seq <= seq, 2), else_=cards.c.rank),
            )
        )

    async def defer(self, card: Card, *, until: datetime) -> None:
        """Look at the card again at `until` (a rate limit or a failure), or earlier if
        the case changes."""
        await self._conn.execute(
            update(cards).where(cards.c.id == card.id, cards.c.change_seq == card.change_seq)
            .values(due_at=until)
        )

    async def notified(self, card: Card, *, event_id: int) -> bool:
        """Record that the card's thread has the notes up to `event_id`; False if
        another worker got there first."""
        result = await self._conn.execute(
            update(cards)
            .where(cards.c.id == card.id, cards.c.notified_event_id == card.notified_event_id)
            .values(notified_event_id=event_id)
        )
        return bool(result.rowcount == 1)
