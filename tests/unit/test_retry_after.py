"""How long a source asked us to wait: Retry-After as seconds or as a date, X's reset time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from multidict import CIMultiDict

from socialcare.adapters.collectors.http import MAX_WAIT, retry_after, retry_after_header

# Far from the wall clock on purpose: a wait read off the wall clock would be years off.
NOW = datetime(2026, 10, 21, 7, 28, tzinfo=UTC)


def http_date(at: datetime) -> str:
    return format_datetime(at, usegmt=True)


def test_delta_seconds_are_the_wait() -> None:
    assert retry_after_header("120", now=NOW) == 120.0
    assert retry_after_header(" 0 ", now=NOW) == 0.0


def test_an_http_date_is_the_seconds_from_now_until_it() -> None:
    assert http_date(NOW + timedelta(seconds=90)) == "Wed, 21 Oct 2026 07:29:30 GMT"

    assert retry_after_header("Wed, 21 Oct 2026 07:29:30 GMT", now=NOW) == 90.0


def test_an_http_date_counts_from_the_given_now_not_the_wall_clock() -> None:
    later = NOW + timedelta(days=400)

    assert retry_after_header(http_date(later + timedelta(minutes=5)), now=later) == 300.0


@pytest.mark.parametrize("value", [
    "Wed, 21 Oct 2026 07:27:00 GMT", "Sun, 06 Nov 1994 08:49:37 GMT",
], ids=["a minute ago", "years ago"])
def test_an_http_date_in_the_past_means_now_never_a_negative_wait(value: str) -> None:
    assert retry_after_header(value, now=NOW) == 0.0


def test_an_http_date_with_minus_zero_zone_is_gmt_too() -> None:
    assert retry_after_header("Wed, 21 Oct 2026 07:30:00 -0000", now=NOW) == 120.0


@pytest.mark.parametrize("value", [
    "", "soon", "120s", "-5", "1e3", "inf", "nan", "Wed, 32 Oct 2026 07:28:00 GMT",
    "Wed, 21 Oct 99999 07:28:00 GMT",
])
def test_garbage_is_ignored(value: str) -> None:
    assert retry_after_header(value, now=NOW) is None


def test_a_wait_past_a_day_is_cut_to_a_day() -> None:
    assert retry_after_header("99999999999999999999", now=NOW) == MAX_WAIT
    assert retry_after_header(http_date(NOW + timedelta(days=30)), now=NOW) == MAX_WAIT


def test_retry_after_reads_the_header_in_any_case_before_x_rate_limit_reset() -> None:
    reset = str(int((NOW + timedelta(minutes=15)).timestamp()))
    headers = CIMultiDict({"retry-after": "Wed, 21 Oct 2026 07:29:00 GMT",
                           "x-rate-limit-remaining": "0", "x-rate-limit-reset": reset})

    assert retry_after(headers, now=NOW) == 60.0


def test_x_rate_limit_reset_counts_from_the_given_now_once_nothing_is_left() -> None:
    reset = str(int((NOW + timedelta(minutes=15)).timestamp()))

    assert retry_after(CIMultiDict({"X-Rate-Limit-Remaining": "0", "X-Rate-Limit-Reset": reset}),
                       now=NOW) == 900.0
    assert retry_after(CIMultiDict({"x-rate-limit-remaining": "3", "x-rate-limit-reset": reset}),
                       now=NOW) is None
    assert retry_after(CIMultiDict({"x-rate-limit-remaining": "0", "x-rate-limit-reset": "nan"}),
                       now=NOW) is None


def test_no_header_says_nothing() -> None:
    assert retry_after(CIMultiDict(), now=NOW) is None
