"""A period's cases as CSV, one row per case, for the team's own spreadsheets."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from socialcare.bot.metrics import CaseFacts, figures

COLUMNS = (
    "case_id", "tier", "platform", "brand", "source", "published_at", "collected_at",
    "response_due_at", "first_answer_at", "first_answer_by", "resolved_at", "standing",
    "collector_lag_s", "reaction_s", "resolution_s", "messages_to_resolve", "sla",
    "second_line_s", "language", "topics", "answer_forms",
)


def cases_csv(facts: Iterable[CaseFacts], *, now: datetime, zone: ZoneInfo,
              forms: Mapping[int, Sequence[str]] | None = None) -> bytes:
    """Return the cases as CSV (UTF-8 with a BOM, which spreadsheets read as UTF-8);
    times in the team's timezone, durations in seconds; `forms`: each case's answers'
    forms (text, picture, callback, calculation), in order."""
    forms = forms or {}
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)

    def when(at: datetime | None) -> str:
        return "" if at is None else at.astimezone(zone).isoformat(timespec="seconds")

    def seconds(value: float | None) -> str:
        return "" if value is None else f"{value:.0f}"

    for fact in facts:
        figure = figures(fact, now=now)
        writer.writerow((
            fact.case_id, fact.tier.value, fact.platform, fact.brand, fact.source,
            when(fact.published_at), when(fact.collected_at), when(fact.response_due_at),
            when(fact.first_answer_at), fact.first_answer_by or "", when(fact.resolved_at),
            fact.standing.value, seconds(figure.collector_lag.total_seconds()),
            seconds(figure.reaction.total_seconds() if figure.reaction else None),
            seconds(figure.resolution.total_seconds() if figure.resolution else None),
            "" if fact.messages_to_resolve is None else fact.messages_to_resolve,
            {True: "met", False: "missed", None: "pending"}[figure.sla_met],
            seconds(figure.second_line.total_seconds()),
            fact.language or "", " ".join(fact.topics),
            " ".join(forms.get(fact.case_id, ())),
        ))
    return ("\ufeff" + buffer.getvalue()).encode()
