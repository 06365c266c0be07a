"""SLA points: where they fall, and that each fires once."""

from __future__ import annotations

from datetime import timedelta

import pytest

from socialcare.bot import lifecycle, sla
from socialcare.bot.sla import SlaClock, SlaPolicy
from tests.conftest import T0
from tests.unit.cases import POLICY, new_case


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def test_points_fall_at_the_warning_fractions_the_deadline_and_every_repeat() -> None:
    due = T0 + minutes(15)
    points = [sla.point(POLICY, SlaClock.RESPONSE, T0, due, i) for i in range(5)]

    assert [(p.at - T0, p.label) for p in points if p] == [
        (minutes(7.5), "warning 50%"),
        (minutes(12), "warning 80%"),
        (minutes(15), "breach"),
        (minutes(20), "breach +5 min"),
        (minutes(25), "breach +10 min"),
    ]


def test_the_resolution_clock_ends_at_its_breach() -> None:
    due = T0 + minutes(120)
    assert sla.point(POLICY, SlaClock.RESOLUTION, T0, due, 2) is not None
    assert sla.point(POLICY, SlaClock.RESOLUTION, T0, due, 3) is None


def test_each_point_fires_once_however_often_the_clock_is_swept() -> None:
    case = new_case()
    fired = []
    now = T0
    while now < T0 + minutes(40):
        now += timedelta(seconds=20)
        fired += sla.fire_due_points(case, POLICY, now)
        fired += sla.fire_due_points(case, POLICY, now)  # a second sweep at the same time

    response = [e.data["label"] for e in fired if e.data["clock"] == "response"]
    assert response == [
        "warning 50%", "warning 80%", "breach", "breach +5 min", "breach +10 min",
        "breach +15 min", "breach +20 min", "breach +25 min",
    ]
    assert all(e.data["late_seconds"] == 0 for e in fired)


def test_every_point_records_its_clock_s_deadline_beside_its_own_time() -> None:
    case = new_case()

    fired = sla.fire_due_points(case, POLICY, T0 + minutes(16))

    response = [e.data for e in fired if e.data["clock"] == "response"]
    assert [(sla.parse_due(d) - T0, sla.parse_deadline(d) - T0) for d in response] == [
        (minutes(7.5), minutes(15)), (minutes(12), minutes(15)), (minutes(15), minutes(15))]
    # An event recorded before the deadline was written falls back to its own time.
    old = {k: v for k, v in response[0].items() if k != "deadline_at"}
    assert sla.parse_deadline(old) == T0 + minutes(7.5)


def test_reminders_missed_while_down_collapse_into_the_latest() -> None:
    case = new_case()

    fired = sla.fire_due_points(case, POLICY, T0 + minutes(61))

    labels = [e.data["label"] for e in fired if e.data["clock"] == "response"]
    assert labels == ["warning 50%", "warning 80%", "breach", "breach +45 min"]
    assert [e.data["superseded"] for e in fired if e.data["clock"] == "response"] == [
        True, True, True, False,
    ]
    assert case.next_alert_at == T0 + minutes(65)


def test_the_resolution_clock_runs_on_after_the_answer_and_stops_at_resolve() -> None:
    case = new_case()
    lifecycle.answer(case, by="aigerim", at=T0 + minutes(5), policy=POLICY)

    assert case.next_alert_at == T0 + minutes(60)  # 50 % of the 120-minute resolution target
    lifecycle.resolve(case, by="aigerim", at=T0 + minutes(6), policy=POLICY)
    assert case.next_alert_at is None


def test_time_left_is_negative_once_overdue_and_none_once_answered() -> None:
    case = new_case()
    assert sla.time_left(case, T0 + minutes(5)) == minutes(10)
    assert sla.time_left(case, T0 + minutes(22)) == minutes(-7)
    lifecycle.answer(case, by="aigerim", at=T0, policy=POLICY)
    assert sla.time_left(case, T0) is None


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ({"first_response_minutes": 0}, "first_response_minutes: must be a positive"),
        ({"first_response_minutes": 15, "warning_points": (0.8, 0.5)}, "increasing"),
        ({"first_response_minutes": 15, "warning_points": (1.5,)}, "between 0 and 1"),
        ({"first_response_minutes": 15, "repeat_minutes": -1}, "repeat_minutes"),
    ],
)
def test_a_nonsense_policy_is_refused_with_the_key(values: dict, problem: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ValueError, match=problem):
        SlaPolicy(**values)
