"""The open cases read straight from a SQLite file with the standard library's sqlite3,
for a command that reads once and exits (`socialcare cases`): it starts without
SQLAlchemy, whose import alone is most of such a command's time.

Only a database at the latest migration is read this way; a new, behind or newer one
(and PostgreSQL) goes through the engine and the repositories, which migrate or refuse
it. The rows come back as the repositories give them (`tests/integration/
test_sqlite_reader.py` compares the two on the same database).
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Collection, Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import unquote

from socialcare.bot.model import OPEN_STATES, Author, Case, Mention, Priority, State, Tier
from socialcare.storage.revisions import head_revision

# Keeps every IN (...) list under SQLite's bind-parameter limit.
CHUNK = 500

_CASE_COLUMNS = [field.name for field in dataclasses.fields(Case)]
# SQLAlchemy keeps an aware datetime on SQLite as the UTC wall time in ISO form.
_CASE_TIMES = {field.name for field in dataclasses.fields(Case) if "datetime" in str(field.type)}
_OPEN = [state.value for state in OPEN_STATES]
_MARKS = ", ".join("?" for _ in _OPEN)
# The repositories' work order: earliest deadline (none last), the most pressing, the id.
_RANK = "CASE priority " + " ".join(
    f"WHEN '{p.value}' THEN {p.rank}" for p in Priority) + f" ELSE {len(Priority)} END"
_LIST_OPEN = (f"SELECT {', '.join(_CASE_COLUMNS)} FROM cases WHERE state IN ({_MARKS}) "
              f"ORDER BY response_due_at IS NULL, response_due_at, {_RANK}, id LIMIT ?")
_COUNT_OPEN = f"SELECT tier, count(*) FROM cases WHERE state IN ({_MARKS}) GROUP BY tier"
_MENTION_COLUMNS = ("id, case_id, source, external_id, platform, text, published_at, "
                    "collected_at, thread_key, parent_id, url, author_id, author_name, "
                    "author_handle, author_url, from_brand")


def sqlite_file(url: str) -> Path | None:
    """Return the file of a SQLite URL in its plain form (`sqlite:///path`, with or
    without `+aiosqlite`); None for any other URL, an in-memory one or one with options."""
    scheme, separator, rest = url.partition("://")
    if not separator or scheme not in ("sqlite", "sqlite+aiosqlite") \
            or not rest.startswith("/") or "?" in rest:
        return None
    database = unquote(rest[1:])
    if not database or database == ":memory:":
        return None
    return Path(database)


class SqliteReader:
    """Open cases and their first mentions from a SQLite file, in one read transaction."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    @classmethod
    def at_latest(cls, url: str) -> SqliteReader | None:
        """Open the SQLite database of `url` if it exists and is at the latest migration;
        otherwise return None (the engine's path migrates it, or says what is wrong)."""
        path = sqlite_file(url)
        head = head_revision()
        if path is None or head is None or not path.is_file():
            return None
        conn = sqlite3.connect(path, timeout=60, isolation_level=None)
        try:
            conn.execute("BEGIN")  # the three reads see one state of the database
            found = [str(row[0]) for row in conn.execute("SELECT version_num FROM alembic_version")]
        except sqlite3.Error:  # no such table (a new file), or not a database at all
            found = []
        if found != [head]:
            conn.close()
            return None
        return cls(conn)

    def __enter__(self) -> SqliteReader:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._conn.close()

    def list_open(self, *, limit: int) -> list[Case]:
        """Return open cases, earliest response deadline first (urgent first among equal
        deadlines)."""
        rows = self._conn.execute(_LIST_OPEN, [*_OPEN, limit])
        return [_case(dict(zip(_CASE_COLUMNS, row, strict=True))) for row in rows]

    def count_open(self) -> dict[Tier, int]:
        """Count open cases per tier."""
        return {Tier(tier): count for tier, count in self._conn.execute(_COUNT_OPEN, _OPEN)}

    def first_of(self, case_ids: Collection[int]) -> dict[int, Mention]:
        """Return the first mention of each of these cases."""
        found: dict[int, Mention] = {}
        for chunk in _chunks(case_ids):
            marks = ", ".join("?" for _ in chunk)
            rows = self._conn.execute(
                f"SELECT {_MENTION_COLUMNS} FROM mentions WHERE id IN (SELECT min(id) FROM "
                f"mentions WHERE case_id IN ({marks}) GROUP BY case_id)", chunk)
            for row in rows:
                found[row[1]] = _mention(row)
        return found


def _chunks(items: Collection[int]) -> Iterator[list[int]]:
    listed = list(items)
    for start in range(0, len(listed), CHUNK):
        yield listed[start:start + CHUNK]


def _time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value).replace(tzinfo=UTC)


def _names(joined: str | None) -> tuple[str, ...]:
    return tuple(name for name in (joined or "").split(",") if name)


def _case(values: dict[str, Any]) -> Case:
    for name in _CASE_TIMES:
        values[name] = _time(values[name])
    values["topics"], values["places"] = _names(values["topics"]), _names(values["places"])
    values["tier"] = Tier(values["tier"])
    values["priority"] = Priority(values["priority"])
    values["state"] = State(values["state"])
    return Case(**values)


def _mention(row: tuple[Any, ...]) -> Mention:
    (mention_id, case_id, source, external_id, platform, text, published_at, collected_at,
     thread_key, parent_id, url, author_id, author_name, author_handle, author_url,
     from_brand) = row
    published, collected = _time(published_at), _time(collected_at)
    assert published is not None and collected is not None  # NOT NULL columns
    return Mention(
        id=mention_id, case_id=case_id, source=source, external_id=external_id,
        platform=platform, text=text, published_at=published, collected_at=collected,
        thread_key=thread_key, parent_id=parent_id, url=url, from_brand=bool(from_brand),
        author=Author(id=author_id, name=author_name, handle=author_handle, url=author_url),
    )
