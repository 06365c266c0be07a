"""The topic breakdown's comparison: which period came before, and how change reads."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from socialcare.bot.report_text import change
from socialcare.bot.reports import parse_period
from socialcare.settings import load_catalog

ZONE = ZoneInfo("Asia/Almaty")
NOW = datetime(2026, 11, 25, 10, tzinfo=UTC)  # a Wednesday


@pytest.mark.parametrize(("word", "first", "last"), [
    ("today", date(2026, 11, 24), date(2026, 11, 24)),
    ("week", date(2026, 11, 16), date(2026, 11, 18)),  # Monday to Wednesday a week earlier
    ("month", date(2026, 10, 1), date(2026, 10, 25)),
    ("2026-11-10..2026-11-19", date(2026, 10, 31), date(2026, 11, 9)),
])
def test_a_period_is_compared_with_the_like_period_before(
        word: str, first: date, last: date) -> None:
    previous = parse_period(word, now=NOW, zone=ZONE).previous
    assert (previous.first, previous.last) == (first, last)


def test_the_month_before_a_long_month_ends_with_its_own_last_day() -> None:
    march = parse_period("month", now=datetime(2026, 3, 31, 10, tzinfo=UTC), zone=ZONE)
    assert march.previous.last == date(2026, 2, 28)


@pytest.mark.parametrize(("now", "before", "shown"), [
    (12, 8, "+4 (+50%)"), (6, 8, "−2 (−25%)"), (5, 5, "±0 (±0%)"), (3, 0, "new"), (0, 0, "±0"),
])
def test_a_change_reads_as_a_count_and_a_share(now: int, before: int, shown: str) -> None:
    assert change(now, before, load_catalog("en")) == shown
