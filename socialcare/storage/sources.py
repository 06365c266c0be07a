"""Each source's cursor and health in the `source_states` table."""

from __future__ import annotations

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from socialcare.bot.errors import ConcurrentUpdate
from socialcare.bot.sources import Alert, SourceState
from socialcare.storage.schema import source_states as table

_FIELDS = ("cursor", "last_success_at", "last_error_at", "last_error", "failures",
           "items_found", "last_item_at", "lag_seconds", "next_poll_at", "note")


class SqlSourceStateRepository:
    """Source states in SQL; every save is conditional on the version read."""

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


def _state(row: object) -> SourceState:
    values = {name: getattr(row, name) for name in _FIELDS}
    return SourceState(name=row.name, alert=Alert(row.alert), version=row.version,  # type: ignore[attr-defined]
                       **values)
