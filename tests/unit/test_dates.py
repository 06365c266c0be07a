"""Dates in words: real formats of Russian, Kazakh and English sites, read to the instant."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from socialcare.adapters.collectors.dates import read_date, spelled

# The poll's time: Wednesday 25 November 2026, 12:00 in Almaty (UTC+5), 10:00 in Moscow.
NOW = datetime(2026, 11, 25, 7, 0, tzinfo=UTC)
ALMATY, MOSCOW = "Asia/Almaty", "Europe/Moscow"

# (as a site writes it, the source's timezone, the instant it means in UTC)
TABLE = [
    # Russian: forums (phpBB, vBulletin, XenForo), news portals, comment widgets
    ("25 ноября 2026 10:00", ALMATY, "2026-11-25T05:00"),
    ("25 ноября 2026 10:00", MOSCOW, "2026-11-25T07:00"),
    ("Вт, 24 ноября 2026 в 18:05", ALMATY, "2026-11-24T13:05"),
    ("24 ноя 2026, 18:05", MOSCOW, "2026-11-24T15:05"),
    ("25 ноября в 10:00", ALMATY, "2026-11-25T05:00"),
    ("вчера в 14:30", ALMATY, "2026-11-24T09:30"),
    ("Вчера, 23:59", MOSCOW, "2026-11-24T20:59"),
    ("сегодня, 09:15", ALMATY, "2026-11-25T04:15"),
    ("Сегодня в 9:05", MOSCOW, "2026-11-25T06:05"),
    ("позавчера в 10:00", ALMATY, "2026-11-23T05:00"),
    ("5 минут назад", ALMATY, "2026-11-25T06:55"),
    ("минуту назад", ALMATY, "2026-11-25T06:59"),
    ("час назад", ALMATY, "2026-11-25T06:00"),
    ("2 часа назад", MOSCOW, "2026-11-25T05:00"),
    ("3 дня назад", ALMATY, "2026-11-22T07:00"),
    ("только что", ALMATY, "2026-11-25T07:00"),
    ("25.11.2026 10:00", ALMATY, "2026-11-25T05:00"),
    ("25.11.26 10:00", MOSCOW, "2026-11-25T07:00"),
    # Kazakh: egov-style portals, Kazakh-language news and forums
    ("25 қараша 2026 ж. 10:00", ALMATY, "2026-11-25T05:00"),
    ("Сейсенбі, 24 қараша 2026", ALMATY, "2026-11-23T19:00"),
    ("қарашаның 25-і, 2026", ALMATY, "2026-11-24T19:00"),
    ("25 қарашада 10:00", ALMATY, "2026-11-25T05:00"),
    ("кеше, 14:30", ALMATY, "2026-11-24T09:30"),
    ("кеше сағат 14:30", ALMATY, "2026-11-24T09:30"),
    ("Бүгін 09:15", ALMATY, "2026-11-25T04:15"),
    ("бүгін сағат 11:40", ALMATY, "2026-11-25T06:40"),
    ("2 сағат бұрын", ALMATY, "2026-11-25T05:00"),
    ("бір сағат бұрын", ALMATY, "2026-11-25T06:00"),
    ("сағат бұрын", ALMATY, "2026-11-25T06:00"),
    ("10 минут бұрын", ALMATY, "2026-11-25T06:50"),
    ("бес минут бұрын", ALMATY, "2026-11-25T06:55"),
    ("15 секунд бұрын", ALMATY, "2026-11-25T06:59:45"),
    ("3 күн бұрын", ALMATY, "2026-11-22T07:00"),
    ("алдыңғы күні", ALMATY, "2026-11-23T07:00"),
    ("1 апта бұрын", ALMATY, "2026-11-18T07:00"),
    ("жаңа ғана", ALMATY, "2026-11-25T07:00"),
    # English: international sites, feeds with text dates
    ("5 minutes ago", "UTC", "2026-11-25T06:55"),
    ("an hour ago", "UTC", "2026-11-25T06:00"),
    ("2 days ago", ALMATY, "2026-11-23T07:00"),
    ("yesterday at 2:30 pm", ALMATY, "2026-11-24T09:30"),
    ("Nov 25, 2026 10:00 AM", "UTC", "2026-11-25T10:00"),
    ("25 November 2026 10:00", MOSCOW, "2026-11-25T07:00"),
    # An offset in the text wins over the source's timezone.
    ("Wed, 25 Nov 2026 10:00:00 +0300", ALMATY, "2026-11-25T07:00"),
    ("2026-11-25T10:00:00+05:00", MOSCOW, "2026-11-25T05:00"),
]


@pytest.mark.parametrize(("text", "zone", "expected"), TABLE)
def test_a_date_in_words_is_read_to_the_instant_in_the_sources_timezone(
    text: str, zone: str, expected: str
) -> None:
    assert read_date(text, zone=zone, now=NOW) == datetime.fromisoformat(
        expected).replace(tzinfo=UTC)


def test_the_table_covers_thirty_formats_in_three_languages() -> None:
    assert len({text for text, _, _ in TABLE}) >= 30


@pytest.mark.parametrize("text", ["", "   ", "Kcell, no 4G again", "lorem ipsum dolor",
                                  "x" * 500, "\x00\x00"])
def test_text_that_is_no_date_reads_as_none(text: str) -> None:
    assert read_date(text, zone=ALMATY, now=NOW) is None


def test_a_relative_date_counts_from_the_given_time_not_a_cached_one() -> None:
    later = NOW.replace(hour=9)
    assert read_date("2 сағат бұрын", zone=ALMATY, now=NOW) == NOW.replace(hour=5)
    assert read_date("2 сағат бұрын", zone=ALMATY, now=later) == NOW.replace(hour=7)


def test_kazakh_gaps_are_spelled_from_the_tables_in_words_dateparser_reads() -> None:
    assert spelled("Бір сағат бұрын") == "1 сағат бұрын"
    assert spelled("минут бұрын") == "1 минут бұрын"
    assert spelled("5 минут бұрын") == "5 минут бұрын"  # a number is left alone
    assert spelled("25 қарашада") == "25 қараша"
    assert spelled("кеше сағат 14:30") == "кеше 14:30"
