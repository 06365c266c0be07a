"""Report periods and schedules, in the team's timezone."""

from __future__ import annotations

import functools
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from socialcare.bot.catalog import Catalog
from socialcare.bot.report_text import (
    bucket_bounds,
    bucket_seconds,
    duration,
    render_report,
    shown_bucket,
)
from socialcare.bot.reports import BadPeriod, aggregate, due_reports, parse_period
from socialcare.bot.team import ReportSchedule
from socialcare.settings import load_catalog
from tests.conftest import make_team

ALMATY = ZoneInfo("Asia/Almaty")
# Wednesday 25 November 2026, 15:00 in Almaty.
NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("word", "first", "last"),
    [
        ("", date(2026, 11, 25), date(2026, 11, 25)),
        ("today", date(2026, 11, 25), date(2026, 11, 25)),
        ("yesterday", date(2026, 11, 24), date(2026, 11, 24)),
        ("week", date(2026, 11, 23), date(2026, 11, 25)),
        ("month", date(2026, 11, 1), date(2026, 11, 25)),
        ("2026-10-01..2026-10-31", date(2026, 10, 1), date(2026, 10, 31)),
    ],
)
def test_periods_are_whole_days_in_the_team_zone(word: str, first: date, last: date) -> None:
    period = parse_period(word, now=NOW, zone=ALMATY)

    assert (period.first, period.last) == (first, last)
    assert period.start == datetime(first.year, first.month, first.day, tzinfo=ALMATY)


def test_a_case_belongs_to_the_day_it_was_published_in_the_team_zone() -> None:
    # 20:00 UTC on the 24th is 01:00 on the 25th in Almaty.
    period = parse_period("today", now=NOW, zone=ALMATY)
    assert period.start <= datetime(2026, 11, 24, 20, 0, tzinfo=UTC) < period.end
    assert not period.start <= datetime(2026, 11, 24, 18, 59, tzinfo=UTC) < period.end


@pytest.mark.parametrize("word", ["someday", "2026-11-30..2026-11-01", "2026-13-01..2026-13-02",
                                  "2020-01-01..2026-01-01", "week month",
                                  "9999-12-31..9999-12-31", "0001-01-01..0001-01-02"])
def test_a_period_that_makes_no_sense_is_refused(word: str) -> None:
    with pytest.raises(BadPeriod):
        parse_period(word, now=NOW, zone=ALMATY)


def test_yesterdays_report_is_due_from_the_daily_time_and_the_weekly_on_its_day() -> None:
    schedule = ReportSchedule(daily_time="09:00", weekly_day="wednesday", monthly_day=25)
    before = datetime(2026, 11, 25, 3, 59, tzinfo=UTC)  # 08:59 in Almaty

    due = due_reports(schedule, now=NOW, zone=ALMATY)

    assert due_reports(schedule, now=before, zone=ALMATY) == []
    assert [(d.job, d.key) for d in due] == [
        ("report-daily", "2026-11-24"), ("report-weekly", "2026-W47"),
        ("report-monthly", "2026-10"),
    ]
    assert (due[1].period.first, due[1].period.last) == (date(2026, 11, 16), date(2026, 11, 22))
    assert (due[2].period.first, due[2].period.last) == (date(2026, 10, 1), date(2026, 10, 31))


@pytest.mark.parametrize(("language", "word", "title"), [
    ("en", "today", "📊 Report 25.11.2026 (today): 0 cases"),
    ("ru", "today", "📊 Отчёт 25.11.2026 (сегодня): обращений 0"),
    ("ru", "week", "📊 Отчёт 23.11–25.11.2026 (эта неделя): обращений 0"),
    ("ru", "2026-10-01..2026-10-31", "📊 Отчёт 01.10–31.10.2026 (2026-10-01..2026-10-31)"),
])
def test_the_report_s_title_names_its_period_in_the_team_s_language(
    language: str, word: str, title: str
) -> None:
    period = parse_period(word, now=NOW, zone=ALMATY)
    report = aggregate([], period=period, now=NOW)

    text = render_report(report, team=make_team(), catalog=load_catalog(language))

    assert text.splitlines()[0].startswith(title)


@functools.cache
def _english() -> Catalog:
    return load_catalog("en")


@settings(max_examples=300, deadline=None)
@given(first=st.floats(min_value=-5, max_value=10 * 86_400, allow_nan=False),
       second=st.floats(min_value=-5, max_value=10 * 86_400, allow_nan=False))
def test_a_durations_bucket_is_what_reports_show_of_it(first: float, second: float) -> None:
    # Roll-ups count durations by bucket: a bucket must show as each of its durations
    # does, hold it within its bounds, and grow with the duration (so that a
    # percentile's rank falls in the right one).
    catalog = _english()
    for seconds in (first, second, 59.5, 60.0, 89.99, 90.0, 150.0, 47.99 * 3600, 48 * 3600):
        bucket = shown_bucket(seconds)
        assert duration(bucket_seconds(bucket), catalog) == duration(seconds, catalog)
        low, high = bucket_bounds(bucket)
        assert low <= seconds <= high
    low, high = sorted((first, second))
    assert shown_bucket(low) <= shown_bucket(high)
    if shown_bucket(low) == shown_bucket(high):
        assert duration(low, catalog) == duration(high, catalog)
