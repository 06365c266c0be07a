"""The case-facts read model: one row per case, kept in step with its events.

Whenever events are appended, the unit of work re-establishes the facts of the cases
they belong to — through `socialcare.bot.metrics.case_facts`, the one definition of
every figure — before it commits. Reports then aggregate rows instead of replaying a
million event histories.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from socialcare.bot.metrics import CaseFacts, case_facts
from socialcare.bot.model import Event
from socialcare.storage.schema import case_facts as table


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
    }


def rows_for(histories: dict[int, list[Event]]) -> list[dict[str, Any]]:
    """Return the facts rows of cases from their full event histories."""
    return [facts_row(case_facts(events)) for events in histories.values() if events]


async def refresh(conn: AsyncConnection, case_ids: Collection[int], events: Any) -> None:
    """Re-establish the facts of these cases from their events (`events.for_cases`)."""
    if not case_ids:
        return
    rows = rows_for(await events.for_cases(case_ids))
    await upsert(conn, rows)


async def upsert(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    """Insert facts rows, replacing those of the same cases."""
    if not rows:
        return
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table)
    statement = statement.on_conflict_do_update(
        index_elements=[table.c.case_id],
        set_={c.name: statement.excluded[c.name] for c in table.columns if c.name != "case_id"},
    )
    await conn.execute(statement, list(rows))
