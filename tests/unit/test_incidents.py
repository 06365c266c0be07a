"""The surge rule: min_cases, the usual level of the same hour over past weeks, a place's
surge before its topic's, and incidents that cover a surge."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import TypeAdapter, ValidationError

from socialcare.bot.incidents import Incident, describe, find_surges, past_hours, usual_level
from socialcare.bot.team import IncidentConfig, Team
from socialcare.bot.understanding.model import Place, Topic
from socialcare.settings import load_catalog
from tests.conftest import make_team

NOW = datetime(2026, 11, 25, 9, 7, tzinfo=UTC)  # 14:07 in Almaty


def _team(**config: object) -> Team:
    return make_team(
        topics=(Topic("internet", "Mobile internet", ("интернет",), area="network"),
                Topic("billing", "Billing", ("деньги",))),
        places=(Place("almaty", "Almaty", ("Алматы",)),),
        incidents=IncidentConfig(**config),  # type: ignore[arg-type]
    )


def _past(team: Team, counts: list[int], key: tuple[str, str | None]
          ) -> list[tuple[datetime, dict[tuple[str, str | None], int]]]:
    return [(start, {key: n}) for start, n in zip(past_hours(NOW, team), counts, strict=False)]


def test_the_usual_level_is_the_same_hours_average_scaled_to_the_window() -> None:
    config = IncidentConfig(window_minutes=15, history_weeks=2)

    assert usual_level([8, 4], config) == 1.5
    assert usual_level([8], config) is None  # one week is too little history


def test_past_hours_are_the_same_hour_of_the_week_in_the_teams_time() -> None:
    team = _team(baseline_weeks=3)

    hours = past_hours(NOW, team)

    assert [h.astimezone(UTC) for h in hours] == [
        datetime(2026, 11, 25, 9, tzinfo=UTC) - timedelta(weeks=k) for k in (1, 2, 3)]


def test_a_surge_needs_factor_times_the_usual_level_when_there_is_history() -> None:
    team = _team(min_cases=20, factor=4.0, window_minutes=15, history_weeks=2)
    key = ("internet", "almaty")
    since = {"internet": NOW - timedelta(weeks=5)}
    busy = _past(team, [40, 40, 40, 40], key)  # usually 10 in 15 min

    assert find_surges({key: 39}, busy, since, open_incidents=[], team=team) == []
    [surge] = find_surges({key: 40}, busy, since, open_incidents=[], team=team)
    assert (surge.topic, surge.place, surge.count, surge.usual) == ("internet", "almaty", 40,
                                                                    10.0)


def test_with_little_history_min_cases_alone_decides() -> None:
    team = _team(min_cases=20, history_weeks=2)
    key = ("internet", None)
    since = {"internet": NOW - timedelta(days=8)}  # one past week only
    busy = _past(team, [400], key)

    [surge] = find_surges({key: 20}, busy, since, open_incidents=[], team=team)
    assert surge.usual is None
    assert find_surges({key: 19}, busy, since, open_incidents=[], team=team) == []


def test_a_places_surge_goes_first_and_covers_its_topics_surge_anywhere() -> None:
    team = _team(min_cases=5)
    current = {("internet", None): 30, ("internet", "almaty"): 25, ("billing", None): 4}

    surges = find_surges(current, [], {}, open_incidents=[], team=team)

    assert [(s.topic, s.place) for s in surges] == [("internet", "almaty")]


def test_an_open_incident_covers_its_surge() -> None:
    team = _team(min_cases=5)
    open_one = Incident("internet", None, 30, None, 15, NOW, NOW, id=1)

    assert find_surges({("internet", "almaty"): 25}, [], {}, open_incidents=[open_one],
                       team=team) == []


@pytest.mark.parametrize("values", [{"min_cases": 1}, {"factor": 0.5},
                                    {"history_weeks": 5, "baseline_weeks": 4},
                                    {"window_minutes": 0}, {"check_seconds": 1},
                                    {"surprise": True}])
def test_wrong_incident_settings_are_refused(values: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(IncidentConfig).validate_python(values)


@pytest.mark.parametrize(("language", "with_history", "new_install"), [
    ("en", "34 cases of Mobile internet in Almaty in 15 min; usually 2",
     "34 cases of Mobile internet in Almaty in 15 min (too little history for the usual level)"),
    ("ru", "34 обращ. по теме «Mobile internet» (Almaty) за 15 мин; обычно 2",
     "34 обращ. по теме «Mobile internet» (Almaty) за 15 мин (истории пока мало, чтобы знать "
     "обычный уровень)"),
])
def test_an_incident_is_described_in_the_teams_language(
    language: str, with_history: str, new_install: str
) -> None:
    team, text = _team(), load_catalog(language)
    usual = Incident("internet", "almaty", 34, 2.0, 15, NOW, NOW, id=3)
    new = Incident("internet", "almaty", 34, None, 15, NOW, NOW, id=4)
    nowhere = Incident("billing", None, 21, 3.4, 15, NOW, NOW, id=5)

    assert describe(usual, team, text) == with_history
    assert describe(new, team, text) == new_install
    assert describe(nowhere, team, text).startswith("21 ")
    assert "Almaty" not in describe(nowhere, team, text)
