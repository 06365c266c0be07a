"""Each source's cursor and health in the `source_states` table."""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, bindparam, case, insert, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from socialcare.bot.errors import ConcurrentUpdate
from socialcare.bot.sources import Alert, Delivery, SourceState
from socialcare.storage.schema import UTCDateTime
from socialcare.storage.schema import source_states as table

_FIELDS = ("cursor", "last_success_at", "last_error_at", "last_error", "failures",
           "items_found", "last_item_at", "lag_seconds", "next_poll_at", "note")


class SqlSourceStateRepository:
    """Source states in SQL; every save is conditional on the version read, and a
    delivery is added in place."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def get(self, name: str) -> SourceState:
        """Return a source's state (a fresh one if it has none yet)."""
        row = (await self._conn.execute(select(table).where(table.c.name == name))).first()
        return SourceState(name=name) if row is None else _state(row)

    async def all(self) -> list[SourceState]:
        """Return every source's state."""
        return [_state(row) for row in await self._conn.execute(select(table))]

    async def save(self, state: SourceState) -> None:
        """Store the state if nobody changed it since it was read."""
        values = {name: getattr(state, name) for name in _FIELDS}
        values["alert"] = state.alert.value
        if state.version == 0:
            try:
                async with self._conn.begin_nested():
                    await self._conn.execute(
                        insert(table).values(name=state.name, version=1, **values))
            except IntegrityError:
                raise ConcurrentUpdate(f"source {state.name} was stored meanwhile") from None
        else:
            result = await self._conn.execute(
                update(table).where(table.c.name == state.name,
                                    table.c.version == state.version)
                .values(version=state.version + 1, **values)
            )
            if result.rowcount != 1:
                raise ConcurrentUpdate(f"source {state.name} changed meanwhile")
        state.version += 1


    async def add_delivery(self, name: str, delivery: Delivery) -> SourceState:
        """Add a pushed source's delivery to its health in one statement; return the state.

        On PostgreSQL the transaction's commit does not wait for the disk: every
        delivery of a source updates its one row, so each waiting for its own flush
        while holding the row would let a source take one delivery per flush. A crash
        of the server may forget the last fraction of a second of counts, never a
        mention (stored, and flushed, before this)."""
        dialect = self._conn.dialect.name
        if dialect == "postgresql":
            await self._conn.execute(_ASYNC_COMMIT)
        statement = _add_delivery(dialect, items_only=delivery.items_only,
                                  newest=delivery.newest is not None)
        row = (await self._conn.execute(statement, {
            "name": name, "count": delivery.count, "at": delivery.at,
            "newest": delivery.newest, "lag": delivery.lag_seconds})).one()
        return _state(row)

    async def move_alert(self, name: str, *, was: Alert, to: Alert,
                         version: int | None = None) -> bool:
        """Set the source's alert to `to` if it is still `was` (and, given a version,
        the state is still that version); tell whether it was."""
        same = [table.c.name == name, table.c.alert == was.value]
        if version is not None:
            same.append(table.c.version == version)
        result = await self._conn.execute(
            update(table).where(*same).values(alert=to.value, version=table.c.version + 1))
        return result.rowcount == 1


_ASYNC_COMMIT = text("SET LOCAL synchronous_commit TO OFF")


@cache
def _add_delivery(dialect: str, *, items_only: bool, newest: bool) -> Any:
    """The upsert that adds a delivery to a source's row (built once per shape: a
    burst of webhooks runs it for every group of requests)."""
    at = bindparam("at", type_=UTCDateTime())
    latest = bindparam("newest", type_=UTCDateTime())
    statement = (postgresql if dialect == "postgresql" else sqlite).insert(table).values(
        name=bindparam("name"), cursor={}, failures=0, items_found=bindparam("count"),
        alert=Alert.OK.value, last_success_at=None if items_only else at,
        last_item_at=latest, lag_seconds=bindparam("lag"), version=1)
    changes: dict[str, Any] = {
        "items_found": table.c.items_found + statement.excluded.items_found,
        "version": table.c.version + 1,
    }
    if not items_only:
        changes |= {"last_success_at": _later(table.c.last_success_at, at),
                    "failures": 0, "note": None}
    if newest:
        changes |= {"last_item_at": _later(table.c.last_item_at, latest),
                    "lag_seconds": statement.excluded.lag_seconds}
    return statement.on_conflict_do_update(index_elements=[table.c.name], set_=changes) \
        .returning(*table.columns)


def _later(column: ColumnElement[Any], value: ColumnElement[Any]) -> ColumnElement[Any]:
    """The later of a stored time (None: none yet) and a new one, in SQL."""
    return case((or_(column.is_(None), column < value), value), else_=column)


def _state(row: object) -> SourceState:
    values = {name: getattr(row, name) for name in _FIELDS}
    return SourceState(name=row.name, alert=Alert(row.alert), version=row.version,  # type: ignore[attr-defined]
                       **values)
