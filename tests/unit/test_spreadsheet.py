"""The cases' CSV: figures as they are, text that a spreadsheet never runs."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from socialcare.adapters.spreadsheet import COLUMNS, cases_csv
from socialcare.bot.metrics import CaseFacts, Standing
from socialcare.bot.model import Tier
from tests.conftest import T0


def _facts(**changes: object) -> CaseFacts:
    fields: dict[str, object] = dict(
        case_id=1, tier=Tier.MAIN, platform="instagram", brand="Kcell", source="webhook",
        published_at=T0, collected_at=T0, response_due_at=T0 + timedelta(minutes=15),
        standing=Standing.OPEN, first_answer_at=None, first_answer_by=None, resolved_at=None,
        messages_to_resolve=None, second_line_closed=timedelta(0),
        with_second_line_since=None)
    fields.update(changes)
    return CaseFacts(**fields)  # type: ignore[arg-type]


def _rows(*facts: CaseFacts, now=T0 + timedelta(hours=1)) -> list[dict[str, str]]:  # type: ignore[no-untyped-def]
    text = cases_csv(facts, now=now, zone=ZoneInfo("Asia/Almaty")).decode().removeprefix("\ufeff")
    return list(csv.DictReader(io.StringIO(text)))


def test_a_reaction_of_zero_seconds_is_0_not_blank() -> None:
    [row] = _rows(_facts(first_answer_at=T0, first_answer_by="aigerim",
                         standing=Standing.RESOLVED, resolved_at=T0, messages_to_resolve=2))

    assert (row["reaction_s"], row["resolution_s"], row["sla"]) == ("0", "0", "met")


def test_an_unanswered_case_has_a_blank_reaction() -> None:
    [row] = _rows(_facts())

    assert (row["reaction_s"], row["sla"]) == ("", "missed")


def test_a_case_dismissed_before_its_deadline_is_neither_met_nor_missed() -> None:
    before, after = _rows(
        _facts(standing=Standing.DISMISSED, dismissed_at=T0 + timedelta(minutes=5)),
        _facts(case_id=2, standing=Standing.DISMISSED, dismissed_at=T0 + timedelta(minutes=30)))

    assert (before["sla"], after["sla"]) == ("n/a", "missed")


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_every_text_cell_that_a_spreadsheet_would_run_is_escaped(start: str) -> None:
    hostile = f"{start}HYPERLINK(\"https://evil.example\",\"x\")"
    [row] = _rows(_facts(platform=hostile, brand=hostile, source=hostile, language=hostile,
                         first_answer_by=hostile, first_answer_at=T0 + timedelta(minutes=1),
                         topics=(hostile, "billing")))

    for column in ("platform", "brand", "source", "first_answer_by", "language", "topics"):
        assert row[column].startswith("'" + start), column
    # Every text cell of the row: none starts as a formula.
    assert not [c for c in COLUMNS if row[c].startswith(("=", "+", "-", "@", "\t", "\r"))]


def test_plain_text_and_figures_are_written_as_they_are() -> None:
    [row] = _rows(_facts(platform="vk", brand="Kcell", topics=("internet",)))

    assert (row["platform"], row["brand"], row["topics"]) == ("vk", "Kcell", "internet")
