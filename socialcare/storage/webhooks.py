"""Webhook deliveries (hand-offs to ticket systems) waiting in the `webhook_deliveries`
table until they are taken."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from socialcare.bot.model import WebhookDelivery
from socialcare.storage.schema import webhook_deliveries as table


class SqlWebhookRepository:
    """Webhook deliveries in SQL."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, new: Sequence[WebhookDelivery]) -> None:
        """Store deliveries to make."""
        if new:
            await self._conn.execute(insert(table), [
                {"url": d.url, "body": d.body, "created_at": d.created_at,
                 "next_try_at": d.next_try_at, "attempts": d.attempts}
                for d in new
            ])

    async def due(self, now: datetime, *, limit: int) -> list[WebhookDelivery]:
        """Return unsent deliveries whose time has come, oldest first."""
        rows = await self._conn.execute(
            select(table).where(table.c.sent_at.is_(None), table.c.next_try_at <= now)
            .order_by(table.c.next_try_at, table.c.id).limit(limit)
        )
        return [WebhookDelivery(
            url=r.url, body=r.body, created_at=r.created_at, next_try_at=r.next_try_at,
            attempts=r.attempts, sent_at=r.sent_at, last_error=r.last_error, id=r.id,
        ) for r in rows]

    async def lease(self, delivery: WebhookDelivery, *, until: datetime) -> bool:
        """Take a delivery until `until`; False if another worker took it."""
        result = await self._conn.execute(
            update(table)
            .where(table.c.id == delivery.id, table.c.next_try_at == delivery.next_try_at,
                   table.c.sent_at.is_(None))
            .values(next_try_at=until)
        )
        return bool(result.rowcount == 1)

    async def save(self, delivery: WebhookDelivery) -> None:
        """Store a delivery's outcome."""
        await self._conn.execute(
            update(table).where(table.c.id == delivery.id).values(
                attempts=delivery.attempts, sent_at=delivery.sent_at,
                next_try_at=delivery.next_try_at, last_error=delivery.last_error,
            )
        )
