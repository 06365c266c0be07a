"""The incident buttons' codec and the case numbers a lead writes in their forms."""

from __future__ import annotations

import pytest

from socialcare.bot.actions import (
    BadAction,
    CaseAction,
    IncidentAction,
    IncidentActionKind,
)
from socialcare.handlers.incidenting import parse_cases


def test_an_incident_button_packs_into_64_bytes_and_back_and_refuses_strangers() -> None:
    for kind in IncidentActionKind:
        action = IncidentAction(kind, 10**18 - 1)
        assert len(action.pack().encode()) <= 64
        assert IncidentAction.unpack(action.pack()) == action
    for forged in ("sc1i:answer:0", "sc1i:explode:1", "sc1i:add:1:2", "sc1:add:1",
                   "sc1i:add:99999999999999999999", "sc1i:ADD:1", "sc1i:add:1\n"):
        with pytest.raises(BadAction):
            IncidentAction.unpack(forged)
    # A case button is not an incident button, nor the other way round.
    with pytest.raises(BadAction):
        CaseAction.unpack(IncidentAction(IncidentActionKind.RESOLVE, 3).pack())


@pytest.mark.parametrize(("written", "cases"), [
    ("45", [45]), ("45, 46", [45, 46]), ("#45 #46", [45, 46]), (" 45 ,46 ", [45, 46]),
    ("", None), ("abc", None), ("0", None), ("-1", None), ("1.5", None), ("45;46", None),
    ("1" * 19, None), ("45,", None), ("#", None),
])
def test_case_numbers_are_read_as_the_command_reads_them(written: str,
                                                         cases: list[int] | None) -> None:
    assert parse_cases(written) == cases
