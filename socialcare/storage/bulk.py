"""Many rows in one statement, and lists of ids as one bound array.

asyncpg runs an executemany as one statement per row (pipelined, but parsed, bound,
checked and, for the statement triggers of `case_facts` and `cases`, triggered once a
row): a batch of 1,000 new cases paid some 5,000 statements. On PostgreSQL the rows
go instead as one array per column through `unnest`: one statement a table, one
prepared plan whatever the count. An `IN` list binds one parameter per id, so each
length is a statement of its own (prepared again, and after five runs a generic plan
that may be far worse); `= ANY(:array)` is one statement for every length. SQLite, in
the process, keeps its executemany and its `IN` lists (it has no arrays).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, Table, any_, bindparam, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection


def any_of(conn: AsyncConnection, column: ColumnElement[Any], name: str,
           values: Collection[Any]) -> tuple[ColumnElement[bool], dict[str, Any]]:
    """Return `column` among `values` and its bound values: `= ANY(:name)` on
    PostgreSQL, an `IN` list elsewhere (callers keep such lists short, `CHUNK`)."""
    if conn.dialect.name == "postgresql":
        array = bindparam(name, type_=ARRAY(column.type))
        return column == any_(array), {name: list(values)}
    return column.in_(bindparam(name, expanding=True)), {name: list(values)}


@cache
def _unnest_insert(table: Table, columns: tuple[str, ...], upsert_on: str | None) -> Any:
    """`INSERT INTO table (columns) SELECT … FROM unnest(:column, …) WITH ORDINALITY
    ORDER BY ordinality` (built once per shape), updating the rows already there by
    `upsert_on` if given. The order makes a serial key follow the rows' order."""
    arrays = func.unnest(*(bindparam(name, type_=ARRAY(table.c[name].type))
                           for name in columns)).table_valued(
        *columns, with_ordinality="ordinality").render_derived()
    statement = postgresql.insert(table).from_select(
        list(columns),
        select(*(arrays.c[name] for name in columns)).order_by(arrays.c.ordinality))
    return statement if upsert_on is None else _on_conflict(statement, columns, upsert_on)


@cache
def _sqlite_insert(table: Table, columns: tuple[str, ...], upsert_on: str | None) -> Any:
    """The same for SQLite's executemany: one row's values, or the upsert of one."""
    statement = sqlite.insert(table)
    return statement if upsert_on is None else _on_conflict(statement, columns, upsert_on)


def _on_conflict(statement: Any, columns: tuple[str, ...], key: str) -> Any:
    # Built once a shape (see the caches): its `excluded` columns take a millisecond each.
    return statement.on_conflict_do_update(
        index_elements=[key],
        set_={name: statement.excluded[name] for name in columns if name != key})


async def insert_rows(conn: AsyncConnection, table: Table, rows: Sequence[dict[str, Any]],
                      *, upsert_on: str | None = None) -> None:
    """Insert rows (all with the same keys), on PostgreSQL in one statement; with
    `upsert_on` (a unique column), a row whose key is stored already replaces it."""
    if not rows:
        return
    columns = tuple(rows[0])
    if conn.dialect.name != "postgresql":
        await conn.execute(_sqlite_insert(table, columns, upsert_on), list(rows))
        return
    await conn.execute(_unnest_insert(table, columns, upsert_on),
                       {name: [row[name] for row in rows] for name in columns})


async def insert_returning_ids(conn: AsyncConnection, table: Table,
                               rows: Sequence[dict[str, Any]]) -> list[int]:
    """Insert rows (all with the same keys) as `insert_rows`; return their serial ids,
    in the rows' order.

    PostgreSQL draws a serial key's values as it inserts, in the order the rows are
    selected (`ORDER BY ordinality`), and each draw is larger than the last: the ids
    sorted are the rows' ids in order (as SQLAlchemy's own "insertmanyvalues" relies on)."""
    if not rows:
        return []
    key = table.primary_key.columns.values()[0]
    if conn.dialect.name != "postgresql":
        result = await conn.execute(
            insert(table).returning(key, sort_by_parameter_order=True), list(rows))
        return [row[0] for row in result]
    columns = tuple(rows[0])
    result = await conn.execute(_unnest_insert(table, columns, None).returning(key),
                                {name: [row[name] for row in rows] for name in columns})
    return sorted(result.scalars())
