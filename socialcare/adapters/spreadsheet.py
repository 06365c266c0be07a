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
# A cell starting with one of these is a formula to a spreadsheet (=HYPERLINK(…), +1+1,
# -2+3, @SUM(…), and tab or CR before any of them): such text is written after a '.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def text_cell(value: str | None) -> str:
    """Return a text cell as a spreadsheet shows it and never runs it."""
    value = value or ""
    return f"'{value}" if value.startswith(FORMULA_STARTS) else value


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
            fact.case_id, text_cell(fact.tier.value), text_cell(fact.platform),
            text_cell(fact.brand), text_cell(fact.source),
            when(fact.published_at), when(fact.collected_at), when(fact.response_due_at),
            when(fact.first_answer_at), text_cell(fact.first_answer_by),
            when(fact.resolved_at), text_cell(fact.standing.value),
            seconds(figure.collector_lag.total_seconds()),
            # A reaction of 0 s is a figure, not a blank.
            seconds(None if figure.reaction is None else figure.reaction.total_seconds()),
            seconds(None if figure.resolution is None else figure.resolution.total_seconds()),
            "" if fact.messages_to_resolve is None else fact.messages_to_resolve,
            # Dismissed unanswered before its deadline: no answer was needed.
            "n/a" if figure.sla_void else
            {True: "met", False: "missed", None: "pending"}[figure.sla_met],
            seconds(figure.second_line.total_seconds()),
            text_cell(fact.language), text_cell(" ".join(fact.topics)),
            text_cell(" ".join(forms.get(fact.case_id, ()))),
        ))
    return ("\ufeff" + buffer.getvalue()).encode()
