"""Dead letters: queued mentions that could not be stored after several tries.

A row moves here from the inbox, with the reason of its last failure and its number
of tries, so that it stops being retried behind everything else and an admin sees
it: `socialcare inbox list`, then `retry ID` (store it now, after a fix) or
`drop ID`. The row keeps its inbox id.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, delete, func, insert, literal, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from socialcare.storage.schema import UTCDateTime, inbox, inbox_dead_letters


@dataclass(frozen=True)
class DeadLetter:
    """A queued mention set aside: what it holds, how often it failed and why."""

    id: int
    source: str
    mention: Any
    queued_at: datetime
    tries: int
    reason: str
    set_aside_at: datetime

    @property
    def external_id(self) -> str | None:
        """The mention's id at its source, if the row holds one."""
        if isinstance(self.mention, dict) and self.mention.get("external_id") is not None:
            return str(self.mention["external_id"])
        return None


def _letter(row: Row[Any]) -> DeadLetter:
    return DeadLetter(id=row.id, source=row.source, mention=row.mention,
                      queued_at=row.queued_at, tries=row.tries, reason=row.reason,
                      set_aside_at=row.set_aside_at)


async def set_aside(conn: AsyncConnection, ids: Sequence[int], *, tries: int,
                    now: datetime) -> list[DeadLetter]:
    """Move the inbox rows among `ids` that have failed `tries` times to the dead
    letters; return them."""
    moving = (select(inbox.c.id, inbox.c.source, inbox.c.mention, inbox.c.queued_at,
                     inbox.c.tries, func.coalesce(inbox.c.last_error, "unknown"),
                     literal(now, UTCDateTime()))
              .where(inbox.c.id.in_(list(ids)), inbox.c.tries >= tries))
    moved = await conn.execute(
        insert(inbox_dead_letters).from_select(
            ["id", "source", "mention", "queued_at", "tries", "reason", "set_aside_at"],
            moving)
        .returning(inbox_dead_letters.c.id))
    moved_ids = sorted(row.id for row in moved)
    if not moved_ids:
        return []
    await conn.execute(delete(inbox).where(inbox.c.id.in_(moved_ids)))
    rows = await conn.execute(select(inbox_dead_letters)
                              .where(inbox_dead_letters.c.id.in_(moved_ids))
                              .order_by(inbox_dead_letters.c.id))
    return [_letter(row) for row in rows]


class DeadLetters:
    """The dead-letter table, for the admin's command line and the metrics."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def all(self, *, limit: int = 1000) -> list[DeadLetter]:
        """Return the dead letters, oldest first."""
        async with self._engine.connect() as conn:
            rows = await conn.execute(select(inbox_dead_letters)
                                      .order_by(inbox_dead_letters.c.id).limit(limit))
            return [_letter(row) for row in rows]

    async def get(self, letter_id: int) -> DeadLetter | None:
        """Return one dead letter, if it exists."""
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(inbox_dead_letters)
                                      .where(inbox_dead_letters.c.id == letter_id))).first()
            return None if row is None else _letter(row)

    async def count(self) -> int:
        """How many dead letters there are."""
        async with self._engine.connect() as conn:
            return int((await conn.execute(
                select(func.count()).select_from(inbox_dead_letters))).scalar_one())

    async def drop(self, letter_id: int) -> bool:
        """Delete a dead letter; False if there was none with that id."""
        async with self._engine.begin() as conn:
            result = await conn.execute(
                delete(inbox_dead_letters).where(inbox_dead_letters.c.id == letter_id))
            return bool(result.rowcount == 1)

    async def failed_again(self, letter_id: int, *, reason: str, now: datetime) -> None:
        """Record another failed try of a dead letter."""
        async with self._engine.begin() as conn:
            await conn.execute(
                update(inbox_dead_letters).where(inbox_dead_letters.c.id == letter_id)
                .values(tries=inbox_dead_letters.c.tries + 1, reason=reason[:1000],
                        set_aside_at=now))
