"""The case-facts read model: one row per case, kept in step with its events.

Whenever events are appended, the unit of work re-establishes the facts of the cases
they belong to — through `socialcare.bot.metrics.case_facts`, the one definition of
every figure — before it commits. Reports then aggregate rows instead of replaying a
million event histories.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import BigInteger, bindparam, delete, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection

from socialcare.bot.metrics import CaseFacts, case_facts
from socialcare.bot.model import Event
from socialcare.storage import bulk
from socialcare.storage.schema import case_facts as table
from socialcare.storage.schema import case_places, case_topics


def facts_row(facts: CaseFacts) -> dict[str, Any]:
    """Return the row of a case's facts."""
    return {
        "case_id": facts.case_id, "tier": facts.tier.value, "platform": facts.platform,
        "brand": facts.brand, "source": facts.source, "published_at": facts.published_at,
        "collected_at": facts.collected_at, "response_due_at": facts.response_due_at,
        "standing": facts.standing.value, "first_answer_at": facts.first_answer_at,
        "first_answer_by": facts.first_answer_by, "resolved_at": facts.resolved_at,
        "messages_to_resolve": facts.messages_to_resolve,
        "second_line_seconds": facts.second_line_closed.total_seconds(),
        "with_second_line_since": facts.with_second_line_since,
        "reaction_seconds": None if facts.first_answer_at is None
        else (facts.first_answer_at - facts.published_at).total_seconds(),
        "lag_seconds": max(0.0, (facts.collected_at - facts.published_at).total_seconds()),
        "resolution_seconds": None if facts.resolved_at is None
        else (facts.resolved_at - facts.published_at).total_seconds(),
        "language": facts.language, "topics": ",".join(facts.topics),
        "dismissed_at": facts.dismissed_at,
    }


def rows_for(histories: dict[int, list[Event]]) -> list[dict[str, Any]]:
    """Return the facts rows of cases from their full event histories."""
    return [facts_row(case_facts(events)) for events in histories.values() if events]


async def refresh(conn: AsyncConnection, case_ids: Collection[int], events: Any, *,
                  label: Collection[int] = (), relabel: Collection[int] = ()) -> None:
    """Re-establish the facts of these cases from their events (`events.histories`),
    and write the topic and place rows of new cases (`label`) and of cases whose
    topics changed (`relabel`)."""
    if not case_ids:
        return
    facts = [case_facts(history) for history in (await events.histories(case_ids)).values()
             if history]
    await upsert(conn, [facts_row(f) for f in facts])
    old = [case_id for case_id in relabel if case_id not in label]
    for chunk in range(0, len(old), 500):
        part = old[chunk:chunk + 500]
        await conn.execute(delete(case_topics).where(case_topics.c.case_id.in_(part)))
        await conn.execute(delete(case_places).where(case_places.c.case_id.in_(part)))
    ids = sorted({*label, *relabel})
    # PostgreSQL takes them all as one array (`= ANY(:ids)`, see `_split`), SQLite in
    # IN lists of 500.
    step = max(len(ids), 1) if conn.dialect.name == "postgresql" else 500
    for chunk in range(0, len(ids), step):
        part = ids[chunk:chunk + step]
        for labels, column in (("case_topics", "topics"), ("case_places", "places")):
            await conn.execute(_split(conn.dialect.name, labels, column), {"ids": part})


def _split(dialect: str, table: str, column: str) -> Any:
    """The statement that writes a label table's rows from the cases' comma-separated
    column, in the database: one statement a batch, no row through Python."""
    name = table.removeprefix("case_")[:-1]  # topic, place
    if dialect == "postgresql":
        rows = (f"SELECT c.id, n, c.published_at FROM cases c, "
                f"unnest(string_to_array(c.{column}, ',')) AS n")
    else:
        rows = (f"SELECT c.id, j.value, c.published_at FROM cases c, "
                f"json_each('[\"' || replace(c.{column}, ',', '\",\"') || '\"]') AS j")
    among, ids = ("= ANY(:ids)", bindparam("ids", type_=ARRAY(BigInteger))) \
        if dialect == "postgresql" else ("IN :ids", bindparam("ids", expanding=True))
    return text(f"INSERT INTO {table} (case_id, {name}, published_at) {rows} "
                f"WHERE c.id {among} AND c.{column} <> ''").bindparams(ids)


async def upsert(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    """Insert facts rows, replacing those of the same cases."""
    await bulk.insert_rows(conn, table, rows, upsert_on="case_id")
